#include "sluice/connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/check.h"
#include "sluice/clock.h"
#include "sluice/http_date.h"
#include "sluice/log.h"
#include "sluice/mime.h"
#include "sluice/response.h"
#include "sluice/worker.h"

namespace sluice {
namespace {

constexpr std::string_view kAllow = "Allow: GET, HEAD, OPTIONS\r\n";
constexpr uint64_t kLingerBytesMax = 1 << 20;

}  // namespace

Connection::Connection(Worker* worker) : worker_(worker) {
  io_op_.owner = this;
  timer_op_.owner = this;
  recv_op_.owner = this;
  timer_node_.owner = this;
  idle_node_.owner = this;
}

Connection::~Connection() {
  if (rs_ != nullptr) {
    ReleaseFile();
    worker_->ReleaseRequestState(rs_);
  }
  if (fd_ >= 0) close(fd_);
}

bool Connection::waiting_for_request() const {
  return state_ == State::kReading && (rs_ == nullptr || rs_->req_start == rs_->in_len);
}

io_uring_sqe* Connection::Prep(Operation* op, OpKind kind) {
  // One SQE per record at a time: a second one would make two completions
  // name the same operation, and the first one's result would be lost.
  SLUICE_CHECK(!op->in_flight, "an operation record is reused only after its last completion");
  SLUICE_CHECK(fd_ >= 0, "a connection submits operations only while it has a socket");
  io_uring_sqe* sqe = worker_->GetSqe();
  worker_->OnSubmit(kind);
  op->kind = kind;
  op->in_flight = true;
  op->generation = generation_;
  io_uring_sqe_set_data(sqe, op);
  return sqe;
}

void Connection::SetDeadline(absl::Duration timeout) {
  // now_s() is truncated to the second, so one more second makes the
  // timeout never shorter than asked (and at most a second longer).
  const int64_t seconds = absl::ToInt64Seconds(absl::Ceil(timeout, absl::Seconds(1)));
  worker_->wheel().Schedule(&timer_node_, worker_->now_s() + std::max<int64_t>(1, seconds) + 1);
}

void Connection::ClearDeadline() { worker_->wheel().Cancel(&timer_node_); }

void Connection::SetIdle(bool idle) {
  if (idle && !idle_node_.linked()) {
    worker_->idle_connections().PushBack(&idle_node_);
  } else if (!idle && idle_node_.linked()) {
    worker_->idle_connections().Remove(&idle_node_);
  }
}

void Connection::CancelInFlight() {
  if (io_op_.in_flight) {
    worker_->SubmitCancel(&io_op_);
  } else if (waiting_for_input() && recv_op_.in_flight) {
    worker_->SubmitCancel(&recv_op_);
  } else if (waiting_for_input()) {
    // Parked after ENOBUFS with no RECV armed: there is no completion to
    // wait for, so act now.
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
  worker_->metrics().timeouts_total.Add();
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
  if (state_ == State::kReading && rs_ != nullptr && rs_->req_start < rs_->in_len) {
    // The deadline raced the input: the rest of the head may have come with
    // a completion taken after the deadline fired (while its cancel was on
    // the way). A request that has arrived in full is answered, never
    // refused with a 408; only a head still incomplete is. The deadline
    // that fired is spent: a body still to drain needs a bound of its own.
    SetDeadline(worker_->config().header_timeout);
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
  peer_closed_ = false;
  recv_no_buffers_ = false;
  ++generation_;
  interrupt_ = Interrupt::kNone;
  SetDeadline(worker_->config().header_timeout);
  SubmitRecv();
}

void Connection::EnsureRequestState() {
  if (rs_ != nullptr) return;
  rs_ = worker_->AcquireRequestState();
  rs_->Reset();
}

void Connection::ReturnRequestState() {
  if (rs_ == nullptr) return;
  ReleaseFile();
  worker_->ReleaseRequestState(rs_);
  rs_ = nullptr;
}

void Connection::OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept {
  // Every completion reaches its operation's handler, whatever the state:
  // the handler first takes what the kernel did (a descriptor, a buffer,
  // bytes in a pipe or the socket), then decides what happens next.
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
      case OpKind::kSpliceOut:
        OnSpliceOut(res);
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
  if (state_ == State::kFree && idle_in_kernel()) worker_->Recycle(this);
}

void Connection::OnWorkerStopping() {
  // Idle keep-alive: cancel the RECV; its completion closes the socket.
  if (waiting_for_request()) CancelInFlight();
  // Otherwise the response in progress finishes and ResponseDone() closes.
}

void Connection::Abort() {
  if (state_ == State::kClosing || state_ == State::kFree) return;
  interrupt_ = Interrupt::kAborted;
  if (!io_op_.in_flight && waiting_for_input()) {
    Close();  // Waiting for input (or parked for receive buffers).
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

void Connection::SubmitRecv() {
  state_ = State::kReading;
  // Input arrives through recv_op_ while it is armed (as it usually is).
  if (recv_op_.in_flight) return;
  if (worker_->multishot_recv()) {
    ResumeMultishotRecv();
    return;
  }
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  if (rs_ == nullptr && worker_->has_buffer_ring()) {
    // Idle: the kernel picks a buffer from the worker's ring only when data
    // arrives, so a waiting connection holds none (Linux 5.19).
    io_uring_prep_recv(sqe, fd_, nullptr, worker_->recv_buffer_bytes(), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = Worker::kRecvBufferGroup;
    return;
  }
  EnsureRequestState();
  io_uring_prep_recv(sqe, fd_, rs_->in.get() + rs_->in_len, rs_->in_capacity - rs_->in_len, 0);
}

void Connection::OnRecv(int res, uint32_t cqe_flags) {
  // Take the input first: a ring buffer goes back whatever happens next.
  if (cqe_flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    // Input that raced a deadline is kept (FinishTimeout answers a head that
    // is complete); only a connection being aborted drops it.
    if (res > 0 && interrupt_ != Interrupt::kAborted && state_ == State::kReading) {
      if (rs_ == nullptr || rs_->req_start == rs_->in_len) BeginRequestInput();
      TakeInput(worker_->recv_buffer(bid), static_cast<size_t>(res));
    }
    worker_->RecycleRecvBuffer(bid);
  } else if (res > 0) {
    // Received straight into rs_->in (no buffer ring).
    if (rs_->req_start == rs_->in_len) BeginRequestInput();
    rs_->in_len += static_cast<size_t>(res);
  }
  if (EndIfInterrupted()) return;
  if (res == -ENOBUFS) {
    // The buffer ring ran dry: wait for buffers to come back, then re-arm.
    // Healthy connections are not torn down for it.
    worker_->WaitForRecvBuffers(this);
    return;
  }
  if (res <= 0) {
    // EOF, reset, or a cancel while idle: nothing to answer.
    Close();
    return;
  }
  Parse();
}

void Connection::BeginRequestInput() {
  // The first bytes of a request. After a keep-alive pause the whole head
  // must follow within the header timeout; a new connection's deadline
  // already runs from its accept and is not extended.
  EnsureRequestState();
  rs_->request_start_ns = worker_->now_ns();
  if (idle_node_.linked()) {
    SetIdle(false);
    SetDeadline(worker_->config().header_timeout);
  }
}

void Connection::RetryRecv() {
  if (!waiting_for_input() || io_op_.in_flight || recv_op_.in_flight) return;
  recv_no_buffers_ = false;
  if (worker_->stopping() && waiting_for_request()) {
    Close();
    return;
  }
  if (state_ == State::kDrainingBody) {
    ResumeMultishotRecv();  // Only the multishot RECV parks while draining.
    return;
  }
  SubmitRecv();
}

// ------------------------------------------------------ multishot receive --

void Connection::ArmMultishotRecv() {
  io_uring_sqe* sqe = Prep(&recv_op_, OpKind::kRecv);
  io_uring_prep_recv_multishot(sqe, fd_, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = Worker::kRecvBufferGroup;
}

void Connection::ResumeMultishotRecv() {
  if (peer_closed_) {
    Close();  // EOF or an error: nothing more will come.
  } else if (recv_no_buffers_) {
    worker_->WaitForRecvBuffers(this);  // RetryRecv() re-arms.
  } else if (!worker_->multishot_recv()) {
    // The kernel refused multishot: single-shot from now on.
    if (state_ == State::kDrainingBody) {
      SubmitDrainBody();
    } else {
      SubmitRecv();
    }
  } else {
    ArmMultishotRecv();
  }
}

void Connection::StopMultishotRecv() {
  if (recv_op_.in_flight) worker_->SubmitCancel(&recv_op_);
}

void Connection::TakeInput(const char* data, size_t len) {
  EnsureRequestState();
  if (rs_->body_to_skip > 0) {
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(rs_->body_to_skip, len));
    rs_->body_to_skip -= skip;
    data += skip;
    len -= skip;
  }
  if (len == 0) return;
  if (rs_->spill.empty()) {
    const size_t n = std::min(len, rs_->in_capacity - rs_->in_len);
    std::memcpy(rs_->in.get() + rs_->in_len, data, n);
    rs_->in_len += n;
    data += n;
    len -= n;
    if (len == 0) return;
    // The input buffer is full: stop receiving until it drains. What the
    // kernel already took waits in `spill` (at most about one batch).
    StopMultishotRecv();
  }
  rs_->spill.append(data, len);
}

void Connection::CompactInput() {
  std::memmove(rs_->in.get(), rs_->in.get() + rs_->req_start, rs_->in_len - rs_->req_start);
  rs_->in_len -= rs_->req_start;
  rs_->req_start = 0;
  if (rs_->spill.empty()) return;
  const size_t n = std::min(rs_->spill.size(), rs_->in_capacity - rs_->in_len);
  std::memcpy(rs_->in.get() + rs_->in_len, rs_->spill.data(), n);
  rs_->in_len += n;
  rs_->spill.erase(0, n);
}

void Connection::OnMultishotRecv(int res, uint32_t cqe_flags) {
  const bool more = (cqe_flags & IORING_CQE_F_MORE) != 0;
  const bool receiving = state_ != State::kFree && state_ != State::kClosing &&
                         state_ != State::kShuttingDown && state_ != State::kLingering &&
                         interrupt_ != Interrupt::kAborted;
  bool got_data = false;
  if (cqe_flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0 && receiving) {
      if (state_ == State::kReading && (rs_ == nullptr || rs_->req_start == rs_->in_len)) {
        BeginRequestInput();
      }
      TakeInput(worker_->recv_buffer(bid), static_cast<size_t>(res));
      got_data = true;
    }
    worker_->RecycleRecvBuffer(bid);
  }
  if (!more) {
    if (res == 0 || (res < 0 && res != -ECANCELED && res != -ENOBUFS && res != -EINVAL)) {
      peer_closed_ = true;  // EOF, reset or another socket error.
    } else if (res == -ENOBUFS) {
      recv_no_buffers_ = true;
    } else if (res == -EINVAL) {
      worker_->DisableMultishotRecv();  // Linux < 6.0.
    }
  }
  // While a response is in progress, input only waits in the buffer.
  if (!receiving || !waiting_for_input()) return;
  if (interrupt_ == Interrupt::kTimedOut) {
    if (more) return;  // The cancel has not landed yet.
    FinishTimeout();
    return;
  }
  if (state_ == State::kDrainingBody) {
    // Progress does not move the deadline: the whole body must arrive
    // within the head's deadline, however it trickles.
    if (rs_->body_to_skip == 0) {
      Dispatch();
    } else if (!more) {
      ResumeMultishotRecv();
    }
    return;
  }
  if (got_data) {
    Parse();  // Re-arms through SubmitRecv() if it needs more and we stopped.
    return;
  }
  if (!more) {
    if (worker_->stopping() && waiting_for_request()) {
      Close();
      return;
    }
    ResumeMultishotRecv();
  }
}

void Connection::Parse(bool deadline_passed) {
  const RequestParser::Status st =
      rs_->parser.Feed(rs_->in.get() + rs_->req_start, rs_->in_len - rs_->req_start);
  if (st == RequestParser::Status::kError) {
    rs_->head_only = false;
    rs_->method_class = MethodClass::kOther;
    RespondError(rs_->parser.error_status(), /*close=*/true);
    return;
  }
  if (st == RequestParser::Status::kDone) {
    HandleRequest();
    return;
  }
  if (rs_->in_len == rs_->in_capacity) {
    if (rs_->req_start > 0) {
      // Make room: move the partial request to the front and parse it again
      // (the parser's views would dangle after the move).
      CompactInput();
      rs_->parser.Reset();
      Parse(deadline_passed);
      return;
    }
    rs_->head_only = false;
    rs_->method_class = MethodClass::kOther;
    RespondError(rs_->parser.in_request_line() ? 414 : 431, /*close=*/true);
    return;
  }
  if (deadline_passed) {
    // Part of a request head arrived, too slowly: say so (RFC 9110 §15.5.9).
    // A client whose request line says HEAD reads any response as bodiless
    // (RFC 9112 §6.3): a body would look like the start of the next one.
    const std::string_view input(rs_->in.get() + rs_->req_start, rs_->in_len - rs_->req_start);
    rs_->head_only = input.starts_with("HEAD ");
    rs_->method_class = MethodClass::kOther;
    RespondError(408, /*close=*/true);
    return;
  }
  if (worker_->stopping() && rs_->req_start == rs_->in_len) {
    Close();
    return;
  }
  SubmitRecv();
}

void Connection::HandleRequest() {
  const Request& r = rs_->parser.request();
  rs_->consumed = r.head_bytes;
  switch (r.method) {
    case Method::kGet:
      rs_->method_class = MethodClass::kGet;
      break;
    case Method::kHead:
      rs_->method_class = MethodClass::kHead;
      break;
    case Method::kOptions:
      rs_->method_class = MethodClass::kOptions;
      break;
    default:
      rs_->method_class = MethodClass::kOther;
  }
  rs_->client_http10 = r.version_minor == 0;
  rs_->head_only = r.method == Method::kHead;
  rs_->keep_alive = r.KeepAlive() && !worker_->stopping();
  rs_->body_to_skip = 0;

  if (r.has(Field::kTransferEncoding)) {
    // We take no request bodies; a chunked one would have to be decoded to
    // find the next request, so the connection ends instead (RFC 9112 §6.1).
    const bool chunked = EqualsIgnoreCase(r.field(Field::kTransferEncoding), "chunked");
    RespondError(chunked ? 413 : 501, /*close=*/true);
    return;
  }
  if (r.has(Field::kExpect) && !EqualsIgnoreCase(r.field(Field::kExpect), "100-continue")) {
    RespondError(417, /*close=*/true);
    return;
  }
  if (r.content_length > 0) {
    if (r.content_length > worker_->config().request_body_drain_bytes_max) {
      RespondError(413, /*close=*/true);
      return;
    }
    const size_t buffered = rs_->in_len - rs_->req_start - r.head_bytes;
    const uint64_t take = std::min<uint64_t>(buffered, r.content_length);
    rs_->consumed += take;
    rs_->body_to_skip = r.content_length - take;
    if (rs_->body_to_skip > 0 && !rs_->spill.empty()) {
      // All of `in` past the head was body; the spilled input follows it.
      const size_t skip =
          static_cast<size_t>(std::min<uint64_t>(rs_->body_to_skip, rs_->spill.size()));
      rs_->spill.erase(0, skip);
      rs_->body_to_skip -= skip;
    }
    if (rs_->body_to_skip > 0) {
      if (r.has(Field::kExpect)) {
        // The client waits for 100 Continue before sending the body; we do
        // not want it, so answer now and end the connection (RFC 9110 §10.1.1).
        rs_->keep_alive = false;
      } else if (worker_->multishot_recv()) {
        // The multishot RECV skips the rest as it arrives (TakeInput).
        state_ = State::kDrainingBody;
        if (!recv_op_.in_flight) ResumeMultishotRecv();
        return;
      } else {
        SubmitDrainBody();
        return;
      }
    }
  }
  Dispatch();
}

void Connection::SubmitDrainBody() {
  // The request's views live in rs_->in, so the body goes to the worker's
  // scratch buffer, which every connection may overwrite: it is never read.
  state_ = State::kDrainingBody;
  const size_t want = std::min<uint64_t>(rs_->body_to_skip, worker_->scratch_bytes());
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, worker_->scratch(), want, 0);
}

void Connection::OnDrainBody(int res) {
  if (EndIfInterrupted()) return;
  if (res <= 0) {
    Close();
    return;
  }
  rs_->body_to_skip -= static_cast<uint64_t>(res);
  // No new deadline for progress: the head's deadline bounds the body too.
  if (rs_->body_to_skip > 0) {
    SubmitDrainBody();
    return;
  }
  Dispatch();
}

void Connection::Dispatch() {
  const Request& r = rs_->parser.request();
  if (metrics_only_ || worker_->ServesMetricsOnMainListener()) {
    const bool metrics_path = IsMetricsTarget(r.target);
    if (metrics_path && PeerAllowedMetrics()) {
      HandleMetrics();
      return;
    }
    // For anyone else the endpoint does not exist: the metrics listener has
    // nothing more to offer, and on the main listener a GET/HEAD goes on to
    // whatever file of that name the root holds.
    const bool get_or_head = r.method == Method::kGet || r.method == Method::kHead;
    if (metrics_only_ || (metrics_path && !get_or_head)) {
      RespondError(404, !rs_->keep_alive);
      return;
    }
  }
  switch (r.method) {
    case Method::kGet:
    case Method::kHead:
      break;
    case Method::kOptions:
      RespondOptions();
      return;
    case Method::kUnknown:
      RespondError(501, !rs_->keep_alive);
      return;
    default:
      RespondError(405, !rs_->keep_alive, kAllow);
      return;
  }
  switch (ResolveTarget(r.target, &rs_->resolved)) {
    case PathError::kOk:
      break;
    case PathError::kBadTarget:
    case PathError::kAboveRoot:
    case PathError::kNotAPath:
      // Every 400 ends the connection: a client that sends a target we
      // cannot read may not agree with us on where the next request starts.
      RespondError(400, /*close=*/true);
      return;
  }
  // One of each conditional or range field, or the request is ambiguous.
  for (Field f : {Field::kRange, Field::kIfRange, Field::kIfMatch, Field::kIfNoneMatch,
                  Field::kIfModifiedSince, Field::kIfUnmodifiedSince}) {
    if (r.field_count(f) > 1) {
      RespondError(400, /*close=*/true);
      return;
    }
  }
  if (rs_->resolved.has_dot_segment) {
    // Dotfiles and dot-directories (.git, .env, .htpasswd) are never served.
    RespondError(404, !rs_->keep_alive);
    return;
  }
  StartFile();
}

// ---------------------------------------------------------------- sending --

void Connection::BeginResponse(int status) {
  rs_->status = status;
  rs_->head_len = 0;
  rs_->out.clear();
  rs_->segments.clear();
  rs_->segment_index = 0;
  rs_->out_sent = 0;
}

CommonFields Connection::Common(int status) const {
  CommonFields common;
  common.status = status;
  common.date = worker_->date().text();
  common.keep_alive = rs_->keep_alive;
  common.client_is_http10 = rs_->client_http10;
  return common;
}

void Connection::AddMemorySegment(size_t begin) {
  if (rs_->out.size() > begin)
    rs_->segments.push_back(RequestState::Segment{begin, rs_->out.size() - begin, false});
}

void Connection::AddFileSegment(uint64_t offset, uint64_t length) {
  if (length > 0) rs_->segments.push_back(RequestState::Segment{offset, length, true});
}

void Connection::RespondError(int status, bool close, std::string_view extra_fields) {
  if (close) {
    rs_->keep_alive = false;
    // The client may still be sending what we refused (a body, the rest of
    // an oversized head): read it off before closing.
    rs_->linger = true;
  }
  BeginResponse(status);
  rs_->head_len = AppendErrorResponse(&rs_->out, Common(status), rs_->head_only, extra_fields);
  AddMemorySegment(0);
  SendSegments();
}

void Connection::RespondRedirect() {
  std::string location = "Location: /";
  location.append(EncodePath(rs_->resolved.relative));
  location.push_back('/');
  if (rs_->resolved.has_query) {
    location.push_back('?');
    location.append(rs_->resolved.query);
  }
  location.append("\r\n");
  RespondError(301, !rs_->keep_alive, location);
}

void Connection::RespondOptions() {
  BeginResponse(204);
  AppendStatusAndCommon(&rs_->out, Common(204));
  rs_->out.append(kAllow);
  FinishHead();
  AddMemorySegment(0);
  SendSegments();
}

void Connection::FinishHead() {
  EndHead(&rs_->out);
  rs_->head_len = rs_->out.size();
}

void Connection::SendSegments() {
  worker_->metrics().CountRequest(rs_->method_class, rs_->status);
  rs_->response_bytes = 0;
  SetDeadline(worker_->config().send_timeout);
  rs_->segment_index = 0;
  StartSegment();
}

void Connection::StartSegment() {
  if (rs_->segment_index >= rs_->segments.size()) {
    ResponseDone();
    return;
  }
  const RequestState::Segment& seg = rs_->segments[rs_->segment_index];
  if (!seg.from_file) {
    rs_->out_sent = 0;
    SubmitSend();
    return;
  }
  if (!rs_->has_pipe) {
    if (!worker_->pipes().Acquire(&rs_->pipe)) {
      // No pipe (descriptor exhaustion) with the head already out: the only
      // honest ending is to close.
      Close();
      return;
    }
    rs_->has_pipe = true;
    rs_->pipe_bytes = 0;
  }
  rs_->file_offset = seg.offset;
  rs_->body_remaining = seg.length;
  SubmitSpliceIn();
}

void Connection::NextSegment() {
  ++rs_->segment_index;
  StartSegment();
}

bool Connection::MoreSegmentsFollow() const {
  return rs_->segment_index + 1 < rs_->segments.size();
}

void Connection::SubmitSend() {
  state_ = State::kSending;
  const RequestState::Segment& seg = rs_->segments[rs_->segment_index];
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSend);
  // MSG_MORE while a body follows, so head and body share segments on the wire.
  const int flags = MSG_NOSIGNAL | (MoreSegmentsFollow() ? MSG_MORE : 0);
  io_uring_prep_send(sqe, fd_, rs_->out.data() + seg.offset + rs_->out_sent,
                     seg.length - rs_->out_sent, flags);
}

void Connection::OnSend(int res) {
  if (res > 0) {
    // These bytes are in the socket now.
    worker_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
    rs_->response_bytes += static_cast<uint64_t>(res);
    rs_->out_sent += static_cast<size_t>(res);
  }
  if (EndIfInterrupted()) return;
  if (res <= 0) {
    Close();
    return;
  }
  SetDeadline(worker_->config().send_timeout);  // Progress.
  if (rs_->out_sent < rs_->segments[rs_->segment_index].length) {
    SubmitSend();  // Short send: continue where it stopped.
    return;
  }
  NextSegment();
}

void Connection::SubmitSpliceIn() {
  SLUICE_DCHECK(rs_->pipe_bytes == 0, "file bytes go into the pipe only once it is empty");
  state_ = State::kSplicingIn;
  const auto len =
      static_cast<unsigned>(std::min<uint64_t>(rs_->body_remaining, rs_->pipe.capacity));
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceIn);
  io_uring_prep_splice(sqe, rs_->file->fd, static_cast<int64_t>(rs_->file_offset),
                       rs_->pipe.write_fd, -1, len, SPLICE_F_NONBLOCK);
}

void Connection::OnSpliceIn(int res) {
  if (res > 0) {
    // These bytes sit in the pipe now: a pipe that holds any goes back to
    // the pool never, or only after they have been spliced out.
    rs_->pipe_bytes += static_cast<uint32_t>(res);
    rs_->file_offset += static_cast<uint64_t>(res);
    rs_->body_remaining -= static_cast<uint64_t>(res);
  }
  if (EndIfInterrupted()) return;
  if (res <= 0) {
    // 0: the file shrank below the announced length. Error: nothing more
    // can be sent. Either way the client must see a short body.
    Close();
    return;
  }
  if (FileChanged()) return;
  SubmitSpliceOut();
}

bool Connection::FileChanged() {
  if (!rs_->file->changed) return false;
  // The file was written, truncated or replaced while we sent it: what the
  // pipe holds may be pages of the new content (or zeros). A reset tells
  // the client the response is broken; a plain close could pass for a
  // short file.
  const linger reset = {1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  worker_->metrics().cut_total.Add();
  Close();
  return true;
}

void Connection::SubmitSpliceOut() {
  state_ = State::kSplicingOut;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceOut);
  const bool more = rs_->body_remaining > 0 || MoreSegmentsFollow();
  const unsigned flags = SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
  io_uring_prep_splice(sqe, rs_->pipe.read_fd, -1, fd_, -1, rs_->pipe_bytes, flags);
}

void Connection::OnSpliceOut(int res) {
  if (res > 0) {
    SLUICE_CHECK(static_cast<uint32_t>(res) <= rs_->pipe_bytes,
                 "a splice out of the pipe moves no more than was spliced in");
    rs_->pipe_bytes -= static_cast<uint32_t>(res);
    worker_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
    rs_->response_bytes += static_cast<uint64_t>(res);
  }
  if (EndIfInterrupted()) return;
  if (res == -EAGAIN) {
    SubmitPollOut();  // The socket is full: wait until it drains.
    return;
  }
  if (res <= 0) {
    Close();
    return;
  }
  if (FileChanged()) return;
  SetDeadline(worker_->config().send_timeout);  // Progress.
  if (rs_->pipe_bytes > 0) {
    SubmitSpliceOut();
  } else if (rs_->body_remaining > 0) {
    SubmitSpliceIn();
  } else {
    NextSegment();
  }
}

void Connection::SubmitPollOut() {
  state_ = State::kWaitingWritable;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kPollOut);
  io_uring_prep_poll_add(sqe, fd_, POLLOUT);
}

void Connection::OnPollOut(int res) {
  if (EndIfInterrupted()) return;
  if (res < 0 || (res & (POLLERR | POLLHUP))) {
    Close();
    return;
  }
  SubmitSpliceOut();
}

void Connection::ResponseDone() {
  ReleaseFile();
  const int64_t now_ns = worker_->now_ns();
  worker_->metrics().latency_us.Record(
      static_cast<uint64_t>(std::max<int64_t>(0, now_ns - rs_->request_start_ns) / 1000));
  if (worker_->access_log_enabled()) LogAccess();
  if (!rs_->keep_alive || worker_->stopping()) {
    // Closing with unread input makes the kernel reset the connection,
    // which can destroy this response: linger when input may be pending
    // (bytes already buffered past this request, or a refused request).
    // A client that asked to close and sent nothing more gets a plain close.
    const bool unread = rs_->in_len > rs_->req_start + rs_->consumed || rs_->body_to_skip > 0 ||
                        !rs_->spill.empty();
    if (rs_->linger || unread) {
      LingerThenClose();
    } else {
      Close();
    }
    return;
  }
  rs_->req_start += rs_->consumed;
  rs_->consumed = 0;
  rs_->parser.Reset();
  if (!rs_->spill.empty()) CompactInput();  // Input spilled while we answered.
  if (rs_->req_start == rs_->in_len) {
    // Idle until the next request: the request state goes back to the pool
    // (when the buffer ring can receive for us meanwhile).
    if (worker_->has_buffer_ring()) {
      ReturnRequestState();
    } else {
      rs_->req_start = rs_->in_len = 0;
    }
    SetIdle(true);
    SetDeadline(worker_->config().keepalive_timeout);
    SubmitRecv();
    return;
  }
  SetDeadline(worker_->config().header_timeout);
  rs_->request_start_ns = now_ns;  // Its bytes were here; its turn starts now.
  Parse();                         // A pipelined request is already buffered.
}

// ---------------------------------------------------------------- closing --

void Connection::ReleaseFile() {
  if (rs_ == nullptr) return;
  FileCache& cache = worker_->file_cache();
  cache.Release(rs_->file);
  cache.Release(rs_->loading);
  rs_->file = rs_->loading = nullptr;
  if (rs_->has_pipe) {
    // Bytes still in the pipe belong to this response only: such a pipe is
    // closed, never lent to the next one.
    worker_->pipes().Release(rs_->pipe, rs_->pipe_bytes == 0);
    rs_->has_pipe = false;
    rs_->pipe_bytes = 0;
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
      worker_->now_ns() + absl::ToInt64Nanoseconds(worker_->config().linger_timeout);
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
  const int64_t linger_ns = linger_deadline_ns_ - worker_->now_ns();
  if (linger_ns <= 0) {
    Close();
    return;
  }
  linger_ts_.tv_sec = linger_ns / 1000000000;
  linger_ts_.tv_nsec = linger_ns % 1000000000;
  // The RECV and its linked timeout must enter the kernel together: split
  // by a full SQ, the RECV would wait without a deadline.
  worker_->ReserveSqes(2);
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, worker_->scratch(), worker_->scratch_bytes(), 0);
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
