#include "sluice/server/worker.h"

#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "sluice/base/check.h"
#include "sluice/base/clock.h"
#include "sluice/base/log.h"

namespace sluice {

Worker::Worker(int index, int cpu, const ServerConfig& config,
               std::shared_ptr<const ServeGeneration> generation, int listen_fd,
               int metrics_listen_fd, AccessLogFile* access_log)
    : ConnectionHost(index, config), cpu_(cpu), listen_fd_(listen_fd) {
  const int threads = std::max(config.threads, 1);
  max_active_ = static_cast<size_t>(std::max(1, (config.max_connections + threads - 1) / threads));
  for (Operation* op :
       {&accept_op_, &metrics_accept_op_, &accept_retry_op_, &wake_op_, &tick_op_}) {
    op->owner = this;
  }
  metrics_listen_fd_ = metrics_listen_fd;
  metrics_.cpu = cpu;
  if (access_log != nullptr) {
    access_log_ = std::make_unique<AccessLogWriter>(&loop_, &metrics_, access_log);
  }
  AdoptGeneration(std::move(generation));
  // The eventfd exists before the thread starts so RequestStop() can never
  // race its creation.
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
#ifdef SLUICE_CHAOS
  loop_.set_chaos_deadlines(
      [](void* self, int skew_s) {
        auto* w = static_cast<Worker*>(self);
        w->RunDeadlines(w->loop_.now_s() + skew_s);
      },
      this);
#endif
}

Worker::~Worker() {
  loop_.set_synchronous();
  connections_.clear();  // Closes any descriptors they still hold.
  if (listen_fd_ >= 0) close(listen_fd_);
  if (metrics_listen_fd_ >= 0) close(metrics_listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status Worker::Init() {
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  if (cpu_ >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  RingOptions options;
  options.entries = config_.ring_entries;
  options.iowq_bounded = config_.iowq_bounded_max;
  options.iowq_unbounded = config_.iowq_unbounded_max;
  options.sqpoll = config_.sqpoll;
  options.sqpoll_idle_ms = static_cast<unsigned>(absl::ToInt64Milliseconds(config_.sqpoll_idle));
  absl::Status st = loop_.Init(options, config_.recv_buffers, config_.recv_buffer_bytes);
  if (!st.ok()) return st;
  const RingInfo& info = loop_.info();
  const unsigned buffers = loop_.recv_buffers().count();
  metrics_.sq_entries.Set(info.sq_entries);
  metrics_.recv_buffers.Set(buffers);
  metrics_.recv_buffers_free.Set(buffers);
  metrics_.cq_entries.Set(info.cq_entries);
  return absl::OkStatus();
}

void Worker::RequestReload(std::shared_ptr<const ServeGeneration> generation) {
  {
    std::lock_guard<std::mutex> lock(reload_mu_);
    pending_generation_ = std::move(generation);
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

uint64_t Worker::generation_id() const {
  return adopted_generation_id_.load(std::memory_order_acquire);
}

void Worker::AdoptPendingGeneration() {
  std::shared_ptr<const ServeGeneration> next;
  {
    std::lock_guard<std::mutex> lock(reload_mu_);
    next = std::move(pending_generation_);
  }
  if (next == nullptr || stopping_) return;
  const uint64_t id = next->id;
  AdoptGeneration(std::move(next));
  // Spare request states let go of the old generation now; states in use
  // keep theirs until their request ends.
  for (const auto& rs : spare_request_states_) rs->lookup.generation.reset();
  adopted_generation_id_.store(id, std::memory_order_release);
}

void Worker::RequestStop() {
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  // An eventfd write never blocks unless the counter is about to overflow.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void Worker::RunDeadlines(int64_t now_s) {
  wheel_.Advance(now_s,
                 [](TimerNode* node) { static_cast<Connection*>(node->owner)->OnTimeout(); });
}

void Worker::Run(std::latch* armed) {
  StartRoots();
  adopted_generation_id_.store(generation().id, std::memory_order_release);
  SubmitAccept();
  SubmitMetricsAccept();
  SubmitWake();
  SubmitTick();
  loop_.SubmitPending();
  if (armed != nullptr) armed->count_down();
  for (;;) {
    // now_ns() was read when the last batch was reaped: a second-granular
    // wheel needs nothing fresher, and the clock is read once per batch.
    date_.Refresh(time(nullptr));
    RunDeadlines(loop_.now_s());
#ifdef SLUICE_CHAOS
    if (Operation* op = loop_.chaos().PickCancel()) loop_.Cancel(op);
    // Held completions are still to come: neither end nor sleep.
    const bool holding = loop_.chaos().holding();
#else
    constexpr bool holding = false;
#endif
    if (stopping_ && active_ == 0 && !holding) {
      // Last lines of the access log go out before the worker ends.
      if (access_log_ == nullptr) break;
      access_log_->Flush();
      if (!access_log_->in_flight()) break;
    }
    metrics_.sq_ready.Set(loop_.sq_ready());
    if (!loop_.SubmitAndWait(holding ? 0 : 1)) break;
    // A change to the files must be known before any request of the same
    // batch looks at them: a RECV issued inline at submission can post its
    // CQE ahead of an inotify wake-up that happened earlier but ran as
    // deferred task work. So the inotify polls' CQEs go first (each file
    // cache registers its poll with the loop).
    const unsigned count = loop_.ReapCompletions();
    if (!waiting_for_buffers_.empty()) RetryWaitingRecvs();
    RecordBatch(count);
  }
  // Worker-level operations (accept, wake, tick) may still be armed; the
  // ring's teardown cancels them.
#ifdef SLUICE_CHAOS
  LogInfo(loop_.chaos().Summary());
#endif
}

void Worker::RecordBatch(unsigned count) {
  metrics_.cqes_total.Add(count);
  metrics_.cq_ready.Set(count);
  if (count > 0) metrics_.batch.Record(count);
  metrics_.cq_overflow_total.Set(loop_.cq_overflow());
  metrics_.active.Set(active_);
  metrics_.idle_keepalive.Set(idle_.size());
  if (loop_.recv_buffers().enabled()) metrics_.recv_buffers_free.Set(loop_.recv_buffers().free());
  metrics_.request_states.Set(lent_request_states_ + spare_request_states_.size());
  metrics_.request_states_spare.Set(spare_request_states_.size());
  metrics_.pipes_lent.Set(pipes_.lent());
  metrics_.pipes_idle.Set(pipes_.idle());
  metrics_.pipes_held_bytes.Set(pipes_.held_bytes());
  metrics_.pipes_resize_failed_total.Set(pipes_.resize_failed());
  metrics_.pipes_over_budget_total.Set(pipes_.over_budget());
}

void Worker::OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept {
  switch (op->kind) {
    case OpKind::kAccept:
      OnAccept(op, res, cqe_flags);
      break;
    case OpKind::kAcceptRetry:
      if (!stopping_ && !accept_paused_) SubmitAccept();
      break;
    case OpKind::kWake:
      OnWake(res);
      break;
    case OpKind::kTick:
      OnTick(res);
      break;
    default:
      SLUICE_CHECK(false, "a worker completes only its own operations");
  }
}

void Worker::SubmitAccept() {
  if (listen_fd_ < 0 || accept_op_.in_flight) return;
  io_uring_sqe* sqe = loop_.Arm(&accept_op_, OpKind::kAccept);
  if (active_ + kAcceptHeadroom < max_active_) {
    // Multishot (Linux 5.19): one SQE keeps accepting until it errors.
    io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } else {
    // Near --max_connections: one at a time, so that a burst waiting in
    // the backlog is never accepted only to be closed.
    io_uring_prep_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
}

void Worker::SubmitMetricsAccept() {
  if (metrics_listen_fd_ < 0 || metrics_accept_op_.in_flight) return;
  io_uring_sqe* sqe = loop_.Arm(&metrics_accept_op_, OpKind::kAccept);
  io_uring_prep_multishot_accept(sqe, metrics_listen_fd_, nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
}

bool Worker::TakeAccepted(int fd, bool metrics_only) {
  if (stopping_) {
    loop_.CloseLater(fd);
    return false;
  }
  if (!MakeRoom()) {
    metrics_.rejected_total.Add();
    loop_.CloseLater(fd);
    return false;
  }
  metrics_.accepted_total.Add();
  Allocate()->Start(fd, metrics_only);
  return true;
}

void Worker::OnAccept(Operation* op, int res, uint32_t flags) {
  if (op == &metrics_accept_op_) {
    // The metrics listener: few clients and no back-off dance, but its
    // sockets count against --max_connections like any other.
    if (res >= 0) TakeAccepted(res, /*metrics_only=*/true);
    if (!(flags & IORING_CQE_F_MORE) && !stopping_) SubmitMetricsAccept();
    return;
  }
  if (res >= 0) {
    if (!TakeAccepted(res, /*metrics_only=*/false)) {
      // Over the limit with nobody idle to make room for: stop accepting
      // until a connection closes.
      if (!stopping_) PauseAccept();
    } else if (active_ >= max_active_ && idle_.empty()) {
      PauseAccept();
    } else if ((flags & IORING_CQE_F_MORE) && active_ + kAcceptHeadroom >= max_active_) {
      // Close to the limit: end the multishot accept; its last completion
      // re-arms it single-shot.
      loop_.Cancel(&accept_op_);
    }
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    // Out of descriptors or memory: back off instead of spinning, keep
    // serving what we have, and try again shortly.
    if (accept_op_.in_flight) loop_.Cancel(&accept_op_);
    if (!accept_retry_op_.in_flight && !stopping_) SubmitAcceptRetry();
    return;
  } else if (res != -ECANCELED && res != -EINTR && res != -ECONNABORTED && res != -EAGAIN) {
    LogError(absl::StrCat("worker ", index_, ": accept: ", strerror(-res)));
  }
  if (!(flags & IORING_CQE_F_MORE) && !stopping_ && !accept_retry_op_.in_flight &&
      !accept_paused_) {
    SubmitAccept();
  }
}

bool Worker::MakeRoom() {
  if (active_ < max_active_) return true;
  if (idle_.empty()) return false;
  // Close the connection idle the longest. Its slot stays taken until its
  // cancel completes, so for a moment this worker is one over its share.
  static_cast<Connection*>(idle_.front()->owner)->CloseIdle();
  return true;
}

void Worker::PauseAccept() {
  if (accept_paused_) return;
  accept_paused_ = true;
  if (accept_op_.in_flight) loop_.Cancel(&accept_op_);
}

void Worker::SubmitAcceptRetry() {
  retry_ts_.tv_sec = 0;
  retry_ts_.tv_nsec = 100 * 1000 * 1000;
  io_uring_sqe* sqe = loop_.Arm(&accept_retry_op_, OpKind::kAcceptRetry);
  io_uring_prep_timeout(sqe, &retry_ts_, 0, 0);
}

void Worker::SubmitWake() {
  io_uring_sqe* sqe = loop_.Arm(&wake_op_, OpKind::kWake);
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
}

void Worker::OnWake(int res) {
  if (stop_requested_.load(std::memory_order_acquire) && !stopping_) {
    BeginDrain();
    return;
  }
  // Between completions: a safe point to switch configurations.
  AdoptPendingGeneration();
  if (res >= 0 || res == -EINTR || res == -EAGAIN) SubmitWake();
}

void Worker::SubmitTick() {
  tick_ts_.tv_sec = 0;
  tick_ts_.tv_nsec = 250 * 1000 * 1000;
  io_uring_sqe* sqe = loop_.Arm(&tick_op_, OpKind::kTick);
  io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
}

void Worker::OnTick(int /*res*/) {
  // Spares follow the load: as many as the last tick's peak of states in
  // use (at least kSpareRequestStates), so keep-alive connections that go
  // idle between requests do not free and reallocate theirs, and after a
  // burst the rest goes within two ticks.
  spare_request_states_cap_ = std::max(kSpareRequestStates, lent_request_states_peak_);
  lent_request_states_peak_ = lent_request_states_;
  while (spare_request_states_.size() > spare_request_states_cap_) {
    spare_request_states_.pop_back();
    ++request_states_freed_;
  }
  if (request_states_freed_ > 0) {
    // After a burst the freed request states (~17 KiB each, below malloc's
    // mmap threshold) stay in this thread's heap as free chunks: give their
    // pages back to the kernel, at most once a tick and only after frees.
    request_states_freed_ = 0;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    // Not under a sanitizer: its allocator is not glibc's, and glibc's
    // malloc_trim from a worker then leaves glibc's arena accounting such
    // that a thread's exit aborts (seen in the ASan chaos build).
    malloc_trim(0);
#endif
  }
  if (health_ != nullptr) health_->Beat(index_, MonotonicNanos());
  if (access_log_) access_log_->Tick();
  TickRoots(loop_.now_ns());
  if (stopping_ && !forced_ && MonotonicNanos() >= drain_deadline_ns_) ForceCloseAll();
  SubmitTick();
}

void Worker::BeginDrain() {
  stopping_ = true;
  drain_deadline_ns_ = MonotonicNanos() + absl::ToInt64Nanoseconds(config_.drain_timeout);
  // Stop accepting: cancel the multishot accept and close the listener so
  // the kernel hands new connections to nobody (the other workers are
  // draining too).
  if (accept_op_.in_flight) loop_.Cancel(&accept_op_);
  if (metrics_accept_op_.in_flight) loop_.Cancel(&metrics_accept_op_);
  StopRoots();
  for (int* fd : {&listen_fd_, &metrics_listen_fd_}) {
    if (*fd < 0) continue;
    shutdown(*fd, SHUT_RDWR);
    close(*fd);
    *fd = -1;
  }
  for (const auto& conn : connections_) {
    if (conn->state() != Connection::State::kFree) conn->OnWorkerStopping();
  }
  if (config_.drain_timeout <= absl::ZeroDuration()) ForceCloseAll();
}

void Worker::ForceCloseAll() {
  forced_ = true;
  for (const auto& conn : connections_) {
    if (conn->state() != Connection::State::kFree) conn->Abort();
  }
}

void Worker::WaitForRecvBuffers(Connection* conn) {
  waiting_for_buffers_.emplace_back(conn, conn->generation());
}

void Worker::RetryWaitingRecvs() {
  // Buffers consumed in this batch have been recycled by now.
  // Swap with a second vector (whose capacity is kept) because a retry may
  // park its connection again.
  retrying_.swap(waiting_for_buffers_);
  for (const auto& [conn, generation] : retrying_) {
    if (conn->generation() == generation) conn->RetryRecv();
  }
  retrying_.clear();
}

RequestState* Worker::AcquireRequestState() {
  ++lent_request_states_;
  lent_request_states_peak_ = std::max(lent_request_states_peak_, lent_request_states_);
  if (spare_request_states_.empty()) {
    return new RequestState(config_.limits, config_.limits.head_bytes_max);
  }
  RequestState* rs = spare_request_states_.back().release();
  spare_request_states_.pop_back();
  return rs;
}

void Worker::ReleaseRequestState(RequestState* rs) {
  SLUICE_CHECK(rs != nullptr && lent_request_states_ > 0, "only a lent request state comes back");
  --lent_request_states_;
  std::unique_ptr<RequestState> owned(rs);
  // Keep a bounded number spare; beyond that give the memory back.
  if (spare_request_states_.size() < spare_request_states_cap_) {
    spare_request_states_.push_back(std::move(owned));
  } else {
    ++request_states_freed_;  // The next tick hands the pages back.
  }
}

Connection* Worker::Allocate() {
  if (free_.empty()) {
    connections_.push_back(std::make_unique<Connection>(this));
    free_.push_back(connections_.back().get());
  }
  Connection* conn = free_.back();
  free_.pop_back();
  ++active_;
  return conn;
}

void Worker::Recycle(Connection* conn) {
  SLUICE_CHECK(conn->state() == Connection::State::kFree && conn->idle_in_kernel(),
               "a connection returns to the pool closed and with nothing in flight");
  metrics_.closed_total.Add();
  --active_;
  free_.push_back(conn);
  if (stopping_) return;
  if (accept_paused_ && active_ < max_active_) {
    accept_paused_ = false;
    SubmitAccept();
  } else if (accept_retry_op_.in_flight) {
    // Backing off after EMFILE: a descriptor was just freed, so try now
    // rather than at the end of the back-off.
    SubmitAccept();
  }
}

}  // namespace sluice
