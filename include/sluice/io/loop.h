// The event loop's I/O half: one io_uring, the operations armed on it and
// the completions reaped from it. Knows nothing of HTTP or connections: an
// Operation names its owner (a CompletionHandler) and every CQE goes, whole,
// to that owner. Owned by one worker; everything runs on its thread.
//
// The arming sequence lives here once (Arm): take an SQE (flushing a full SQ
// to the kernel, never dropping), mark the record in flight, count it, point
// user_data at it. Fire-and-forget operations (a CLOSE of a file, a cancel)
// carry a small tag instead of a record, so in-flight counts stay exact.
#ifndef SLUICE_IO_LOOP_H_
#define SLUICE_IO_LOOP_H_

#include <liburing.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "sluice/base/cell.h"
#ifdef SLUICE_CHAOS
#include "sluice/io/chaos.h"
#endif
#include "sluice/io/operation.h"
#include "sluice/io/recv_buffers.h"
#include "sluice/io/ring.h"

namespace sluice {

using InFlightCells = std::array<Cell, static_cast<size_t>(OpKind::kCount)>;

class Loop {
 public:
  // `in_flight` counts SQEs not yet completed, by kind; `submit_calls` the
  // io_uring_enter calls that submit. Both outlive the loop.
  Loop(int index, InFlightCells* in_flight, Cell* submit_calls);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // On the worker's thread: sets up the ring (and the receive buffers).
  absl::Status Init(const RingOptions& options, unsigned recv_buffers, unsigned recv_buffer_bytes);
  const RingInfo& info() const { return info_; }
  RecvBuffers& recv_buffers() { return recv_buffers_; }
  const RecvBuffers& recv_buffers() const { return recv_buffers_; }

  // One SQE for `op`, whose completion reaches op->owner. One record, one
  // SQE at a time: a second would make two completions name the same
  // operation and the first one's result would be lost.
  io_uring_sqe* Arm(Operation* op, OpKind kind, uint32_t generation = 0) {
    SLUICE_CHECK(!op->in_flight, "an operation record is reused only after its last completion");
    SLUICE_CHECK(op->owner != nullptr, "an operation has an owner to complete to");
    io_uring_sqe* sqe = GetSqe();
    (*in_flight_)[static_cast<size_t>(kind)].Add();
    op->kind = kind;
    op->in_flight = true;
    op->generation = generation;
    io_uring_sqe_set_data(sqe, op);
    return sqe;
  }
  // Makes room for `count` SQEs that must reach the kernel in one submission
  // (a linked chain split across two submissions loses its link).
  void ReserveSqes(unsigned count);
  // Cancels the operation whose record is `op` (fire-and-forget): its own
  // completion still arrives, with whatever the kernel did.
  void Cancel(Operation* op);
  // CLOSE through the ring of a descriptor we own (fire-and-forget); a plain
  // close() once the loop is being torn down.
  void CloseLater(int fd);
  // From now on CloseLater() closes at once (the ring is going away).
  void set_synchronous() { synchronous_ = true; }

  // Hands the prepared SQEs to the kernel.
  void SubmitPending();
  // Submits and waits for at least `wait_nr` completions; then reads the
  // clock once for the batch. False on an unexpected error (logged).
  bool SubmitAndWait(unsigned wait_nr);
  // Walks the CQ ring once, dispatching each CQE to its owner, those of the
  // priority operations ahead of the others; advances the ring once.
  // Returns the number of CQEs.
  unsigned ReapCompletions();
  // Completions of `op` are dispatched ahead of the others of their batch
  // (an inotify poll: a change must be known before requests of the same
  // batch look at files). At most kPriorityOpsMax; Remove before `op` dies.
  static constexpr size_t kPriorityOpsMax = 64;
  void AddPriorityOp(const Operation* op);
  void RemovePriorityOp(const Operation* op);

  // Monotonic time when the current batch of completions was reaped.
  int64_t now_ns() const { return now_ns_; }
  int64_t now_s() const { return now_ns_ / 1000000000; }
  unsigned sq_ready() { return io_uring_sq_ready(&ring_); }
  unsigned cq_overflow() const { return *ring_.cq.koverflow; }

#ifdef SLUICE_CHAOS
  Chaos& chaos() { return chaos_; }
  // Called between completions when chaos runs deadlines early.
  void set_chaos_deadlines(void (*fn)(void*, int skew_s), void* arg) {
    chaos_deadlines_ = fn;
    chaos_deadlines_arg_ = arg;
  }
#endif

 private:
  std::vector<const Operation*> priority_ops_;
  io_uring_sqe* GetSqe();
  void Dispatch(const io_uring_cqe* cqe);

  const int index_;
  InFlightCells* const in_flight_;
  Cell* const submit_calls_;
  io_uring ring_ = {};
  bool ready_ = false;
  bool synchronous_ = false;
  RingInfo info_;
  RecvBuffers recv_buffers_;
  int64_t now_ns_ = 0;
#ifdef SLUICE_CHAOS
  Chaos chaos_;
  void (*chaos_deadlines_)(void*, int) = nullptr;
  void* chaos_deadlines_arg_ = nullptr;
#endif
};

}  // namespace sluice

#endif  // SLUICE_IO_LOOP_H_
