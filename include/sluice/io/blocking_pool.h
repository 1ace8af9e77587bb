// A small pool of helper threads for the calls that have no io_uring
// operation (reading a directory: getdents has none), so that they never
// block a worker's event loop.
//
// Each worker owns one pool. A job is submitted on the worker's thread, its
// Run() executes on a helper thread, and its Complete() runs back on the
// worker's thread: a helper that finishes a job writes an eventfd on which
// the pool keeps a READ armed through the worker's Loop, so the completion
// arrives as a CQE like any other and the worker never waits. The queue is
// bounded (jobs submitted and not yet completed): past the bound Submit()
// refuses and the caller answers for itself (a 503).
//
// Ownership: the pool owns every job from Submit() until it is destroyed,
// on the worker's thread, after Complete() or when Stop() drops it; a job's
// result therefore never leaks, whatever became of whoever asked for it.
// Jobs must not touch anything but their own members in Run(); whoever
// Complete() reports to must check it is still waiting (a generation).
//
// Threads: Submit(), Stop(), OnCompletion() and every Complete() on the
// owning worker's thread; Run() on a helper thread; the queues between
// them under one mutex.
#ifndef SLUICE_IO_BLOCKING_POOL_H_
#define SLUICE_IO_BLOCKING_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "sluice/base/cell.h"
#include "sluice/io/loop.h"
#include "sluice/io/operation.h"

namespace sluice {

class BlockingJob {
 public:
  virtual ~BlockingJob() = default;
  // On a helper thread: the blocking work, on the job's own data only.
  virtual void Run() noexcept = 0;
  // On the worker's thread, once Run() is done: hand the result on. Not
  // called for a job that Stop() drops.
  virtual void Complete() noexcept = 0;
};

// What a pool counts; cells written by the worker's thread only.
struct BlockingPoolCells {
  Cell* queued_total = nullptr;    // Jobs accepted by Submit().
  Cell* rejected_total = nullptr;  // Jobs refused: the queue was full.
  Cell* depth = nullptr;           // Jobs accepted and not yet completed (gauge).
};

class BlockingPool final : public CompletionHandler {
 public:
  // `threads` helpers (at least 1); at most `queue_max` jobs outstanding.
  BlockingPool(Loop* loop, unsigned threads, size_t queue_max, BlockingPoolCells cells);
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // On the worker's thread, once its ring is set up: the eventfd, the
  // helpers and the armed READ.
  absl::Status Start();
  // Queues `job` (true) or, when the queue is full or the pool is not
  // running, destroys it at once (false).
  bool Submit(std::unique_ptr<BlockingJob> job);
  // Ends the pool: queued jobs are dropped, running ones finish (a helper
  // cannot be interrupted inside a blocking call), the helpers are joined and
  // every job not completed is destroyed without Complete(). Idempotent.
  void Stop();

  size_t depth() const { return outstanding_; }
  bool running() const { return started_ && !stopped_; }

  // The eventfd READ: completed jobs are handed back.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept override;

 private:
  void HelperLoop();
  void SubmitWakeRead();
  // Completes every job the helpers have finished.
  void DeliverDone();
  void SetDepth();

  Loop* const loop_;
  const unsigned threads_;
  const size_t queue_max_;
  const BlockingPoolCells cells_;
  int event_fd_ = -1;
  bool started_ = false;
  bool stopped_ = false;
  size_t outstanding_ = 0;  // Submitted, not yet completed or dropped.
  Operation wake_op_;
  uint64_t wake_value_ = 0;
  std::vector<std::thread> helpers_;

  std::mutex mu_;
  std::condition_variable work_cv_;
  bool stopping_ = false;                             // Under mu_.
  std::deque<std::unique_ptr<BlockingJob>> queue_;    // Under mu_: not started.
  std::vector<std::unique_ptr<BlockingJob>> done_;    // Under mu_: Run() returned.
  std::vector<std::unique_ptr<BlockingJob>> taking_;  // Worker's: being completed.
};

}  // namespace sluice

#endif  // SLUICE_IO_BLOCKING_POOL_H_
