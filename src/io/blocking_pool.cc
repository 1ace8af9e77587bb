#include "sluice/io/blocking_pool.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sluice/base/check.h"

namespace sluice {

BlockingPool::BlockingPool(Loop* loop, unsigned threads, size_t queue_max, BlockingPoolCells cells)
    : loop_(loop), threads_(threads == 0 ? 1 : threads), queue_max_(queue_max), cells_(cells) {
  wake_op_.owner = this;
}

BlockingPool::~BlockingPool() {
  Stop();
  // A READ still armed holds its own reference to the file; the ring's
  // teardown ends it, and no helper is left to write.
  if (event_fd_ >= 0) close(event_fd_);
}

absl::Status BlockingPool::Start() {
  SLUICE_CHECK(!started_, "a blocking pool starts once");
  event_fd_ = eventfd(0, EFD_CLOEXEC);
  if (event_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  started_ = true;
  for (unsigned i = 0; i < threads_; ++i) helpers_.emplace_back([this] { HelperLoop(); });
  SubmitWakeRead();
  return absl::OkStatus();
}

bool BlockingPool::Submit(std::unique_ptr<BlockingJob> job) {
  if (!running() || outstanding_ >= queue_max_) {
    if (cells_.rejected_total != nullptr) cells_.rejected_total->Add();
    return false;  // `job` is destroyed here, on the worker's thread.
  }
  ++outstanding_;
  if (cells_.queued_total != nullptr) cells_.queued_total->Add();
  SetDepth();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  work_cv_.notify_one();
  return true;
}

void BlockingPool::HelperLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::unique_ptr<BlockingJob> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job->Run();
    lock.lock();
    const bool first = done_.empty();
    done_.push_back(std::move(job));
    if (first) {
      // One wake-up per batch: the worker takes everything done when its
      // READ completes. An eventfd write blocks only at a counter of
      // 2^64-2, which one write per batch cannot reach.
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = write(event_fd_, &one, sizeof(one));
    }
  }
}

void BlockingPool::SubmitWakeRead() {
  io_uring_sqe* sqe = loop_->Arm(&wake_op_, OpKind::kPoolWake);
  io_uring_prep_read(sqe, event_fd_, &wake_value_, sizeof(wake_value_), 0);
}

void BlockingPool::OnCompletion(Operation* op, int /*res*/, uint32_t /*cqe_flags*/) noexcept {
  SLUICE_CHECK(op == &wake_op_, "a blocking pool completes only its wake-up READ");
  // Whatever the READ says (a count, EINTR, a cancel from fault
  // injection), what the helpers finished is taken now; a job finished
  // after the swap below writes the eventfd again.
  DeliverDone();
  if (!stopped_) SubmitWakeRead();
}

void BlockingPool::DeliverDone() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    taking_.swap(done_);
  }
  for (std::unique_ptr<BlockingJob>& job : taking_) {
    SLUICE_CHECK(outstanding_ > 0, "a completed job was counted when submitted");
    --outstanding_;
    job->Complete();
    job.reset();  // Its result goes with it, on this thread.
  }
  taking_.clear();
  SetDepth();
}

void BlockingPool::Stop() {
  if (stopped_) return;
  stopped_ = true;
  std::deque<std::unique_ptr<BlockingJob>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  work_cv_.notify_all();
  for (std::thread& t : helpers_) t.join();
  helpers_.clear();
  std::vector<std::unique_ptr<BlockingJob>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    finished.swap(done_);
  }
  // Destroyed here, on the worker's thread, without Complete(): whoever
  // waited for them is gone or going.
  outstanding_ -= dropped.size() + finished.size();
  dropped.clear();
  finished.clear();
  SLUICE_CHECK(outstanding_ == 0, "a stopped pool holds no job");
  SetDepth();
}

void BlockingPool::SetDepth() {
  if (cells_.depth != nullptr) cells_.depth->Set(outstanding_);
}

}  // namespace sluice
