#include "sluice/serve/connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/base/check.h"
#include "sluice/base/clock.h"
#include "sluice/base/log.h"
#include "sluice/http/http_date.h"
#include "sluice/http/mime.h"
#include "sluice/http/response.h"
#include "sluice/serve/connection_host.h"

namespace sluice {
namespace {

constexpr uint64_t kLingerBytesMax = 1 << 20;

}  // namespace

Connection::Connection(ConnectionHost* host) : host_(host) {
  io_op_.owner = this;
  timer_op_.owner = this;
  recv_op_.owner = this;
  timer_node_.owner = this;
  idle_node_.owner = this;
}

Connection::~Connection() {
  if (rs_ != nullptr) {
    ReleaseFile();
    host_->ReleaseRequestState(rs_);
  }
  if (fd_ >= 0) close(fd_);
}

bool Connection::waiting_for_request() const {
  return state_ == State::kReading && (rs_ == nullptr || rs_->input.req_start == rs_->input.in_len);
}

io_uring_sqe* Connection::Prep(Operation* op, OpKind kind) {
  SLUICE_CHECK(fd_ >= 0, "a connection submits operations only while it has a socket");
  return host_->loop().Arm(op, kind, generation_);
}

void Connection::SetDeadline(absl::Duration timeout) {
  // now_s() is truncated to the second, so one more second makes the
  // timeout never shorter than asked (and at most a second longer).
  const int64_t seconds = absl::ToInt64Seconds(absl::Ceil(timeout, absl::Seconds(1)));
  host_->wheel().Schedule(&timer_node_, host_->loop().now_s() + std::max<int64_t>(1, seconds) + 1);
}

void Connection::ClearDeadline() { host_->wheel().Cancel(&timer_node_); }

void Connection::SetIdle(bool idle) {
  if (idle && !idle_node_.linked()) {
    host_->idle_connections().PushBack(&idle_node_);
  } else if (!idle && idle_node_.linked()) {
    host_->idle_connections().Remove(&idle_node_);
  }
}

void Connection::CancelInFlight() {
  if (io_op_.in_flight) {
    host_->loop().Cancel(&io_op_);
  } else if (waiting_for_input() && recv_op_.in_flight) {
    host_->loop().Cancel(&recv_op_);
  } else if (waiting_for_input() || state_ == State::kListing) {
    // Parked after ENOBUFS with no RECV armed, or waiting for a helper
    // thread (its result is dropped when it sees the generation gone):
    // there is no completion to wait for, so act now.
    Close();
  }
}

bool Connection::closing() const {
  return state_ == State::kFree || state_ == State::kClosing || state_ == State::kShuttingDown ||
         state_ == State::kLingering;
}

void Connection::OnTimeout() {
  // Closing states carry deadlines of their own (the linger's linked timeout).
  if (closing() || interrupt_ != Interrupt::kNone) return;
  host_->metrics().timeouts_total.Add();
  interrupt_ = Interrupt::kTimedOut;
  if (io_op_.in_flight && !waiting_for_input()) {
    // A response was in progress. Its operation may sit in an io-wq thread
    // on slow storage (SPLICE, OPENAT2, STATX, READ) where a cancel is not
    // honoured until the I/O ends: the client sees the end now, and the
    // slot is recycled only after the operation's completion arrives.
    shutdown(fd_, SHUT_RDWR);
  }
  CancelInFlight();
}

bool Connection::EndIfInterrupted() {
  switch (interrupt_) {
    case Interrupt::kNone:
      return false;
    case Interrupt::kAborted:
      if (state_ != State::kClosing) Close();
      return true;
    case Interrupt::kTimedOut:
      FinishTimeout();
      return true;
  }
  return false;
}

void Connection::FinishTimeout() {
  // The operation cancelled by OnTimeout() (or CloseIdle()) has completed
  // and its result has been taken.
  interrupt_ = Interrupt::kNone;
  if (state_ == State::kReading && rs_ != nullptr && rs_->input.req_start < rs_->input.in_len) {
    // The deadline raced the input: the rest of the head may have come with
    // a completion taken after the deadline fired (while its cancel was on
    // the way). A request that has arrived in full is answered, never
    // refused with a 408; only a head still incomplete is. The deadline
    // that fired is spent: a body still to drain needs a bound of its own.
    SetDeadline(host_->config().header_timeout);
    Parse(/*deadline_passed=*/true);
  } else {
    Close();
  }
}

void Connection::CloseIdle() {
  SetIdle(false);
  interrupt_ = Interrupt::kTimedOut;
  CancelInFlight();
}

void Connection::Start(int fd, bool metrics_only) {
  SLUICE_CHECK(state_ == State::kFree && fd_ < 0 && rs_ == nullptr && idle_in_kernel() &&
                   !timer_node_.linked() && !idle_node_.linked(),
               "a recycled connection owns nothing and has nothing in flight");
  fd_ = fd;
  metrics_only_ = metrics_only;
  peer_known_ = false;
  client_forwarded_ = false;
  peer_closed_ = false;
  recv_no_buffers_ = false;
  fin_sent_ = false;
  ++generation_;
  interrupt_ = Interrupt::kNone;
  // The header deadline covers a PROXY header too: one bound from accept
  // to the end of the first request head.
  SetDeadline(host_->config().header_timeout);
  if (!metrics_only && host_->config().proxy_protocol) {
    state_ = State::kReadingProxy;  // The peer is known once the header is in.
  } else if (!AdmitPeer()) {
    return;
  }
  SubmitRecv();
}

void Connection::EnsureRequestState() {
  if (rs_ != nullptr) return;
  rs_ = host_->AcquireRequestState();
  rs_->Reset();
}

void Connection::ReturnRequestState() {
  if (rs_ == nullptr) return;
  ReleaseFile();
  host_->ReleaseRequestState(rs_);
  rs_ = nullptr;
}

void Connection::OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept {
  // Every completion reaches its operation's handler, whatever the state:
  // the handler first takes what the kernel did (a descriptor, a buffer,
  // bytes in a pipe or the socket), then decides what happens next.
  // A slot is recycled only after the last completion of each of its
  // operations, so a completion always finds the use that submitted it; a
  // mismatch would hand one client's result to another.
  SLUICE_CHECK(op->generation == generation_,
               "a completion belongs to the connection that submitted it");
  if (op == &recv_op_) {
    OnMultishotRecv(res, cqe_flags);
  } else if (op == &timer_op_) {
    OnLingerTimeout();
  } else {
    switch (op->kind) {
      case OpKind::kRecv:
        if (state_ == State::kDrainingBody) {
          OnDrainBody(res);
        } else if (state_ == State::kLingering) {
          OnLingerRecv(res);
        } else {
          OnRecv(res, cqe_flags);
        }
        break;
      case OpKind::kOpen:
        OnOpen(res);
        break;
      case OpKind::kStatx:
        OnStatx(res);
        break;
      case OpKind::kRead:
        OnReadFile(res);
        break;
      case OpKind::kSend:
        OnSend(res);
        break;
      case OpKind::kSpliceIn:
        OnSpliceIn(res);
        break;
      case OpKind::kPollOut:
        OnPollOut(res);
        break;
      case OpKind::kShutdown:
        OnShutdown(res);
        break;
      case OpKind::kClose:
        OnClose(res);
        break;
      default:
        SLUICE_CHECK(false, "a connection completes only connection operations");
    }
  }
  // The slot goes back to the pool with its last completion, never before.
  if (state_ == State::kFree && idle_in_kernel()) host_->Recycle(this);
}

void Connection::OnWorkerStopping() {
  // Idle keep-alive: cancel the RECV; its completion closes the socket.
  if (waiting_for_request()) CancelInFlight();
  // Otherwise the response in progress finishes and ResponseDone() closes.
}

void Connection::Abort() {
  if (state_ == State::kClosing || state_ == State::kFree) return;
  interrupt_ = Interrupt::kAborted;
  if (!io_op_.in_flight && (waiting_for_input() || state_ == State::kListing)) {
    Close();  // Waiting for input (or parked for receive buffers, or for a helper).
    return;
  }
  if (io_op_.in_flight) {
    CancelInFlight();
    // A splice in an io-wq thread may not see the cancel; a shutdown makes
    // any socket operation finish at once. Shutdown is off the data path.
    shutdown(fd_, SHUT_RDWR);
  }
}

// ---------------------------------------------------------------- reading --

void Connection::ResponseDone() {
  ReleaseFile();
  const int64_t now_ns = host_->loop().now_ns();
  host_->metrics().latency_us.Record(
      static_cast<uint64_t>(std::max<int64_t>(0, now_ns - rs_->response.request_start_ns) / 1000));
  if (host_->access_log() != nullptr &&
      (!rs_->response.probe || host_->config().log_health_checks)) {
    LogAccess();
  }
  rs_->response.probe = false;
  if (client_forwarded_) {
    ReleaseLimit();  // A client named by a trusted proxy is counted per request.
    client_forwarded_ = false;
  }
  if (!rs_->response.keep_alive || host_->stopping()) {
    // Closing with unread input makes the kernel reset the connection,
    // which can destroy this response: linger when input may be pending
    // (bytes already buffered past this request, or a refused request).
    // A client that asked to close and sent nothing more gets a plain close.
    const bool unread = rs_->input.in_len > rs_->input.req_start + rs_->input.consumed ||
                        rs_->input.body_to_skip > 0 || !rs_->input.spill.empty();
    if (rs_->response.linger || unread) {
      LingerThenClose();
    } else {
      Close();
    }
    return;
  }
  rs_->input.req_start += rs_->input.consumed;
  rs_->input.consumed = 0;
  rs_->input.parser.Reset();
  if (!rs_->input.spill.empty()) CompactInput();  // Input spilled while we answered.
  if (rs_->input.req_start == rs_->input.in_len) {
    // Idle until the next request: the request state goes back to the pool
    // (when the buffer ring can receive for us meanwhile).
    if (host_->loop().recv_buffers().enabled()) {
      ReturnRequestState();
    } else {
      rs_->input.req_start = rs_->input.in_len = 0;
    }
    SetIdle(true);
    SetDeadline(host_->config().keepalive_timeout);
    SubmitRecv();
    return;
  }
  SetDeadline(host_->config().header_timeout);
  rs_->response.request_start_ns = now_ns;  // Its bytes were here; its turn starts now.
  Parse();                                  // A pipelined request is already buffered.
}

// ---------------------------------------------------------------- closing --

void Connection::ReleaseFile() {
  if (rs_ == nullptr) return;
  if (RootFiles* files = rs_->lookup.files) {
    files->cache().Release(rs_->tx.file);
    files->cache().Release(rs_->lookup.loading);
    rs_->tx.file = rs_->lookup.loading = nullptr;
    host_->ReleaseRoot(files);
    rs_->lookup.files = nullptr;
  }
  SLUICE_CHECK(rs_->tx.file == nullptr && rs_->lookup.loading == nullptr,
               "files are held only with their root");
  if (rs_->tx.has_pipe) {
    // Bytes still in the pipe belong to this response only: such a pipe is
    // closed, never lent to the next one.
    host_->pipes().Release(rs_->tx.pipe, rs_->tx.pipe_bytes == 0);
    rs_->tx.has_pipe = false;
    rs_->tx.pipe_bytes = 0;
  }
}

void Connection::LingerThenClose() {
  // Closing a socket with unread input makes the kernel send a RST, which
  // can destroy our last response before the client reads it. So: send FIN,
  // then read and discard until the client closes, for a bounded time.
  state_ = State::kShuttingDown;
  StopMultishotRecv();  // The lingering RECV below reads what is left.
  ClearDeadline();      // The lingering RECV has a linked timeout of its own.
  SetIdle(false);
  linger_bytes_ = 0;
  // A total bound that input cannot push back: a client trickling a byte
  // now and then must not hold the connection past it.
  linger_deadline_ns_ =
      host_->loop().now_ns() + absl::ToInt64Nanoseconds(host_->config().linger_timeout);
  if (fin_sent_) {
    SubmitLinger();  // The FIN left with the response (NextSegment).
    return;
  }
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kShutdown);
  io_uring_prep_shutdown(sqe, fd_, SHUT_WR);
}

void Connection::OnShutdown(int res) {
  if (EndIfInterrupted()) return;
  if (res < 0) {
    Close();
    return;
  }
  SubmitLinger();
}

void Connection::SubmitLinger() {
  state_ = State::kLingering;
  const int64_t linger_ns = linger_deadline_ns_ - host_->loop().now_ns();
  if (linger_ns <= 0) {
    Close();
    return;
  }
  linger_ts_.tv_sec = linger_ns / 1000000000;
  linger_ts_.tv_nsec = linger_ns % 1000000000;
  // The RECV and its linked timeout must enter the kernel together: split
  // by a full SQ, the RECV would wait without a deadline.
  host_->loop().ReserveSqes(2);
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, host_->scratch(), host_->scratch_bytes(), 0);
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_sqe* tsqe = Prep(&timer_op_, OpKind::kLingerTimeout);
  io_uring_prep_link_timeout(tsqe, &linger_ts_, 0);
}

void Connection::OnLingerRecv(int res) {
  linger_res_ = res;  // Discarded input: nothing to take but the count.
  OnLingerStep();
}

void Connection::OnLingerTimeout() {
  SLUICE_DCHECK(state_ == State::kLingering, "a linger timeout completes while lingering");
  OnLingerStep();
}

void Connection::OnLingerStep() {
  // Both the RECV and its linked timeout post a completion; act once both
  // are in, so the slots are free to reuse.
  if (io_op_.in_flight || timer_op_.in_flight) return;
  if (linger_res_ > 0 && interrupt_ != Interrupt::kAborted) {
    linger_bytes_ += static_cast<uint64_t>(linger_res_);
    if (linger_bytes_ < kLingerBytesMax) {
      SubmitLinger();
      return;
    }
  }
  Close();
}

void Connection::Close() {
  // Ending before a valid PROXY header (invalid, absent, too slow, EOF) is
  // the balancer's or an intruder's error; a drain is neither.
  if (state_ == State::kReadingProxy && !host_->stopping()) {
    host_->metrics().proxy_header_errors_total.Add();
  }
  ReleaseLimit();
  ClearDeadline();
  SetIdle(false);
  StopMultishotRecv();  // Its last completion may come after the CLOSE's.
  ReturnRequestState();
  state_ = State::kClosing;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kClose);
  io_uring_prep_close(sqe, fd_);
}

void Connection::OnClose(int /*res*/) {
  // The descriptor is gone whatever close() returned; OnCompletion recycles
  // the slot once the last of its operations has completed too.
  fd_ = -1;
  state_ = State::kFree;
}

}  // namespace sluice
