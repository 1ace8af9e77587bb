// Access log, one line per request: nginx's "combined" format or one JSON
// object (JSON Lines). AccessLogFile is the shared, reopenable file
// (SIGUSR1 → Reopen() or Replace() on the main thread); each worker owns
// an AccessLogWriter that buffers lines and writes them through its ring
// (IORING_OP_WRITE), so logging never blocks serving. A failed or short
// write is counted and retried; a full buffer drops lines (counted).
#ifndef SLUICE_SERVE_ACCESS_LOG_H_
#define SLUICE_SERVE_ACCESS_LOG_H_

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/io/loop.h"
#include "sluice/io/operation.h"
#include "sluice/serve/config.h"
#include "sluice/serve/metrics.h"

namespace sluice {

class AccessLogFile {
 public:
  using Format = ServerConfig::AccessLogFormat;
  // `path` "-" means standard output.
  static absl::StatusOr<std::unique_ptr<AccessLogFile>> Open(const std::string& path,
                                                             Format format = Format::kCombined);
  ~AccessLogFile();

  const std::string& path() const { return path_; }
  Format format() const { return format_; }

  // Main thread: open the path again (after logrotate moved it). Workers
  // hold their own duplicates and switch at their next tick, so the shared
  // descriptor can be replaced at once.
  absl::Status Reopen();
  // Main thread: the same with a descriptor someone else opened for the
  // path (a privileged helper, after the privilege drop). Takes `fd`.
  void Replace(int fd);

  // Worker side: the current generation and a duplicate of its descriptor.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  int DupCurrent() const;

 private:
  AccessLogFile(std::string path, int fd, Format format)
      : path_(std::move(path)), format_(format), fd_(fd) {}
  std::string path_;
  const Format format_;
  mutable std::mutex mu_;  // Guards fd_: Reopen() on the main thread vs. DupCurrent() on a worker.
  int fd_;
  std::atomic<uint64_t> generation_{0};
};

class AccessLogWriter final : public CompletionHandler {
 public:
  AccessLogWriter(Loop* loop, WorkerMetrics* metrics, AccessLogFile* file);
  ~AccessLogWriter();
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // "METHOD TARGET VERSION"; all empty when the request line was unusable.
  struct RequestLine {
    std::string_view method, target, version;
  };
  // One request, as the log line reports it. Views into the request's
  // buffers, valid for the call only.
  struct Entry {
    std::string_view client;  // The client's address ("-" when unknown).
    std::string_view peer;    // The socket peer's, when it differs (a proxy); else empty.
    int64_t unix_ms = 0;      // Wall-clock time of the response's end.
    RequestLine request;
    int status = 0;
    uint64_t body_bytes = 0;
    uint64_t duration_us = 0;
    std::string_view referer;
    std::string_view user_agent;
    std::string_view request_id;  // X-Request-ID as sent; empty: none.
  };
  // X-Request-ID values longer than this are not logged (nor cut: a cut id
  // would point at another request).
  static constexpr size_t kRequestIdBytesMax = 128;
  // Appends one line: combined (escaped as nginx does) or JSON (escaped per
  // RFC 8259, ASCII only). No allocation once the buffer is warm.
  void Log(const Entry& entry);
  // Submits a write if lines are waiting and none is in flight.
  void Flush();
  // Once per tick: flush, and switch descriptors after a reopen.
  void Tick();
  // The WRITE of a buffer completed.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept override;
  bool in_flight() const { return op_.in_flight; }

 private:
  void AppendCombined(const Entry& e);
  void AppendJson(const Entry& e);

  static constexpr size_t kFlushBytes = 32 * 1024;
  static constexpr size_t kMaxBufferedBytes = 4 * 1024 * 1024;

  Loop* const loop_;
  WorkerMetrics* const metrics_;
  AccessLogFile* file_;
  int fd_ = -1;
  uint64_t generation_ = 0;
  std::string pending_;  // Lines not yet handed to the kernel.
  std::string writing_;  // The buffer of the write in flight.
  size_t written_ = 0;   // Bytes of writing_ already written.
  Operation op_;
  time_t time_cached_ = -1;
  char time_text_[32] = {};
};

}  // namespace sluice

#endif  // SLUICE_SERVE_ACCESS_LOG_H_
