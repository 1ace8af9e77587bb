#include "support/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice::test {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::string ErrnoText(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (SIG" +
           (name != nullptr ? name : "?") + ")";
  }
  return "wait status " + std::to_string(status);
}

std::string Tail(const std::string& text, std::size_t max) {
  if (text.size() <= max) return text;
  return "..." + text.substr(text.size() - max);
}

int RemainingMs(SteadyClock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1000 * 1000));
}

// Forks and execs argv[0]. stdin is /dev/null, stdout goes to `out_fd` (or
// /dev/null if -1), stderr to `err_fd`. Signal dispositions and the mask are
// reset, every other descriptor is closed, and the child is SIGKILLed if the
// forking thread dies (so a crashed or timed-out test leaves no server
// behind). A non-zero `nofile_limit` becomes the child's RLIMIT_NOFILE (soft
// and hard). Returns the pid, or -1 with *error set.
pid_t Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd, std::string* error,
            std::uint64_t nofile_limit = 0) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  const int dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (dev_null < 0) {
    *error = "open /dev/null: " + ErrnoText(errno);
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    *error = "fork: " + ErrnoText(errno);
    close(dev_null);
    return -1;
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    if (dup2(dev_null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : dev_null, 1) < 0 ||
        dup2(err_fd >= 0 ? err_fd : dev_null, 2) < 0) {
      _exit(127);
    }
    syscall(SYS_close_range, 3U, ~0U, 0U);
    struct sigaction default_action;
    std::memset(&default_action, 0, sizeof(default_action));
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &default_action, nullptr);
    }
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    if (nofile_limit != 0) {
      const rlimit limit = {static_cast<rlim_t>(nofile_limit), static_cast<rlim_t>(nofile_limit)};
      if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        static const char kLimitMessage[] = "test harness: setrlimit(RLIMIT_NOFILE) failed\n";
        [[maybe_unused]] const ssize_t ignored = write(2, kLimitMessage, sizeof(kLimitMessage) - 1);
        _exit(127);
      }
    }
    execv(args[0], args.data());
    static const char kMessage[] = "test harness: execv failed\n";
    [[maybe_unused]] const ssize_t ignored = write(2, kMessage, sizeof(kMessage) - 1);
    _exit(127);
  }
  close(dev_null);
  return pid;
}

// Reaps `pid` if it exits within `timeout`. Returns true and sets *status if it did.
bool WaitPidFor(pid_t pid, milliseconds timeout, int* status) {
  const auto deadline = SteadyClock::now() + timeout;
  auto delay = milliseconds(1);
  while (true) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return false;
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::min<milliseconds>(
        delay,
        std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()) + milliseconds(1)));
    delay = std::min(delay * 2, milliseconds(20));
  }
}

}  // namespace

const char* SluiceBinary() { return SLUICE_BINARY; }

int CountLines(const std::string& text) {
  if (text.empty()) return 0;
  int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  if (text.back() != '\n') ++lines;
  return lines;
}

ServerProcess::~ServerProcess() {
  if (running()) Stop();
  StopReader();
  if (::testing::Test::HasFailure() && pid_ > 0) {
    std::fprintf(stderr,
                 "---- sluice (pid %d, %s) stderr ----\n%s\n---- end of sluice stderr ----\n",
                 static_cast<int>(pid_), DescribeExit().c_str(), Tail(StderrText(), 8192).c_str());
  }
}

ServerProcess::StartResult ServerProcess::Start(const std::vector<std::string>& flags,
                                                milliseconds ready_timeout) {
  if (pid_ > 0) {
    start_error_ = "ServerProcess::Start called twice";
    return StartResult::kFailed;
  }
  std::vector<std::string> argv = {SluiceBinary()};
  bool has_listen = false;
  bool has_drain_delay = false;
  for (const std::string& flag : flags) {
    if (flag.rfind("--listen=", 0) == 0 || flag == "--listen") has_listen = true;
    if (flag.rfind("--drain_delay", 0) == 0) has_drain_delay = true;
    argv.push_back(flag);
  }
  if (!has_listen) argv.push_back("--listen=127.0.0.1:0");
  // Stop() sends SIGTERM and expects a prompt exit: no Kubernetes drain
  // delay unless the test asks for one.
  if (!has_drain_delay) argv.push_back("--drain_delay=0");
  // SLUICE_TEST_SERVER_FLAGS (space-separated) runs a whole suite again
  // with another configuration, e.g. --multishot_recv=false (CMakeLists).
  if (const char* extra = std::getenv("SLUICE_TEST_SERVER_FLAGS")) {
    for (std::string_view rest = extra; !rest.empty();) {
      const size_t space = rest.find(' ');
      const std::string_view flag = rest.substr(0, space);
      if (!flag.empty()) argv.emplace_back(flag);
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
    }
  }

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    start_error_ = "pipe2: " + ErrnoText(errno);
    return StartResult::kFailed;
  }
  std::string error;
  pid_ = Spawn(argv, -1, pipe_fds[1], &error, nofile_limit_);
  close(pipe_fds[1]);
  if (pid_ < 0) {
    close(pipe_fds[0]);
    start_error_ = error;
    return StartResult::kFailed;
  }
  reader_ = std::thread([this, fd = pipe_fds[0]] { ReaderLoop(fd); });

  // Wait for a "listening on TOKEN" whose token is complete (followed by a
  // space or a newline, or by EOF).
  static constexpr std::string_view kMarker = "listening on ";
  const auto deadline = SteadyClock::now() + ready_timeout;
  std::string token;
  bool ready = false;
  bool eof = false;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      const std::size_t at = stderr_text_.find(kMarker);
      if (at != std::string::npos) {
        const std::size_t begin = at + kMarker.size();
        const std::size_t end = stderr_text_.find_first_of(" \r\n", begin);
        if (end != std::string::npos || stderr_eof_) {
          token = stderr_text_.substr(begin, end == std::string::npos ? end : end - begin);
          const std::size_t line_begin = stderr_text_.rfind('\n', at);
          const std::size_t line_end = stderr_text_.find('\n', at);
          ready_line_ = stderr_text_.substr(
              line_begin == std::string::npos ? 0 : line_begin + 1,
              line_end == std::string::npos
                  ? std::string::npos
                  : line_end - (line_begin == std::string::npos ? 0 : line_begin + 1));
          ready = true;
          break;
        }
      }
      if (stderr_eof_) {
        eof = true;
        break;
      }
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
          SteadyClock::now() >= deadline) {
        break;
      }
    }
  }

  if (ready) {
    std::string_view rest = token;
    std::string_view host;
    if (!rest.empty() && rest.front() == '[') {
      const std::size_t close_bracket = rest.find(']');
      if (close_bracket != std::string_view::npos) {
        host = rest.substr(1, close_bracket - 1);
        rest.remove_prefix(close_bracket + 1);
      }
    } else {
      const std::size_t colon = rest.rfind(':');
      if (colon != std::string_view::npos) {
        host = rest.substr(0, colon);
        rest.remove_prefix(colon);
      }
    }
    unsigned port = 0;
    bool port_ok = rest.size() >= 2 && rest.size() <= 6 && rest.front() == ':';
    for (std::size_t i = 1; port_ok && i < rest.size(); ++i) {
      if (rest[i] < '0' || rest[i] > '9') port_ok = false;
      port = port * 10 + static_cast<unsigned>(rest[i] - '0');
    }
    if (!port_ok || port == 0 || port > 65535 || (host != "127.0.0.1" && host != "::1")) {
      start_error_ = "cannot parse a loopback HOST:PORT from the ready line '" + ready_line_ + "'";
      Stop();
      return StartResult::kFailed;
    }
    host_ = std::string(host);
    port_ = static_cast<std::uint16_t>(port);
    return StartResult::kReady;
  }

  if (eof) {
    // stderr closed: the server is exiting (or has exited) without becoming ready.
    if (!WaitForExit(std::chrono::seconds(5))) {
      Signal(SIGKILL);
      WaitForExit(std::chrono::seconds(10));
    }
    StopReader();
    const std::string text = StderrText();
    if (ExitedWithCode(3) && text.find("io_uring") != std::string::npos) {
      start_error_ = text;
      return StartResult::kIoUringUnavailable;
    }
    start_error_ = "server exited before printing 'listening on' (" + DescribeExit() +
                   "); stderr:\n" + Tail(text, 4096);
    return StartResult::kFailed;
  }

  Signal(SIGKILL);
  WaitForExit(std::chrono::seconds(10));
  StopReader();
  start_error_ = "server did not print 'listening on' within " +
                 std::to_string(ready_timeout.count()) + " ms (" + DescribeExit() + "); stderr:\n" +
                 Tail(StderrText(), 4096);
  return StartResult::kFailed;
}

void ServerProcess::ReaderLoop(int fd) {
  char buffer[4096];
  while (true) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping = stop_reader_;
    }
    pollfd pfd = {fd, POLLIN, 0};
    // Once asked to stop, only drain what is already there.
    const int ready = poll(&pfd, 1, stopping ? 0 : 100);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0 && stopping) break;
    if (ready == 0) continue;
    const ssize_t n = ready < 0 ? -1 : read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(mutex_);
    if (n <= 0) break;
    // Keep at most 32 MiB of log text (the beginning is the interesting part).
    if (stderr_text_.size() < (32u << 20)) stderr_text_.append(buffer, static_cast<std::size_t>(n));
    changed_.notify_all();
  }
  close(fd);
  std::lock_guard<std::mutex> lock(mutex_);
  stderr_eof_ = true;
  changed_.notify_all();
}

void ServerProcess::StopReader() {
  if (!reader_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_reader_ = true;
  }
  reader_.join();
}

bool ServerProcess::Signal(int signal) {
  if (!running()) return false;
  return kill(pid_, signal) == 0;
}

bool ServerProcess::WaitForExit(milliseconds timeout) {
  if (pid_ <= 0) return false;
  if (reaped_) return true;
  int status = 0;
  if (!WaitPidFor(pid_, timeout, &status)) return false;
  reaped_ = true;
  wait_status_ = status;
  return true;
}

bool ServerProcess::Stop(milliseconds timeout) {
  if (!running()) {
    StopReader();
    return true;
  }
  Signal(SIGTERM);
  if (WaitForExit(timeout)) {
    StopReader();
    return true;
  }
  ADD_FAILURE() << "sluice (pid " << pid_ << ") did not exit within " << timeout.count()
                << " ms of SIGTERM; sending SIGKILL. stderr:\n"
                << Tail(StderrText(), 4096);
  Signal(SIGKILL);
  if (!WaitForExit(std::chrono::seconds(10))) {
    ADD_FAILURE() << "sluice (pid " << pid_ << ") survived SIGKILL for 10 s";
  }
  StopReader();
  return false;
}

bool ServerProcess::ExitedWithCode(int code) const {
  return reaped_ && WIFEXITED(wait_status_) && WEXITSTATUS(wait_status_) == code;
}

std::string ServerProcess::DescribeExit() const {
  if (pid_ <= 0) return "not started";
  if (!reaped_) return "still running";
  return DescribeWaitStatus(wait_status_);
}

std::string ServerProcess::StderrText() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stderr_text_;
}

bool ServerProcess::WaitForStderr(const std::string& needle, milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::unique_lock<std::mutex> lock(mutex_);
  while (stderr_text_.find(needle) == std::string::npos) {
    if (stderr_eof_) return false;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
        SteadyClock::now() >= deadline) {
      return stderr_text_.find(needle) != std::string::npos;
    }
  }
  return true;
}

bool ProcessResult::ExitedWithCode(int code) const {
  return started && !timed_out && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == code;
}

bool ProcessResult::ExitedNonZero() const {
  return started && !timed_out && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) != 0;
}

std::string ProcessResult::Describe() const {
  std::string text;
  if (!started) {
    text = "not started";
  } else if (timed_out) {
    text = "timed out (killed)";
  } else {
    text = DescribeWaitStatus(wait_status);
  }
  text += " after " + std::to_string(elapsed.count()) + " ms; stdout: '" + Tail(out, 2048) +
          "'; stderr: '" + Tail(err, 2048) + "'";
  return text;
}

ProcessResult RunProcess(const std::vector<std::string>& argv, milliseconds timeout) {
  ProcessResult result;
  const auto start = SteadyClock::now();
  const auto deadline = start + timeout;
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.err = "pipe2: " + ErrnoText(errno);
    return result;
  }
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    result.err = "pipe2: " + ErrnoText(errno);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return result;
  }
  std::string error;
  const pid_t pid = Spawn(argv, out_pipe[1], err_pipe[1], &error);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    result.err = error;
    return result;
  }
  result.started = true;

  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buffer[16384];
  while (open_fds > 0) {
    const int ready = poll(fds, 2, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      result.timed_out = true;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else if (sinks[i]->size() < (64u << 20)) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      }
    }
  }
  for (pollfd& pfd : fds) {
    if (pfd.fd >= 0) close(pfd.fd);
  }
  if (!result.timed_out &&
      !WaitPidFor(
          pid,
          std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()) + milliseconds(1),
          &result.wait_status)) {
    result.timed_out = true;
  }
  if (result.timed_out) {
    kill(pid, SIGKILL);
    WaitPidFor(pid, std::chrono::seconds(10), &result.wait_status);
  }
  result.elapsed = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  return result;
}

}  // namespace sluice::test
