#include "sluice/server/server.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/base/log.h"
#include "sluice/serve/access_log.h"
#include "sluice/serve/document_root.h"
#include "sluice/serve/metrics.h"
#include "sluice/server/listener.h"
#include "sluice/server/worker.h"
#ifdef SLUICE_CHAOS
#include "sluice/io/chaos.h"
#endif

namespace sluice {
namespace {

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i) {
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
    }
  }
  return cpus;
}

// Descriptors are the first limit a busy server meets: take the hard limit.
void RaiseFileLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  LogInfo(absl::StrCat("file descriptor limit: ", rl.rlim_cur));
}

absl::StatusOr<int> OpenRoot(const std::string& root) {
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) return fd;
  const int err = errno;
  if (err == ENOTDIR) {
    return absl::InvalidArgumentError(
        absl::StrCat("document root '", root, "' is not a directory"));
  }
  return absl::NotFoundError(
      absl::StrCat("cannot open document root '", root, "': ", strerror(err)));
}

// Binding to a low port and opening the root may need root; serving must not.
absl::Status DropPrivileges(const ServerConfig& config) {
  if (geteuid() != 0) {
    if (!config.user.empty() || !config.group.empty()) {
      const passwd* me = getpwuid(geteuid());
      if (config.user.empty() || me == nullptr || config.user != me->pw_name) {
        return absl::InvalidArgumentError("--user/--group need sluice to be started as root");
      }
    }
    return absl::OkStatus();
  }
  if (config.user.empty()) {
    LogWarning("running as root: pass --user=NAME (and --group) to drop privileges after binding");
    return absl::OkStatus();
  }
  const passwd* pw = getpwnam(config.user.c_str());
  if (pw == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("--user: no user '", config.user, "'"));
  gid_t gid = pw->pw_gid;
  if (!config.group.empty()) {
    const group* gr = getgrnam(config.group.c_str());
    if (gr == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--group: no group '", config.group, "'"));
    }
    gid = gr->gr_gid;
  }
  // Order matters: supplementary groups and gid while still root, uid last.
  if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot drop privileges to ", config.user, ": ", strerror(errno)));
  }
  if (setuid(0) == 0) return absl::InternalError("privilege drop failed: could regain root");
  LogInfo(absl::StrCat("dropped privileges to user ", config.user, " (uid ", pw->pw_uid, ", gid ",
                       gid, ")"));
  return absl::OkStatus();
}

std::string KernelRelease() {
  utsname u;
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

}  // namespace

int AvailableCpuCount() {
  const size_t n = AllowedCpus().size();
  return n > 0 ? static_cast<int>(n) : 1;
}

absl::Status RunServer(const ServerConfig& given) {
  ServerConfig config = given;
  if (config.threads < 1 || config.threads > 1024) {
    return absl::InvalidArgumentError("--threads must be between 1 and 1024");
  }
  if (config.backlog < 1) return absl::InvalidArgumentError("--backlog must be at least 1");

  absl::StatusOr<int> root_fd = OpenRoot(config.root);
  if (!root_fd.ok()) return root_fd.status();
  if (char* cwd = getcwd(nullptr, 0)) {
    config.root_path = AbsoluteRootPath(config.root, cwd);
    free(cwd);
  } else {
    config.root_path = config.root;
  }
  absl::StatusOr<SocketAddress> address = ParseListenAddress(config.listen);
  if (!address.ok()) {
    close(*root_fd);
    return address.status();
  }
  if (absl::Status st = CheckAddressFree(*address); !st.ok()) {
    close(*root_fd);
    return st;
  }
  // One SO_REUSEPORT socket per worker; with port 0 the first one picks the
  // port and the others join it.
  SocketAddress bound = *address;
  std::vector<int> listen_fds;
  for (int i = 0; i < config.threads; ++i) {
    absl::StatusOr<int> fd = OpenListener(bound, config.backlog, &bound);
    if (!fd.ok()) {
      for (int f : listen_fds) close(f);
      close(*root_fd);
      return fd.status();
    }
    listen_fds.push_back(*fd);
  }

  // --metrics_listen: one extra socket, served by worker 0.
  int metrics_fd = -1;
  SocketAddress metrics_bound;
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<SocketAddress> maddr = ParseListenAddress(config.metrics_listen);
    absl::Status st = maddr.ok() ? CheckAddressFree(*maddr) : maddr.status();
    absl::StatusOr<int> fd =
        st.ok() ? OpenListener(*maddr, config.backlog, &metrics_bound) : absl::StatusOr<int>(st);
    if (!fd.ok()) {
      for (int f : listen_fds) close(f);
      close(*root_fd);
      return absl::Status(fd.status().code(),
                          absl::StrCat("--metrics_listen: ", fd.status().message()));
    }
    metrics_fd = *fd;
  }
  std::unique_ptr<AccessLogFile> access_log;
  if (!config.access_log.empty()) {
    absl::StatusOr<std::unique_ptr<AccessLogFile>> log = AccessLogFile::Open(config.access_log);
    if (!log.ok()) {
      for (int f : listen_fds) close(f);
      if (metrics_fd >= 0) close(metrics_fd);
      close(*root_fd);
      return log.status();
    }
    access_log = std::move(*log);
  }

  // Everything that can fail on configuration has been checked: only now
  // log anything, so a bad start-up stays one line.
  RaiseFileLimit();
  if (absl::Status st = DropPrivileges(config); !st.ok()) {
    for (int f : listen_fds) close(f);
    close(*root_fd);
    return st;
  }
  const int descriptors_needed = config.max_connections * 3 + 64;
  if (rlimit rl;
      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < static_cast<rlim_t>(descriptors_needed)) {
    LogWarning(absl::StrCat("the descriptor limit (", rl.rlim_cur,
                            ") is below what --max_connections=", config.max_connections,
                            " may need (", descriptors_needed,
                            "): expect 503s and accept back-off under full load"));
  }

  // Signals are taken by sigwait() on this thread only; workers inherit the
  // blocked mask. SIGPIPE is ignored: a peer that vanishes mid-send is an
  // error code, not a reason to die.
  signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::vector<int> cpus = AllowedCpus();
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < config.threads; ++i) {
    const int cpu = cpus.empty() ? -1 : cpus[static_cast<size_t>(i) % cpus.size()];
    workers.push_back(std::make_unique<Worker>(i, cpu, config, *root_fd, listen_fds[i],
                                               i == 0 ? metrics_fd : -1, access_log.get()));
  }

  std::vector<absl::Status> init_status(workers.size());
  std::latch ready(static_cast<std::ptrdiff_t>(workers.size()));
  std::latch go(1);
  std::latch armed(static_cast<std::ptrdiff_t>(workers.size()));
  bool start_serving = false;
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back([&, i] {
      init_status[i] = workers[i]->Init();
      ready.count_down();
      go.wait();
      if (start_serving && init_status[i].ok()) workers[i]->Run(&armed);
    });
  }
  ready.wait();
  absl::Status failed;
  for (const absl::Status& st : init_status) {
    if (!st.ok()) {
      failed = st;
      break;
    }
  }
  MetricsRegistry registry;
  if (failed.ok()) {
    registry.info.version = kVersion;
    registry.info.threads = config.threads;
    registry.info.ring_flags = workers[0]->ring_info().setup_flags_text;
    registry.info.kernel = KernelRelease();
    registry.info.start_time_unix = time(nullptr);
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    registry.info.start_monotonic_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    for (auto& w : workers) {
      registry.workers.push_back(&w->metrics());
      w->set_metrics_registry(&registry);
    }
  }
  start_serving = failed.ok();
  go.count_down();
  if (!failed.ok()) {
    for (auto& t : threads) t.join();
    workers.clear();
    close(*root_fd);
    return failed;
  }

  // "listening on" means every worker has its accept in the kernel.
  armed.wait();
#ifdef SLUICE_CHAOS
  // A chaos build says how to replay this run before anything is served.
  LogInfo(absl::StrCat("chaos: fault injection on, ", ChaosOptions::Process().Describe()));
#endif
  LogInfo(absl::StrCat("sluice ", kVersion, " listening on ", bound.ToString(),
                       " threads=", config.threads, " root=", config.root, " ring=",
                       workers[0]->ring_info().setup_flags_text, " kernel=", KernelRelease()));

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGINT || sig == SIGTERM) {
      LogInfo(absl::StrCat("received ", strsignal(sig), ": draining (up to ",
                           absl::FormatDuration(config.drain_timeout), ")"));
      break;
    }
    if (sig == SIGUSR1 && access_log) {
      // logrotate's convention: the file was moved; open the path again.
      absl::Status st = access_log->Reopen();
      LogInfo(st.ok() ? std::string("SIGUSR1: access log reopened") : std::string(st.message()));
      continue;
    }
    LogInfo(absl::StrCat("received ", strsignal(sig), ": nothing to do"));
  }
  for (auto& w : workers) w->RequestStop();
  for (auto& t : threads) t.join();
  workers.clear();
  access_log.reset();
  close(*root_fd);
  LogInfo("stopped");
  return absl::OkStatus();
}

}  // namespace sluice
