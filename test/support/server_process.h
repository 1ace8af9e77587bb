// Runs the real sluice binary for integration tests.
//
// ServerProcess starts SLUICE_BINARY with its stderr on a pipe, waits (at most
// 10 s) for the "listening on ADDR:PORT" line, and keeps draining stderr on a
// thread so that the server never blocks on a full pipe; the text is kept for
// inspection. Stop() sends SIGTERM and waits at most 10 s; only if that fails
// does it SIGKILL the process (and fail the test). Only the process this
// object started is ever signalled.
//
// Use SLUICE_START_OR_SKIP(server, {flags...}) in a test body or SetUp(): it
// skips the test when io_uring is unavailable (exit code 3, message mentioning
// io_uring) and fails it on any other startup error.

#ifndef SLUICE_TEST_SUPPORT_SERVER_PROCESS_H_
#define SLUICE_TEST_SUPPORT_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::test {

// Absolute path of the server binary under test.
const char* SluiceBinary();

class ServerProcess {
 public:
  enum class StartResult { kReady, kIoUringUnavailable, kFailed };

  ServerProcess() = default;
  // Stops the server if it is still running (see Stop()).
  ~ServerProcess();

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary with `flags` (e.g. "--root=/tmp/x") and waits for it
  // to be ready. `--listen=127.0.0.1:0` is added unless a --listen flag is
  // given, `--drain_delay=0` unless a --drain_delay flag is. On kIoUringUnavailable/kFailed,
  // start_error() explains why.
  StartResult Start(const std::vector<std::string>& flags,
                    std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));
  const std::string& start_error() const { return start_error_; }

  // Before Start(): the server starts with RLIMIT_NOFILE set to `limit` (soft
  // and hard, applied in the child before exec, like `prlimit --nofile=N:N`);
  // 0, the default, leaves the limit inherited from the test.
  void set_nofile_limit(std::uint64_t limit) { nofile_limit_ = limit; }

  // From the "listening on" line: "127.0.0.1" or "::1" (brackets removed).
  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // The full "listening on" line.
  const std::string& ready_line() const { return ready_line_; }

  // True while the process has been started and not yet reaped.
  bool running() const { return pid_ > 0 && !reaped_; }
  // Sends `signal` to the server (only if it is still running).
  bool Signal(int signal);
  // Waits up to `timeout` for the process to exit and reaps it.
  bool WaitForExit(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `timeout`; if the server is still alive, SIGKILL it
  // and ADD_FAILURE(). Returns true if it exited on its own.
  bool Stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Exit status, valid once reaped.
  bool reaped() const { return reaped_; }
  int wait_status() const { return wait_status_; }
  bool ExitedWithCode(int code) const;
  // E.g. "exit code 0", "killed by signal 11", "still running".
  std::string DescribeExit() const;

  // Everything the server wrote to stderr so far.
  std::string StderrText() const;
  // Waits until stderr contains `needle` (or EOF / timeout).
  bool WaitForStderr(const std::string& needle, std::chrono::milliseconds timeout);

 private:
  void ReaderLoop(int fd);
  void StopReader();

  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string ready_line_;
  std::string start_error_;
  std::uint64_t nofile_limit_ = 0;

  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string stderr_text_;   // Guarded by mutex_.
  bool stderr_eof_ = false;   // Guarded by mutex_.
  bool stop_reader_ = false;  // Guarded by mutex_.
};

// Result of RunProcess.
struct ProcessResult {
  bool started = false;
  bool timed_out = false;  // Killed with SIGKILL after the timeout.
  int wait_status = 0;
  std::string out;  // stdout
  std::string err;  // stderr
  std::chrono::milliseconds elapsed{0};

  bool ExitedWithCode(int code) const;
  bool ExitedNonZero() const;
  std::string Describe() const;
};

// Runs argv[0] (an absolute path) with stdin from /dev/null, capturing stdout
// and stderr, and kills it with SIGKILL if it runs longer than `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// Number of lines in `text` (a final line without '\n' counts; "" has none).
int CountLines(const std::string& text);

}  // namespace sluice::test

#define SLUICE_START_OR_SKIP(server, ...)                                                         \
  do {                                                                                            \
    const ::sluice::test::ServerProcess::StartResult sluice_start_result =                        \
        (server).Start(__VA_ARGS__);                                                              \
    if (sluice_start_result == ::sluice::test::ServerProcess::StartResult::kIoUringUnavailable) { \
      GTEST_SKIP() << "io_uring unavailable: " << (server).start_error();                         \
    }                                                                                             \
    ASSERT_TRUE(sluice_start_result == ::sluice::test::ServerProcess::StartResult::kReady)        \
        << (server).start_error();                                                                \
  } while (false)

#endif  // SLUICE_TEST_SUPPORT_SERVER_PROCESS_H_
