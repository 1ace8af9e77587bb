// One worker: a thread pinned to a CPU that owns an io_uring, a SO_REUSEPORT
// listening socket, a pool of Connections and a pool of pipes. The event
// loop submits and reaps in batches and dispatches each CQE through its
// Operation record. Apart from RequestStop() (any thread), everything here
// runs on the worker's own thread.
#ifndef SLUICE_SERVER_WORKER_H_
#define SLUICE_SERVER_WORKER_H_

#include <liburing.h>
#include <linux/time_types.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "sluice/serve/access_log.h"
#ifdef SLUICE_CHAOS
#include "sluice/io/chaos.h"
#endif
#include "sluice/http/http_date.h"
#include "sluice/io/operation.h"
#include "sluice/io/pipe_pool.h"
#include "sluice/io/ring.h"
#include "sluice/io/timer_wheel.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/document_root.h"
#include "sluice/serve/file_cache.h"
#include "sluice/serve/metrics.h"
#include "sluice/server/config.h"

namespace sluice {

class Worker {
 public:
  // `root_fd`: the document root opened at start-up (the worker keeps its
  // own duplicate); `metrics_listen_fd` (or -1): a --metrics_listen socket
  // served by this worker; `access_log` (or null): the shared access-log file.
  Worker(int index, int cpu, const ServerConfig& config, int root_fd, int listen_fd,
         int metrics_listen_fd, AccessLogFile* access_log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // On the worker thread, before Run(): pins the thread and sets up the ring.
  absl::Status Init();
  // The event loop; returns after a stop once every connection has closed.
  // `armed` (may be null) is counted down once the listener, wake-up and
  // timer operations are in the kernel, i.e. when this worker serves.
  void Run(std::latch* armed);
  // Any thread: begin the graceful drain.
  void RequestStop();

  const RingInfo& ring_info() const { return ring_info_; }

  // For Connection, on this worker's thread.
  io_uring_sqe* GetSqe();
  // Makes room for `count` SQEs that must reach the kernel in one submission
  // (a linked chain split across two submissions loses its link).
  void ReserveSqes(unsigned count);
  const ServerConfig& config() const { return config_; }
  // The document root as it is now (it follows deploys).
  DocumentRoot& document_root() { return *document_root_; }
  const DateCache& date() const { return date_; }
  PipePool& pipes() { return pipes_; }
  bool stopping() const { return stopping_; }
  WorkerMetrics& metrics() { return metrics_; }
  const WorkerMetrics& metrics() const { return metrics_; }
  // Every worker's shard and the server's facts, for /metrics. Set before Run().
  void set_metrics_registry(const MetricsRegistry* registry) { registry_ = registry; }
  const MetricsRegistry* registry() const { return registry_; }
  // Counts an SQE that will complete to `kind`'s handler.
  void OnSubmit(OpKind kind) { metrics_.in_flight[static_cast<size_t>(kind)].Add(); }
  // True when /metrics is answered on the main listener (no --metrics_listen).
  bool ServesMetricsOnMainListener() const { return config_.metrics_listen.empty(); }
  FileCache& file_cache() { return *file_cache_; }
  bool access_log_enabled() const { return access_log_ != nullptr; }
  AccessLogWriter* access_log() { return access_log_.get(); }
  // Request state for connections with a request in progress.
  RequestState* AcquireRequestState();
  void ReleaseRequestState(RequestState* rs);

  // The provided-buffer ring idle connections receive into.
  static constexpr uint16_t kRecvBufferGroup = 1;
  bool has_buffer_ring() const { return buf_ring_ != nullptr; }
  // Connections receive with one multishot RECV each (Linux 6.0+).
  bool multishot_recv() const { return buf_ring_ != nullptr && multishot_recv_; }
  void DisableMultishotRecv();
  unsigned recv_buffer_bytes() const { return recv_buffer_bytes_; }
  unsigned recv_buffer_count() const { return recv_buffer_count_; }
  char* recv_buffer(uint16_t bid) { return recv_buffers_.get() + size_t{bid} * recv_buffer_bytes_; }
  void RecycleRecvBuffer(uint16_t bid);
  // `conn` got ENOBUFS; its RECV is re-armed after this batch of completions.
  void WaitForRecvBuffers(Connection* conn);

  // Memory any connection may receive into and never read (discarded input).
  char* scratch() { return scratch_.get(); }
  size_t scratch_bytes() const { return kScratchBytes; }

  // Cancels the operation whose record is `op` (fire-and-forget).
  void SubmitCancel(Operation* op);
  // A connection's socket is closed and nothing of it is in flight.
  void Recycle(Connection* conn);
  TimerWheel& wheel() { return wheel_; }
  IntrusiveList& idle_connections() { return idle_; }
  int64_t now_s() const { return now_ns_ / 1000000000; }
  // Monotonic time when the current batch of completions was reaped.
  int64_t now_ns() const { return now_ns_; }
  // xorshift64*: multipart boundaries need to be unpredictable to clients
  // that cannot see other responses, not cryptographic.
  uint64_t NextRandom() {
    random_ ^= random_ >> 12;
    random_ ^= random_ << 25;
    random_ ^= random_ >> 27;
    return random_ * 0x2545F4914F6CDD1Dull;
  }
  // Fire-and-forget CLOSE through the ring for a descriptor we own.
  void CloseLater(int fd);

 private:
  void Dispatch(const io_uring_cqe* cqe);
  // Walks the CQ ring, dispatches, advances it once.
  unsigned ReapCompletions();
  void SubmitPending();  // Hands the prepared SQEs to the kernel.
  void SubmitAccept();
  void SubmitMetricsAccept();
  void OnAccept(Operation* op, int res, uint32_t flags);
  void SubmitAcceptRetry();
  void PauseAccept();
  // Below this worker's share of --max_connections, or made so by closing
  // the longest-idle keep-alive connection: a new socket may be taken.
  bool MakeRoom();
  void SubmitWake();
  void OnWake(int res);
  void SubmitTick();
  void OnTick(int res);
  void BeginDrain();
  void SetUpBufferRing();
  void RetryWaitingRecvs();
  void ForceCloseAll();
  Connection* Allocate();
  io_uring_sqe* PrepWorkerOp(Operation* op, OpKind kind);

  const int index_;
  const int cpu_;
  const ServerConfig& config_;
  int listen_fd_;
  int wake_fd_ = -1;
  io_uring ring_ = {};
  bool ring_ready_ = false;
  RingInfo ring_info_;
  DateCache date_;
  PipePool pipes_;
  WorkerMetrics metrics_;
  const MetricsRegistry* registry_ = nullptr;

  Operation accept_op_;
  Operation metrics_accept_op_;
  int metrics_listen_fd_ = -1;
  std::unique_ptr<AccessLogWriter> access_log_;
  std::unique_ptr<DocumentRoot> document_root_;  // Outlives file_cache_.
  std::unique_ptr<FileCache> file_cache_;
  bool tearing_down_ = false;  // In the destructor: close synchronously.

  std::vector<std::unique_ptr<RequestState>> request_states_;  // Every one ever made.
  std::vector<RequestState*> free_request_states_;
  // Spare states kept after a burst; the rest is freed (each is ~17 KiB).
  static constexpr size_t kSpareRequestStates = 128;

  io_uring_buf_ring* buf_ring_ = nullptr;
  bool multishot_recv_ = true;  // --multishot_recv, off for good after EINVAL.
  size_t buf_ring_bytes_ = 0;
  unsigned recv_buffer_count_ = 0;
  unsigned recv_buffer_bytes_ = 0;
  // Buffers the kernel handed us in the completion being handled; each
  // handler copies what it keeps and gives them back at once.
  unsigned recv_buffers_out_ = 0;
  std::unique_ptr<char[]> recv_buffers_;
  std::vector<std::pair<Connection*, uint32_t>> waiting_for_buffers_;  // With generation.
  std::vector<std::pair<Connection*, uint32_t>> retrying_;

  static constexpr size_t kScratchBytes = 16 * 1024;
  std::unique_ptr<char[]> scratch_;
  Operation accept_retry_op_;
  Operation wake_op_;
  Operation tick_op_;
  uint64_t wake_value_ = 0;
  __kernel_timespec tick_ts_ = {};
  __kernel_timespec retry_ts_ = {};

  std::atomic<bool> stop_requested_{false};
  bool stopping_ = false;
  bool forced_ = false;
  int64_t drain_deadline_ns_ = 0;

  std::vector<std::unique_ptr<Connection>> connections_;  // Every one ever made.
  std::vector<Connection*> free_;                         // Those in State::kFree.
  size_t active_ = 0;
  size_t max_active_ = 0;  // This worker's share of --max_connections.
  // Below max_active_ by at least this much, accept is multishot; closer,
  // single-shot, so the limit is never overshot.
  static constexpr size_t kAcceptHeadroom = 64;
  bool accept_paused_ = false;  // At max_active_ with no idle connection to close.
  int64_t now_ns_ = 0;          // Monotonic, read once per reaped batch.
  TimerWheel wheel_;
  IntrusiveList idle_;  // Idle keep-alive connections, oldest first.
  uint64_t random_ = 0x9E3779B97F4A7C15ull;
  // Provided buffers the kernel has not handed back to us (in a CQE) plus
  // those we have not recycled: the ring is full when this is 0.
  size_t recv_buffers_lent_ = 0;
#ifdef SLUICE_CHAOS
  Chaos chaos_{ChaosOptions::Process(), index_, this};
  // Deadline processing at an unusual moment, possibly early.
  void ChaosDeadlines();
#endif
};

}  // namespace sluice

#endif  // SLUICE_SERVER_WORKER_H_
