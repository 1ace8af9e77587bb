// One worker, the composition root of a thread pinned to a CPU: its Loop
// (io_uring), its SO_REUSEPORT listener and accept policy, its pools of
// connections and request state, the shared services connections use
// (ConnectionHost), and the graceful drain. The event loop submits and
// reaps in batches; the Loop hands each CQE to its operation's owner. Apart
// from RequestStop() (any thread), everything runs on the worker's thread.
#ifndef SLUICE_SERVER_WORKER_H_
#define SLUICE_SERVER_WORKER_H_

#include <liburing.h>
#include <linux/time_types.h>

#include <atomic>
#include <cstdint>
#include <latch>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"

namespace sluice {

class Worker final : public ConnectionHost, public CompletionHandler {
 public:
  // `generation`: the configuration to start with (sites, rules, roots; the
  // worker keeps its own duplicates of the roots' descriptors);
  // `metrics_listen_fd` (or -1): a --metrics_listen socket
  // served by this worker; `access_log` (or null): the shared access-log file.
  Worker(int index, int cpu, const ServerConfig& config,
         std::shared_ptr<const ServeGeneration> generation, int listen_fd, int metrics_listen_fd,
         AccessLogFile* access_log);
  ~Worker();

  // On the worker thread, before Run(): pins the thread and sets up the ring.
  absl::Status Init();
  // The event loop; returns after a stop once every connection has closed.
  // `armed` (may be null) is counted down once the listener, wake-up and
  // timer operations are in the kernel, i.e. when this worker serves.
  void Run(std::latch* armed);
  // Any thread: begin the graceful drain.
  void RequestStop();
  // Any thread: new requests use `generation` from the worker's next safe
  // point on (a later call before then supersedes it).
  void RequestReload(std::shared_ptr<const ServeGeneration> generation);
  // Any thread: the generation this worker has switched to.
  uint64_t generation_id() const;

  const RingInfo& ring_info() const { return loop_.info(); }
  // Set before Run().
  void set_metrics_registry(const MetricsRegistry* registry) { registry_ = registry; }
  // Set before Run(): the heartbeat this worker stamps on its tick.
  void set_health(HealthState* health) { health_ = health; }

  // Spare request states kept after a burst; the rest are freed.
  // Kept when load is low: each is ~20 KiB, and an idle keep-alive
  // connection holds none (issue 14: idle memory below nginx's). Under load
  // the worker keeps as many as the last tick's peak (OnTick).
  static constexpr size_t kSpareRequestStates = 16;

  // ConnectionHost.
  RequestState* AcquireRequestState() override;
  void ReleaseRequestState(RequestState* rs) override;
  void WaitForRecvBuffers(Connection* conn) override;
  void Recycle(Connection* conn) override;

  // The worker's own operations: accept, wake-up, tick, accept back-off.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept override;

 private:
  void SubmitAccept();
  void SubmitMetricsAccept();
  void OnAccept(Operation* op, int res, uint32_t flags);
  void SubmitAcceptRetry();
  void PauseAccept();
  // Below this worker's share of --max_connections, or made so by closing
  // the longest-idle keep-alive connection: a new socket may be taken.
  bool MakeRoom();
  // An accepted socket: started as a connection, or closed (draining, or no
  // room) and counted. True when started.
  bool TakeAccepted(int fd, bool metrics_only);
  void SubmitWake();
  void OnWake(int res);
  void AdoptPendingGeneration();
  void SubmitTick();
  void OnTick(int res);
  // Deadlines due by `now_s`: each connection's OnTimeout().
  void RunDeadlines(int64_t now_s);
  void RecordBatch(unsigned count);
  void BeginDrain();
  void RetryWaitingRecvs();
  void ForceCloseAll();
  Connection* Allocate();

  const int cpu_;
  int listen_fd_;
  int wake_fd_ = -1;

  Operation accept_op_;
  Operation metrics_accept_op_;
  int metrics_listen_fd_ = -1;

  // Request states not lent to a connection, used as a stack: acquire and
  // release are O(1), whatever a burst left behind. A lent state is owned
  // by its connection until it comes back (Connection's destructor returns
  // it too). At most kSpareRequestStates are kept; past that a returning
  // state is freed, so memory goes back when load falls (each is ~17 KiB).
  std::vector<std::unique_ptr<RequestState>> spare_request_states_;
  size_t request_states_freed_ = 0;  // Since the last tick's malloc_trim.
  size_t lent_request_states_ = 0;
  // The most lent since the last tick, and the spares kept (OnTick).
  size_t lent_request_states_peak_ = 0;
  size_t spare_request_states_cap_ = kSpareRequestStates;

  std::vector<std::pair<Connection*, uint32_t>> waiting_for_buffers_;  // With generation.
  std::vector<std::pair<Connection*, uint32_t>> retrying_;

  Operation accept_retry_op_;
  Operation wake_op_;
  Operation tick_op_;
  uint64_t wake_value_ = 0;
  __kernel_timespec tick_ts_ = {};
  __kernel_timespec retry_ts_ = {};

  std::atomic<bool> stop_requested_{false};
  std::mutex reload_mu_;
  std::shared_ptr<const ServeGeneration> pending_generation_;  // Under reload_mu_.
  std::atomic<uint64_t> adopted_generation_id_{0};
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
};

}  // namespace sluice

#endif  // SLUICE_SERVER_WORKER_H_
