#include "sluice/server/worker.h"

#include <fcntl.h>
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

Worker::Worker(int index, int cpu, const ServerConfig& config, int root_fd, int listen_fd,
               int metrics_listen_fd, AccessLogFile* access_log)
    : index_(index),
      cpu_(cpu),
      config_(config),
      listen_fd_(listen_fd),
      pipes_(config.pipe_bytes, config.idle_pipes_max),
      now_ns_(MonotonicNanos()),
      wheel_(now_s()) {
  const int threads = std::max(config.threads, 1);
  max_active_ = static_cast<size_t>(std::max(1, (config.max_connections + threads - 1) / threads));
  for (Operation* op :
       {&accept_op_, &metrics_accept_op_, &accept_retry_op_, &wake_op_, &tick_op_}) {
    op->owner = this;
  }
  metrics_listen_fd_ = metrics_listen_fd;
  metrics_.cpu = cpu;
  if (access_log != nullptr) access_log_ = std::make_unique<AccessLogWriter>(this, access_log);
  // Each worker's own descriptor: each replaces it on its own when the
  // root's path changes. Start-up, so plain syscalls.
  struct stat st = {};
  const int own_root = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
  if (own_root >= 0) fstat(own_root, &st);
  document_root_ = std::make_unique<DocumentRoot>(
      this, config.root_path.empty() ? config.root : config.root_path, own_root,
      static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino));
  file_cache_ =
      std::make_unique<FileCache>(this, config.file_cache_entries, config.file_cache_bytes,
                                  config.file_cache_valid, document_root_.get());
  // The eventfd exists before the thread starts so RequestStop() can never
  // race its creation.
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed) && seed != 0) random_ = seed;
}

Worker::~Worker() {
  tearing_down_ = true;
  connections_.clear();  // Closes any descriptors they still hold.
  file_cache_.reset();
  document_root_.reset();
  if (buf_ring_ != nullptr) {
    io_uring_unregister_buf_ring(&ring_, kRecvBufferGroup);
    munmap(buf_ring_, buf_ring_bytes_);
  }
  if (ring_ready_) io_uring_queue_exit(&ring_);
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
  absl::Status st = SetupRing(&ring_, options, &ring_info_);
  if (!st.ok()) return st;
  ring_ready_ = true;
  multishot_recv_ = config_.multishot_recv;
  SetUpBufferRing();
  scratch_ = std::make_unique<char[]>(kScratchBytes);
  metrics_.sq_entries.Set(ring_info_.sq_entries);
  metrics_.recv_buffers.Set(buf_ring_ != nullptr ? recv_buffer_count_ : 0);
  metrics_.recv_buffers_free.Set(buf_ring_ != nullptr ? recv_buffer_count_ : 0);
  metrics_.cq_entries.Set(ring_info_.cq_entries);
  return absl::OkStatus();
}

void Worker::RequestStop() {
  stop_requested_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  // An eventfd write never blocks unless the counter is about to overflow.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void Worker::SubmitPending() {
  metrics_.submit_calls_total.Add();
#ifdef SLUICE_CHAOS
  chaos_.BeforeSubmit(&ring_);
#endif
  const int ret = io_uring_submit(&ring_);
  if (ret < 0 && ret != -EBUSY && ret != -EAGAIN && ret != -EINTR) {
    LogError(absl::StrCat("worker ", index_, ": io_uring_submit: ", strerror(-ret)));
  }
  // With SQPOLL the SQ frees up only as the kernel thread takes entries.
  if ((ring_info_.setup_flags & IORING_SETUP_SQPOLL) && io_uring_sq_space_left(&ring_) == 0) {
    io_uring_sqring_wait(&ring_);
  }
}

io_uring_sqe* Worker::GetSqe() {
  // A full SQ is flushed to the kernel, never dropped. With NODROP the CQ
  // cannot lose completions, so submitting is always safe here.
  for (;;) {
    if (io_uring_sqe* sqe = io_uring_get_sqe(&ring_)) return sqe;
    SubmitPending();
  }
}

void Worker::ReserveSqes(unsigned count) {
  while (io_uring_sq_space_left(&ring_) < count) SubmitPending();
}

io_uring_sqe* Worker::PrepWorkerOp(Operation* op, OpKind kind) {
  io_uring_sqe* sqe = GetSqe();
  OnSubmit(kind);
  op->kind = kind;
  op->in_flight = true;
  io_uring_sqe_set_data(sqe, op);
  return sqe;
}

void Worker::CloseLater(int fd) {
  if (tearing_down_ || !ring_ready_) {
    close(fd);
    return;
  }
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data64(sqe, FireAndForgetTag(OpKind::kCloseFile));
  OnSubmit(OpKind::kCloseFile);
}

void Worker::SubmitCancel(Operation* op) {
  io_uring_sqe* sqe = GetSqe();
  io_uring_prep_cancel(sqe, op, 0);
  io_uring_sqe_set_data64(sqe, FireAndForgetTag(OpKind::kCancel));
  OnSubmit(OpKind::kCancel);
}

void Worker::Run(std::latch* armed) {
  file_cache_->Start();
  document_root_->Start(file_cache_.get());
  SubmitAccept();
  SubmitMetricsAccept();
  SubmitWake();
  SubmitTick();
  SubmitPending();
  if (armed != nullptr) armed->count_down();
  now_ns_ = MonotonicNanos();
  for (;;) {
    // now_ns_ was read when the last batch was reaped: a second-granular
    // wheel needs nothing fresher, and the clock is read once per batch.
    date_.Refresh(time(nullptr));
    wheel_.Advance(now_s(),
                   [](TimerNode* node) { static_cast<Connection*>(node->owner)->OnTimeout(); });
#ifdef SLUICE_CHAOS
    if (Operation* op = chaos_.PickCancel()) SubmitCancel(op);
    // Held completions are still to come: neither end nor sleep.
    const bool holding = chaos_.holding();
#else
    constexpr bool holding = false;
#endif
    if (stopping_ && active_ == 0 && !holding) {
      // Last lines of the access log go out before the worker ends.
      if (access_log_ == nullptr) break;
      access_log_->Flush();
      if (!access_log_->in_flight()) break;
    }
    metrics_.submit_calls_total.Add();
    metrics_.sq_ready.Set(io_uring_sq_ready(&ring_));
#ifdef SLUICE_CHAOS
    chaos_.BeforeSubmit(&ring_);
#endif
    const int ret = io_uring_submit_and_wait(&ring_, holding ? 0 : 1);
    // Deadlines and latencies of this batch count from when it was reaped,
    // not from before the wait. One clock read per batch, not per request.
    now_ns_ = MonotonicNanos();
    if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME) {
      LogError(absl::StrCat("worker ", index_, ": io_uring_submit_and_wait: ", strerror(-ret)));
      break;
    }
    const unsigned count = ReapCompletions();
    if (!waiting_for_buffers_.empty()) RetryWaitingRecvs();
    metrics_.cqes_total.Add(count);
    metrics_.cq_ready.Set(count);
    if (count > 0) metrics_.batch.Record(count);
    metrics_.cq_overflow_total.Set(*ring_.cq.koverflow);
    metrics_.active.Set(active_);
    metrics_.idle_keepalive.Set(idle_.size());
    if (buf_ring_ != nullptr)
      metrics_.recv_buffers_free.Set(recv_buffer_count_ - recv_buffers_lent_);
    metrics_.pipes_lent.Set(pipes_.lent());
    metrics_.pipes_idle.Set(pipes_.idle());
  }
  // Worker-level operations (accept, wake, tick) may still be armed; the
  // ring's teardown cancels them.
#ifdef SLUICE_CHAOS
  LogInfo(chaos_.Summary());
#endif
}

unsigned Worker::ReapCompletions() {
  unsigned head;
  unsigned count = 0;
  io_uring_cqe* cqe;
  // A change to the files must be known before any request of the same
  // batch looks at them: a RECV issued inline at submission can post its
  // CQE ahead of an inotify wake-up that happened earlier but ran as
  // deferred task work. So the inotify poll's CQE goes first.
  const io_uring_cqe* inotify_cqe = nullptr;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (file_cache_->IsInotifyPoll(io_uring_cqe_get_data64(cqe))) {
      inotify_cqe = cqe;
      Dispatch(cqe);
      break;
    }
  }
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++count;
    if (cqe == inotify_cqe) continue;
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
    ChaosDeadlines();
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

#ifdef SLUICE_CHAOS
void Worker::ChaosDeadlines() {
  int skew_s = 0;
  if (!chaos_.EarlyDeadlines(&skew_s)) return;
  wheel_.Advance(now_s() + skew_s,
                 [](TimerNode* node) { static_cast<Connection*>(node->owner)->OnTimeout(); });
}
#endif

void Worker::Dispatch(const io_uring_cqe* cqe) {
  const uint64_t tag = io_uring_cqe_get_data64(cqe);
  if (tag < kMaxFireAndForgetTag) {
    // CLOSE of a file or a cancel: nothing waits for it, only the count.
    if (tag > 0) metrics_.in_flight[tag - 1].Sub();
    return;
  }
  auto* op = reinterpret_cast<Operation*>(tag);
  if (cqe->flags & IORING_CQE_F_BUFFER) ++recv_buffers_lent_;
  const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (!more) metrics_.in_flight[static_cast<size_t>(op->kind)].Sub();
  if (op->owner != this) {
    auto* conn = static_cast<Connection*>(op->owner);
    // A slot is recycled only after the last completion of each of its
    // operations, so a completion always finds the connection that
    // submitted it; a mismatch would hand one client's result to another.
    SLUICE_CHECK(op->in_flight && op->generation == conn->generation(),
                 "a completion belongs to the connection that submitted it");
    if (!more) op->in_flight = false;
    if (cqe->flags & IORING_CQE_F_BUFFER) ++recv_buffers_out_;
    conn->OnCompletion(op, cqe->res, cqe->flags);
    SLUICE_CHECK(recv_buffers_out_ == 0, "a completion's receive buffer goes back to the ring");
    return;
  }
  SLUICE_CHECK(op->in_flight, "a worker operation completes only while in flight");
  if (!more) op->in_flight = false;
  switch (op->kind) {
    case OpKind::kAccept:
      OnAccept(op, cqe->res, cqe->flags);
      break;
    case OpKind::kLogWrite:
      if (access_log_) access_log_->OnWrite(cqe->res);
      break;
    case OpKind::kInotify:
      file_cache_->OnInotify(cqe->res);
      break;
    case OpKind::kInotifyPoll:
      file_cache_->OnInotifyPoll(cqe->res);
      break;
    case OpKind::kRootOpen:
      document_root_->OnOpen(cqe->res);
      break;
    case OpKind::kRootStatx:
      document_root_->OnStatx(cqe->res);
      break;
    case OpKind::kRootCheck:
      document_root_->OnCheck(cqe->res);
      break;
    case OpKind::kAcceptRetry:
      if (!stopping_ && !accept_paused_) SubmitAccept();
      break;
    case OpKind::kWake:
      OnWake(cqe->res);
      break;
    case OpKind::kTick:
      OnTick(cqe->res);
      break;
    default:
      LogError(absl::StrCat("worker ", index_, ": unexpected operation ", OpKindName(op->kind)));
  }
}

void Worker::SubmitAccept() {
  if (listen_fd_ < 0 || accept_op_.in_flight) return;
  io_uring_sqe* sqe = PrepWorkerOp(&accept_op_, OpKind::kAccept);
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
  io_uring_sqe* sqe = PrepWorkerOp(&metrics_accept_op_, OpKind::kAccept);
  io_uring_prep_multishot_accept(sqe, metrics_listen_fd_, nullptr, nullptr,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void Worker::OnAccept(Operation* op, int res, uint32_t flags) {
  if (op == &metrics_accept_op_) {
    // The metrics listener: few clients and no back-off dance, but its
    // sockets count against --max_connections like any other.
    if (res >= 0) {
      if (stopping_) {
        CloseLater(res);
      } else if (!MakeRoom()) {
        metrics_.rejected_total.Add();
        CloseLater(res);
      } else {
        metrics_.accepted_total.Add();
        Allocate()->Start(res, /*metrics_only=*/true);
      }
    }
    if (!(flags & IORING_CQE_F_MORE) && !stopping_) SubmitMetricsAccept();
    return;
  }
  if (res >= 0) {
    if (stopping_) {
      CloseLater(res);
    } else if (!MakeRoom()) {
      // Over the limit with nobody idle to make room for: refuse this one
      // and stop accepting until a connection closes.
      metrics_.rejected_total.Add();
      CloseLater(res);
      PauseAccept();
    } else {
      metrics_.accepted_total.Add();
      Allocate()->Start(res, /*metrics_only=*/false);
      if (active_ >= max_active_ && idle_.empty()) {
        PauseAccept();
      } else if ((flags & IORING_CQE_F_MORE) && active_ + kAcceptHeadroom >= max_active_) {
        // Close to the limit: end the multishot accept; its last completion
        // re-arms it single-shot.
        SubmitCancel(&accept_op_);
      }
    }
  } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
    // Out of descriptors or memory: back off instead of spinning, keep
    // serving what we have, and try again shortly.
    if (accept_op_.in_flight) SubmitCancel(&accept_op_);
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
  if (accept_op_.in_flight) SubmitCancel(&accept_op_);
}

void Worker::SubmitAcceptRetry() {
  retry_ts_.tv_sec = 0;
  retry_ts_.tv_nsec = 100 * 1000 * 1000;
  io_uring_sqe* sqe = PrepWorkerOp(&accept_retry_op_, OpKind::kAcceptRetry);
  io_uring_prep_timeout(sqe, &retry_ts_, 0, 0);
}

void Worker::SubmitWake() {
  io_uring_sqe* sqe = PrepWorkerOp(&wake_op_, OpKind::kWake);
  io_uring_prep_read(sqe, wake_fd_, &wake_value_, sizeof(wake_value_), 0);
}

void Worker::OnWake(int res) {
  if (stop_requested_.load(std::memory_order_acquire) && !stopping_) {
    BeginDrain();
    return;
  }
  if (res >= 0 || res == -EINTR || res == -EAGAIN) SubmitWake();
}

void Worker::SubmitTick() {
  tick_ts_.tv_sec = 0;
  tick_ts_.tv_nsec = 250 * 1000 * 1000;
  io_uring_sqe* sqe = PrepWorkerOp(&tick_op_, OpKind::kTick);
  io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
}

void Worker::OnTick(int /*res*/) {
  if (access_log_) access_log_->Tick();
  document_root_->Tick(now_ns_);
  if (stopping_ && !forced_ && MonotonicNanos() >= drain_deadline_ns_) ForceCloseAll();
  SubmitTick();
}

void Worker::BeginDrain() {
  stopping_ = true;
  drain_deadline_ns_ = MonotonicNanos() + absl::ToInt64Nanoseconds(config_.drain_timeout);
  // Stop accepting: cancel the multishot accept and close the listener so
  // the kernel hands new connections to nobody (the other workers are
  // draining too).
  if (accept_op_.in_flight) SubmitCancel(&accept_op_);
  if (metrics_accept_op_.in_flight) SubmitCancel(&metrics_accept_op_);
  file_cache_->StopWatching();
  document_root_->Stop();
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

void Worker::SetUpBufferRing() {
  recv_buffer_count_ = config_.recv_buffers;
  recv_buffer_bytes_ = config_.recv_buffer_bytes;
  if (recv_buffer_count_ == 0) return;
  // The ring of buffer descriptors must be page-aligned: mmap it (liburing
  // 2.3 has no io_uring_setup_buf_ring).
  buf_ring_bytes_ = sizeof(io_uring_buf) * recv_buffer_count_;
  void* mem =
      mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return;
  io_uring_buf_reg reg = {};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = recv_buffer_count_;
  reg.bgid = kRecvBufferGroup;
  if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) {
    // Linux < 5.19: every connection keeps its own receive buffer instead.
    munmap(mem, buf_ring_bytes_);
    LogWarning("provided-buffer rings unavailable: idle connections keep their buffers");
    return;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(buf_ring_);
  recv_buffers_ = std::make_unique<char[]>(size_t{recv_buffer_count_} * recv_buffer_bytes_);
  const int mask = io_uring_buf_ring_mask(recv_buffer_count_);
  for (unsigned i = 0; i < recv_buffer_count_; ++i) {
    io_uring_buf_ring_add(buf_ring_, recv_buffer(static_cast<uint16_t>(i)), recv_buffer_bytes_,
                          static_cast<uint16_t>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(recv_buffer_count_));
}

void Worker::RecycleRecvBuffer(uint16_t bid) {
  SLUICE_CHECK(recv_buffers_out_ > 0 && bid < recv_buffer_count_,
               "only a buffer the kernel handed us goes back to the ring");
  --recv_buffers_out_;
  io_uring_buf_ring_add(buf_ring_, recv_buffer(bid), recv_buffer_bytes_, bid,
                        io_uring_buf_ring_mask(recv_buffer_count_), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
  --recv_buffers_lent_;
}

void Worker::DisableMultishotRecv() {
  if (!multishot_recv_) return;
  multishot_recv_ = false;
  LogWarning(absl::StrCat("worker ", index_,
                          ": multishot RECV refused (Linux < 6.0?): single-shot receives"));
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
  if (free_request_states_.empty()) {
    request_states_.push_back(
        std::make_unique<RequestState>(config_.limits, config_.limits.head_bytes_max));
    free_request_states_.push_back(request_states_.back().get());
  }
  RequestState* rs = free_request_states_.back();
  free_request_states_.pop_back();
  return rs;
}

void Worker::ReleaseRequestState(RequestState* rs) {
  // Keep a bounded number spare; beyond that give the memory back.
  if (free_request_states_.size() < kSpareRequestStates || tearing_down_) {
    free_request_states_.push_back(rs);
    return;
  }
  for (auto it = request_states_.begin(); it != request_states_.end(); ++it) {
    if (it->get() == rs) {
      std::swap(*it, request_states_.back());
      request_states_.pop_back();
      return;
    }
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
