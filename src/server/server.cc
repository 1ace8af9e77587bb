#include "sluice/server/server.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/base/clock.h"
#include "sluice/base/log.h"
#include "sluice/base/unique_fd.h"
#include "sluice/io/page_cache_mounts.h"
#include "sluice/io/pipe_pool.h"
#include "sluice/serve/access_log.h"
#include "sluice/serve/connections_per_address.h"
#include "sluice/serve/document_root.h"
#include "sluice/serve/health.h"
#include "sluice/serve/metrics.h"
#include "sluice/server/generation.h"
#include "sluice/server/listener.h"
#include "sluice/server/log_reopener.h"
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

// Not started as root: --user/--group may only name who we already are.
absl::Status CheckUnprivileged(const ServerConfig& config) {
  const passwd* me = getpwuid(geteuid());
  const std::string name = me != nullptr ? me->pw_name : std::to_string(geteuid());
  if (!config.user.empty() || !config.group.empty()) {
    if (config.user.empty() || config.user != name) {
      return absl::InvalidArgumentError("--user/--group need sluice to be started as root");
    }
  }
  LogInfo(absl::StrCat("running as user ", name, " (uid ", geteuid(), ", gid ", getegid(), ")"));
  return absl::OkStatus();
}

// Binding to a low port and opening the root may need root; serving must
// not. As nginx does, root without --user becomes nobody (and nogroup, if
// that group exists, else nobody's own group); --user=root stays root.
absl::Status DropPrivileges(const ServerConfig& config) {
  if (geteuid() != 0) return CheckUnprivileged(config);
  if (config.user == "root") {
    LogWarning("running as root (--user=root): every file root can read may be served");
    return absl::OkStatus();
  }
  const std::string user = config.user.empty() ? "nobody" : config.user;
  const passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--user: no user '", user, "'", config.user.empty() ? " (the default as root)" : ""));
  }
  gid_t gid = pw->pw_gid;
  std::string group_name = config.group;
  if (group_name.empty() && config.user.empty() && getgrnam("nogroup") != nullptr) {
    group_name = "nogroup";
  }
  if (!group_name.empty()) {
    const group* gr = getgrnam(group_name.c_str());
    if (gr == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("--group: no group '", group_name, "'"));
    }
    gid = gr->gr_gid;
  }
  // Order matters: supplementary groups and gid while still root, uid last.
  if (initgroups(pw->pw_name, gid) != 0 || setgid(gid) != 0 || setuid(pw->pw_uid) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot drop privileges to ", user, ": ", strerror(errno)));
  }
  if (setuid(0) == 0) return absl::InternalError("privilege drop failed: could regain root");
  LogInfo(absl::StrCat("running as user ", user, " (uid ", pw->pw_uid, ", gid ", gid,
                       "): dropped root after binding", config.user.empty() ? " (default)" : ""));
  return absl::OkStatus();
}

// A number from a /proc file (a sysctl), or `fallback` if it cannot be read.
uint64_t ReadProcNumber(const char* path, uint64_t fallback) {
  FILE* f = fopen(path, "re");
  if (f == nullptr) return fallback;
  unsigned long long v = 0;
  const bool ok = fscanf(f, "%llu", &v) == 1;
  fclose(f);
  return ok ? v : fallback;
}

// CAP_SYS_RESOURCE or CAP_SYS_ADMIN in the effective set, in the initial
// user namespace (the kernel's capable() asks there): the pipe limits then
// do not apply. Inside a user namespace a full capability set still meets
// them, so anything but the identity uid map counts as unprivileged.
bool PipeLimitsBypassed() {
  FILE* f = fopen("/proc/self/status", "re");
  if (f == nullptr) return false;
  unsigned long long caps = 0;
  char line[256];
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (sscanf(line, "CapEff: %llx", &caps) == 1) break;
  }
  fclose(f);
  constexpr unsigned long long kSysAdmin = 1ull << 21, kSysResource = 1ull << 24;
  if ((caps & (kSysAdmin | kSysResource)) == 0) return false;
  f = fopen("/proc/self/uid_map", "re");
  if (f == nullptr) return false;
  unsigned long long inside = 1, outside = 1, count = 0;
  const bool initial = fscanf(f, "%llu %llu %llu", &inside, &outside, &count) == 3 && inside == 0 &&
                       outside == 0 && count == 4294967295ull;
  fclose(f);
  return initial;
}

// After the privilege drop: the user that creates the pipes is the one
// whose allowance counts. Fits pipe size, idle count and each worker's
// budget to it and says so in one line.
void FitPipesToLimits(ServerConfig* config) {
  PipeLimits limits;
  limits.user_pages_soft = ReadProcNumber("/proc/sys/fs/pipe-user-pages-soft", 0);
  limits.user_pages_hard = ReadProcNumber("/proc/sys/fs/pipe-user-pages-hard", 0);
  limits.max_size_bytes = ReadProcNumber("/proc/sys/fs/pipe-max-size", 1 << 20);
  const long page = sysconf(_SC_PAGESIZE);
  limits.page_bytes = page > 0 ? static_cast<uint32_t>(page) : 4096;
  limits.privileged = PipeLimitsBypassed();
  const PipeSizing fit =
      SizePipes(limits, config->threads, config->pipe_bytes, config->idle_pipes_max);
  config->pipe_bytes = fit.pipe_bytes;
  config->idle_pipes_max = fit.idle_max;
  config->pipe_budget_bytes = fit.budget_bytes;
  config->pipe_user_limit_pages = fit.limit_pages;
  std::string why;
  if (limits.privileged) {
    why = "CAP_SYS_RESOURCE/CAP_SYS_ADMIN: the user's pipe limits do not apply";
  } else if (fit.limit_pages == 0) {
    why = "no fs.pipe-user-pages limit";
  } else {
    why = absl::StrCat(
        "fs.pipe-user-pages-soft=", limits.user_pages_soft, " hard=", limits.user_pages_hard,
        " pages for this user over all its processes, ", config->threads, " workers");
  }
  LogInfo(absl::StrCat("pipes: ", fit.pipe_bytes, " bytes each, up to ", fit.idle_max,
                       " idle per worker, budget ",
                       fit.budget_bytes == 0 ? std::string("none")
                                             : absl::StrCat(fit.budget_bytes, " bytes per worker"),
                       " (", why, ")"));
}

std::string KernelRelease() {
  utsname u;
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

// What start-up opens before any worker exists. Every descriptor is owned
// here until a worker takes it, so each early return closes them all.
struct Startup {
  // The first configuration generation: sites, rules, roots opened.
  std::shared_ptr<ServeGeneration> generation;
  std::vector<UniqueFd> listeners;  // One per worker.
  SocketAddress bound;
  UniqueFd metrics_listener;  // --metrics_listen, or none.
  std::unique_ptr<AccessLogFile> access_log;
  // --max_connections_per_ip's table, shared by the workers; null when off.
  std::unique_ptr<ConnectionsPerAddress> connections_per_address;
  // Reopens the access log as root after the privilege drop (or none).
  std::unique_ptr<LogReopener> reopener;
};

absl::Status CheckLimitsInternal(const ServerConfig& config) {
  if (config.threads < 1 || config.threads > 1024) {
    return absl::InvalidArgumentError("--threads must be between 1 and 1024");
  }
  if (config.backlog < 1) return absl::InvalidArgumentError("--backlog must be at least 1");
  return absl::OkStatus();
}

// One SO_REUSEPORT socket per worker; with port 0 the first one picks the
// port and the others join it.
absl::Status OpenListeners(const ServerConfig& config, Startup* s) {
  absl::StatusOr<SocketAddress> address = ParseListenAddress(config.listen);
  if (!address.ok()) return address.status();
  if (absl::Status st = CheckAddressFree(*address); !st.ok()) return st;
  s->bound = *address;
  for (int i = 0; i < config.threads; ++i) {
    absl::StatusOr<int> fd = OpenListener(
        s->bound, config.backlog,
        static_cast<int>(absl::ToInt64Seconds(absl::Ceil(config.defer_accept, absl::Seconds(1)))),
        &s->bound);
    if (!fd.ok()) return fd.status();
    s->listeners.emplace_back(*fd);
  }
  if (config.metrics_listen.empty()) return absl::OkStatus();
  // --metrics_listen: one extra socket, served by worker 0.
  absl::StatusOr<SocketAddress> maddr = ParseListenAddress(config.metrics_listen);
  absl::Status st = maddr.ok() ? CheckAddressFree(*maddr) : maddr.status();
  SocketAddress metrics_bound;
  absl::StatusOr<int> fd =
      st.ok() ? OpenListener(*maddr, config.backlog, /*defer_accept_s=*/0, &metrics_bound)
              : absl::StatusOr<int>(st);
  if (!fd.ok()) {
    return absl::Status(fd.status().code(),
                        absl::StrCat("--metrics_listen: ", fd.status().message()));
  }
  s->metrics_listener.Reset(*fd);
  return absl::OkStatus();
}

// Everything that can fail on configuration, checked before anything is
// logged, so a bad start-up stays one line.
absl::StatusOr<Startup> Prepare(ServerConfig* config, std::vector<SiteConfig> sites) {
  if (absl::Status st = CheckLimitsInternal(*config); !st.ok()) return st;
  LoadLocalPageCacheMounts();  // Before any worker: files elsewhere always splice via io-wq.
  Startup s;
  absl::StatusOr<std::shared_ptr<ServeGeneration>> gen =
      BuildGeneration(*config, std::move(sites), /*id=*/1);
  if (!gen.ok()) return gen.status();
  s.generation = std::move(*gen);
  if (absl::Status st = OpenListeners(*config, &s); !st.ok()) return st;
  if (!config->access_log.empty()) {
    absl::StatusOr<std::unique_ptr<AccessLogFile>> log =
        AccessLogFile::Open(config->access_log, config->access_log_format);
    if (!log.ok()) return log.status();
    s.access_log = std::move(*log);
  }
  if (config->max_connections_per_ip > 0) {
    // A random key, so that nobody can choose addresses that share counters.
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
      seed = static_cast<uint64_t>(time(nullptr));
    s.connections_per_address =
        std::make_unique<ConnectionsPerAddress>(config->max_connections_per_ip, seed);
  }
  return s;
}

void WarnAboutDescriptorLimit(const ServerConfig& config) {
  const int descriptors_needed = config.max_connections * 3 + 64;
  if (rlimit rl;
      getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < static_cast<rlim_t>(descriptors_needed)) {
    LogWarning(absl::StrCat("the descriptor limit (", rl.rlim_cur,
                            ") is below what --max_connections=", config.max_connections,
                            " may need (", descriptors_needed,
                            "): expect 503s and accept back-off under full load"));
  }
}

// Signals are taken by sigwait() on this thread only; workers inherit the
// blocked mask. SIGPIPE is ignored: a peer that vanishes mid-send is an
// error code, not a reason to die.
sigset_t BlockSignals() {
  signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

void FillRegistry(const ServerConfig& config, const std::vector<std::unique_ptr<Worker>>& workers,
                  MetricsRegistry* registry) {
  registry->info.version = kVersion;
  registry->info.threads = config.threads;
  registry->info.ring_flags = workers[0]->ring_info().setup_flags_text;
  registry->info.kernel = KernelRelease();
  registry->info.start_time_unix = time(nullptr);
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  registry->info.start_monotonic_ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  registry->info.pipe_bytes = config.pipe_bytes;
  registry->info.pipe_idle_max = config.idle_pipes_max;
  registry->info.pipe_budget_bytes = config.pipe_budget_bytes;
  registry->info.pipe_user_limit_pages = config.pipe_user_limit_pages;
  for (const auto& w : workers) {
    registry->workers.push_back(&w->metrics());
    w->set_metrics_registry(registry);
  }
}

// The workers and their threads. Each worker sets up its ring on its own
// thread (SINGLE_ISSUER); serving starts only once every one succeeded.
class WorkerThreads {
 public:
  WorkerThreads(const ServerConfig& config, Startup* s)
      : health_(config.threads, MonotonicNanos()), armed_(config.threads) {
    const std::vector<int> cpus = AllowedCpus();
    for (int i = 0; i < config.threads; ++i) {
      const int cpu = cpus.empty() ? -1 : cpus[static_cast<size_t>(i) % cpus.size()];
      const size_t n = static_cast<size_t>(i);
      workers_.push_back(std::make_unique<Worker>(
          i, cpu, config, s->generation, s->listeners[n].Release(),
          i == 0 ? s->metrics_listener.Release() : -1, s->access_log.get()));
      workers_.back()->set_connections_per_address(s->connections_per_address.get());
      workers_.back()->set_health(&health_);
    }
  }
  ~WorkerThreads() { Join(); }

  // Initialises every worker; on success each one serves once armed.
  absl::Status Start(const ServerConfig& config) {
    std::vector<absl::Status> init_status(workers_.size());
    std::latch ready(static_cast<std::ptrdiff_t>(workers_.size()));
    for (size_t i = 0; i < workers_.size(); ++i) {
      threads_.emplace_back([&, i] {
        init_status[i] = workers_[i]->Init();
        ready.count_down();
        go_.wait();
        if (start_serving_ && init_status[i].ok()) workers_[i]->Run(&armed_);
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
    if (failed.ok()) {
      FillRegistry(config, workers_, &registry_);
      registry_.info.config = &config_status_;
    }
    start_serving_ = failed.ok();
    go_.count_down();
    if (!failed.ok()) return failed;
    // "listening on" means every worker has its accept in the kernel.
    armed_.wait();
    return absl::OkStatus();
  }
  const Worker& first() const { return *workers_[0]; }
  HealthState& health() { return health_; }
  ConfigStatus& config_status() { return config_status_; }
  void Reload(const std::shared_ptr<const ServeGeneration>& gen) {
    for (auto& w : workers_) w->RequestReload(gen);
  }
  void Stop() {
    for (auto& w : workers_) w->RequestStop();
    Join();
  }

 private:
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
    workers_.clear();
  }

  HealthState health_;  // Outlives the workers, which stamp it.
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  MetricsRegistry registry_;
  ConfigStatus config_status_;
  std::latch go_{1};
  std::latch armed_;  // Counted down by each worker once it serves.
  bool start_serving_ = false;
};

// logrotate's convention: the file was moved; open the path again, through
// the privileged helper when there is one.
void ReopenAccessLog(AccessLogFile* access_log, LogReopener* reopener) {
  if (access_log == nullptr) {
    LogInfo("received SIGUSR1: no access log to reopen");
    return;
  }
  absl::Status st;
  if (reopener != nullptr) {
    absl::StatusOr<int> fd = reopener->Open();
    if (fd.ok()) {
      access_log->Replace(*fd);
    } else {
      st = absl::UnavailableError(absl::StrCat("cannot reopen access log '", access_log->path(),
                                               "': ", fd.status().message()));
    }
  } else {
    st = access_log->Reopen();
  }
  if (st.ok()) {
    LogInfo("SIGUSR1: access log reopened");
  } else {
    LogError(std::string(st.message()));
  }
}

// SIGHUP: the configuration is read and built completely first; on any
// error the running one stays, and the error is one log line and a count.
class Reloader {
 public:
  Reloader(ConfigLoader loader, WorkerThreads* workers)
      : loader_(std::move(loader)), workers_(workers) {}

  void Reload() {
    if (!loader_) {
      LogInfo("received SIGHUP: no configuration file (--config) to reload");
      return;
    }
    ConfigStatus& status = workers_->config_status();
    absl::StatusOr<LoadedConfig> loaded = loader_();
    absl::StatusOr<std::shared_ptr<ServeGeneration>> gen =
        loaded.ok() ? BuildGeneration(loaded->config, std::move(loaded->sites), next_id_)
                    : absl::StatusOr<std::shared_ptr<ServeGeneration>>(loaded.status());
    if (!gen.ok()) {
      status.reloads_error.fetch_add(1);
      LogError(absl::StrCat("SIGHUP: configuration not reloaded, generation ",
                            status.generation.load(), " stays: ", gen.status().message()));
      return;
    }
    workers_->Reload(*gen);
    status.generation.store(next_id_);
    status.loaded_unix.store(time(nullptr));
    status.reloads_ok.fetch_add(1);
    std::string note;
    if (!loaded->restart_needed.empty()) {
      note = absl::StrCat("; changed but need a restart (running values kept): ",
                          absl::StrJoin(loaded->restart_needed, ", "));
    }
    LogInfo(absl::StrCat("SIGHUP: configuration generation ", next_id_, " loaded (",
                         (*gen)->sites.size(), " site(s), ", (*gen)->roots.size(), " root(s))",
                         note));
    ++next_id_;
  }

 private:
  ConfigLoader loader_;
  WorkerThreads* workers_;
  uint64_t next_id_ = 2;
};

struct SignalContext {
  sigset_t signals;
  AccessLogFile* access_log;
  LogReopener* reopener;
  Reloader* reloader;
};

// Waits for a signal until `deadline` (none: forever). Returns the signal
// that ends the wait, SIGINT or SIGTERM, or 0 when the deadline passed;
// SIGUSR1 reopens the access log on the way.
int WaitForSignal(const SignalContext& c, std::optional<absl::Time> deadline) {
  for (;;) {
    int sig = 0;
    if (deadline.has_value()) {
      const absl::Duration left = *deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return 0;
      const timespec ts = absl::ToTimespec(left);
      sig = sigtimedwait(&c.signals, nullptr, &ts);
      if (sig < 0) continue;  // EAGAIN (the loop sees the deadline) or EINTR.
    } else if (sigwait(&c.signals, &sig) != 0) {
      continue;
    }
    if (sig == SIGINT || sig == SIGTERM) return sig;
    if (sig == SIGUSR1) {
      ReopenAccessLog(c.access_log, c.reopener);
      continue;
    }
    if (sig == SIGHUP) {
      c.reloader->Reload();
      continue;
    }
    LogInfo(absl::StrCat("received ", strsignal(sig), ": nothing to do"));
  }
}

// Until SIGINT or SIGTERM. SIGTERM (what Kubernetes, Docker and systemd
// send) fails readiness at once and keeps serving for --drain_delay, so
// load balancers stop sending before the listeners close; a second signal
// cuts the delay short. SIGINT (Ctrl-C) drains at once.
void WaitForStop(const SignalContext& c, const ServerConfig& config, HealthState* health) {
  const int sig = WaitForSignal(c, std::nullopt);
  health->set_ready(false);
  if (sig == SIGTERM && config.drain_delay > absl::ZeroDuration()) {
    LogInfo(absl::StrCat("received ", strsignal(sig), ": not ready; serving for ",
                         absl::FormatDuration(config.drain_delay),
                         " (--drain_delay) before draining"));
    if (const int again = WaitForSignal(c, absl::Now() + config.drain_delay); again != 0) {
      LogInfo(absl::StrCat("received ", strsignal(again), " again: ending the drain delay"));
    }
  }
  LogInfo(absl::StrCat("received ", strsignal(sig), ": draining (up to ",
                       absl::FormatDuration(config.drain_timeout), ")"));
}

}  // namespace

absl::Status CheckSettings(const ServerConfig& config) {
  if (absl::Status st = CheckLimitsInternal(config); !st.ok()) return st;
  for (const std::string& address : {config.listen, config.metrics_listen}) {
    if (address.empty()) continue;
    if (absl::Status st = ParseListenAddress(address).status(); !st.ok()) return st;
  }
  return absl::OkStatus();
}

int AvailableCpuCount() {
  const size_t n = AllowedCpus().size();
  return n > 0 ? static_cast<int>(n) : 1;
}

absl::Status RunServer(const ServerConfig& given, std::vector<SiteConfig> sites,
                       ConfigLoader reload) {
  ServerConfig config = given;
  absl::StatusOr<Startup> startup = Prepare(&config, std::move(sites));
  if (!startup.ok()) return startup.status();
  RaiseFileLimit();
  if (startup->access_log != nullptr && config.access_log != "-" && geteuid() == 0 &&
      config.user != "root") {
    // Forked before any thread starts, while still root.
    absl::StatusOr<std::unique_ptr<LogReopener>> reopener = LogReopener::Start(config.access_log);
    if (!reopener.ok()) return reopener.status();
    startup->reopener = std::move(*reopener);
  }
  if (absl::Status st = DropPrivileges(config); !st.ok()) return st;
  FitPipesToLimits(&config);
  WarnAboutDescriptorLimit(config);
  const sigset_t signals = BlockSignals();

  WorkerThreads workers(config, &*startup);
  if (absl::Status st = workers.Start(config); !st.ok()) return st;
#ifdef SLUICE_CHAOS
  // A chaos build says how to replay this run before anything is served.
  LogInfo(absl::StrCat("chaos: fault injection on, ", ChaosOptions::Process().Describe()));
#endif
  LogInfo(absl::StrCat("sluice ", kVersion, " listening on ", startup->bound.ToString(),
                       " threads=", config.threads, " sites=", startup->generation->sites.size(),
                       " roots=", absl::StrJoin(startup->generation->roots, ","), " ring=",
                       workers.first().ring_info().setup_flags_text, " kernel=", KernelRelease()));
  Reloader reloader(std::move(reload), &workers);
  WaitForStop({signals, startup->access_log.get(), startup->reopener.get(), &reloader}, config,
              &workers.health());
  workers.Stop();
  LogInfo("stopped");
  return absl::OkStatus();
}

}  // namespace sluice
