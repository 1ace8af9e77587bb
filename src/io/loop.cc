#include "sluice/io/loop.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/base/check.h"
#include "sluice/base/clock.h"
#include "sluice/base/log.h"

namespace sluice {

Loop::Loop(int index, InFlightCells* in_flight, Cell* submit_calls)
    : index_(index),
      in_flight_(in_flight),
      submit_calls_(submit_calls),
      now_ns_(MonotonicNanos())
#ifdef SLUICE_CHAOS
      ,
      chaos_(ChaosOptions::Process(), index)
#endif
{
}

Loop::~Loop() {
  synchronous_ = true;
  recv_buffers_.TearDown();
  if (ready_) io_uring_queue_exit(&ring_);
}

absl::Status Loop::Init(const RingOptions& options, unsigned recv_buffers,
                        unsigned recv_buffer_bytes) {
  absl::Status st = SetupRing(&ring_, options, &info_);
  if (!st.ok()) return st;
  ready_ = true;
  if (recv_buffers > 0 && !recv_buffers_.SetUp(&ring_, recv_buffers, recv_buffer_bytes)) {
    LogWarning("provided-buffer rings unavailable: idle connections keep their buffers");
  }
  return absl::OkStatus();
}

io_uring_sqe* Loop::GetSqe() {
  // A full SQ is flushed to the kernel, never dropped. With NODROP the CQ
  // cannot lose completions, so submitting is always safe here.
  for (;;) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    SubmitPending();
  }
}

void Loop::ReserveSqes(unsigned count) {
  while (io_uring_sq_space_left(&ring_) < count) SubmitPending();
}

void Loop::Cancel(Operation* op) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel(sqe, op, 0);
  io_uring_sqe_set_data64(sqe, FireAndForgetTag(OpKind::kCancel));
  (*in_flight_)[static_cast<size_t>(OpKind::kCancel)].Add();
}

void Loop::CloseLater(int fd) {
  if (synchronous_ || !ready_) {
    close(fd);
    return;
  }
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data64(sqe, FireAndForgetTag(OpKind::kCloseFile));
  (*in_flight_)[static_cast<size_t>(OpKind::kCloseFile)].Add();
}

void Loop::SubmitPending() {
  submit_calls_->Add();
#ifdef SLUICE_CHAOS
  chaos_.BeforeSubmit(&ring_);
#endif
  const int ret = io_uring_submit(&ring_);
  if (ret < 0 && ret != -EBUSY && ret != -EAGAIN && ret != -EINTR) {
    LogError(absl::StrCat("worker ", index_, ": io_uring_submit: ", strerror(-ret)));
  }
  // With SQPOLL the SQ frees up only as the kernel thread takes entries.
  if ((info_.setup_flags & IORING_SETUP_SQPOLL) && io_uring_sq_space_left(&ring_) == 0) {
    io_uring_sqring_wait(&ring_);
  }
}

bool Loop::SubmitAndWait(unsigned wait_nr) {
  submit_calls_->Add();
#ifdef SLUICE_CHAOS
  chaos_.BeforeSubmit(&ring_);
#endif
  const int ret = io_uring_submit_and_wait(&ring_, wait_nr);
  // Deadlines and latencies of this batch count from when it was reaped,
  // not from before the wait. One clock read per batch, not per request.
  now_ns_ = MonotonicNanos();
  if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME) {
    LogError(absl::StrCat("worker ", index_, ": io_uring_submit_and_wait: ", strerror(-ret)));
    return false;
  }
  return true;
}

void Loop::AddPriorityOp(const Operation* op) {
  SLUICE_CHECK(priority_ops_.size() < kPriorityOpsMax, "too many priority operations");
  priority_ops_.push_back(op);
}

void Loop::RemovePriorityOp(const Operation* op) { std::erase(priority_ops_, op); }

unsigned Loop::ReapCompletions() {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  // The priority CQEs already dispatched (a poll is single-shot: one each).
  const io_uring_cqe* done[kPriorityOpsMax];
  size_t done_count = 0;
  if (!priority_ops_.empty()) {
    io_uring_for_each_cqe(&ring_, head, cqe) {
      const void* data = io_uring_cqe_get_data(cqe);
      if (std::find(priority_ops_.begin(), priority_ops_.end(), data) == priority_ops_.end()) {
        continue;
      }
      done[done_count++] = cqe;
      Dispatch(cqe);
      if (done_count == priority_ops_.size() || done_count == kPriorityOpsMax) break;
    }
  }
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++count;
    if (done_count > 0 && std::find(done, done + done_count, cqe) != done + done_count) continue;
#ifdef SLUICE_CHAOS
    // The CQE is copied: the held ones outlive this batch's CQ slots.
    ChaosCqe c{cqe->user_data, cqe->res, cqe->flags};
    if (!chaos_.Hold(&c)) {
      io_uring_cqe copy = {};
      copy.user_data = c.user_data;
      copy.res = c.res;
      copy.flags = c.flags;
      Dispatch(&copy);
    }
    int skew_s = 0;
    if (chaos_deadlines_ != nullptr && chaos_.EarlyDeadlines(&skew_s)) {
      chaos_deadlines_(chaos_deadlines_arg_, skew_s);
    }
#else
    Dispatch(cqe);
#endif
  }
  io_uring_cq_advance(&ring_, count);
#ifdef SLUICE_CHAOS
  chaos_.DeliverDue([this](const ChaosCqe& c) {
    io_uring_cqe copy = {};
    copy.user_data = c.user_data;
    copy.res = c.res;
    copy.flags = c.flags;
    Dispatch(&copy);
  });
#endif
  return count;
}

void Loop::Dispatch(const io_uring_cqe* cqe) {
  const uint64_t tag = io_uring_cqe_get_data64(cqe);
  if (tag < kMaxFireAndForgetTag) {
    // CLOSE of a file or a cancel: nothing waits for it, only the count.
    if (tag > 0) (*in_flight_)[tag - 1].Sub();
    return;
  }
  auto* op = reinterpret_cast<Operation*>(tag);
  SLUICE_CHECK(op->in_flight, "an operation completes only while in flight");
  const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (!more) {
    (*in_flight_)[static_cast<size_t>(op->kind)].Sub();
    op->in_flight = false;
  }
  if (cqe->flags & IORING_CQE_F_BUFFER) recv_buffers_.TakeFromCompletion();
  op->owner->OnCompletion(op, cqe->res, cqe->flags);
  SLUICE_CHECK(recv_buffers_.out() == 0, "a completion's receive buffer goes back to the ring");
}

}  // namespace sluice
