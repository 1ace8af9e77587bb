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

constexpr std::string_view kAllow = "Allow: GET, HEAD, OPTIONS\r\n";
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
    // Part of a request head arrived, too slowly: say so (RFC 9110 §15.5.9).
    rs_->response.head_only = false;
    rs_->response.method_class = MethodClass::kOther;
    RespondError(408, /*close=*/true);
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
  SetDeadline(host_->config().header_timeout);
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
  if (host_->multishot_recv()) {
    ResumeMultishotRecv();
    return;
  }
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  if (rs_ == nullptr && host_->loop().recv_buffers().enabled()) {
    // Idle: the kernel picks a buffer from the worker's ring only when data
    // arrives, so a waiting connection holds none (Linux 5.19).
    io_uring_prep_recv(sqe, fd_, nullptr, host_->loop().recv_buffers().bytes(), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RecvBuffers::kGroup;
    return;
  }
  EnsureRequestState();
  io_uring_prep_recv(sqe, fd_, rs_->input.in.get() + rs_->input.in_len,
                     rs_->input.in_capacity - rs_->input.in_len, 0);
}

void Connection::OnRecv(int res, uint32_t cqe_flags) {
  // Take the input first: a ring buffer goes back whatever happens next.
  if (cqe_flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0 && interrupt_ == Interrupt::kNone) {
      if (rs_ == nullptr || rs_->input.req_start == rs_->input.in_len) BeginRequestInput();
      TakeInput(host_->loop().recv_buffers().buffer(bid), static_cast<size_t>(res));
    }
    host_->loop().recv_buffers().Recycle(bid);
  } else if (res > 0) {
    // Received straight into rs_->input.in (no buffer ring).
    if (rs_->input.req_start == rs_->input.in_len) BeginRequestInput();
    rs_->input.in_len += static_cast<size_t>(res);
  }
  if (EndIfInterrupted()) return;
  if (res == -ENOBUFS) {
    // The buffer ring ran dry: wait for buffers to come back, then re-arm.
    // Healthy connections are not torn down for it.
    host_->WaitForRecvBuffers(this);
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
  rs_->response.request_start_ns = host_->loop().now_ns();
  if (idle_node_.linked()) {
    SetIdle(false);
    SetDeadline(host_->config().header_timeout);
  }
}

void Connection::RetryRecv() {
  if (!waiting_for_input() || io_op_.in_flight || recv_op_.in_flight) return;
  recv_no_buffers_ = false;
  if (host_->stopping() && waiting_for_request()) {
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
  sqe->buf_group = RecvBuffers::kGroup;
}

void Connection::ResumeMultishotRecv() {
  if (peer_closed_) {
    Close();  // EOF or an error: nothing more will come.
  } else if (recv_no_buffers_) {
    host_->WaitForRecvBuffers(this);  // RetryRecv() re-arms.
  } else if (!host_->multishot_recv()) {
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
  if (recv_op_.in_flight) host_->loop().Cancel(&recv_op_);
}

void Connection::TakeInput(const char* data, size_t len) {
  EnsureRequestState();
  if (rs_->input.body_to_skip > 0) {
    const size_t skip = static_cast<size_t>(std::min<uint64_t>(rs_->input.body_to_skip, len));
    rs_->input.body_to_skip -= skip;
    data += skip;
    len -= skip;
  }
  if (len == 0) return;
  if (rs_->input.spill.empty()) {
    const size_t n = std::min(len, rs_->input.in_capacity - rs_->input.in_len);
    std::memcpy(rs_->input.in.get() + rs_->input.in_len, data, n);
    rs_->input.in_len += n;
    data += n;
    len -= n;
    if (len == 0) return;
    // The input buffer is full: stop receiving until it drains. What the
    // kernel already took waits in `spill` (at most about one batch).
    StopMultishotRecv();
  }
  rs_->input.spill.append(data, len);
}

void Connection::CompactInput() {
  std::memmove(rs_->input.in.get(), rs_->input.in.get() + rs_->input.req_start,
               rs_->input.in_len - rs_->input.req_start);
  rs_->input.in_len -= rs_->input.req_start;
  rs_->input.req_start = 0;
  if (rs_->input.spill.empty()) return;
  const size_t n = std::min(rs_->input.spill.size(), rs_->input.in_capacity - rs_->input.in_len);
  std::memcpy(rs_->input.in.get() + rs_->input.in_len, rs_->input.spill.data(), n);
  rs_->input.in_len += n;
  rs_->input.spill.erase(0, n);
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
      if (state_ == State::kReading &&
          (rs_ == nullptr || rs_->input.req_start == rs_->input.in_len)) {
        BeginRequestInput();
      }
      TakeInput(host_->loop().recv_buffers().buffer(bid), static_cast<size_t>(res));
      got_data = true;
    }
    host_->loop().recv_buffers().Recycle(bid);
  }
  if (!more) {
    if (res == 0 || (res < 0 && res != -ECANCELED && res != -ENOBUFS && res != -EINVAL)) {
      peer_closed_ = true;  // EOF, reset or another socket error.
    } else if (res == -ENOBUFS) {
      recv_no_buffers_ = true;
    } else if (res == -EINVAL) {
      host_->DisableMultishotRecv();  // Linux < 6.0.
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
    if (rs_->input.body_to_skip == 0) {
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
    if (host_->stopping() && waiting_for_request()) {
      Close();
      return;
    }
    ResumeMultishotRecv();
  }
}

void Connection::Parse() {
  const RequestParser::Status st = rs_->input.parser.Feed(
      rs_->input.in.get() + rs_->input.req_start, rs_->input.in_len - rs_->input.req_start);
  if (st == RequestParser::Status::kError) {
    rs_->response.head_only = false;
    rs_->response.method_class = MethodClass::kOther;
    RespondError(rs_->input.parser.error_status(), /*close=*/true);
    return;
  }
  if (st == RequestParser::Status::kDone) {
    HandleRequest();
    return;
  }
  if (rs_->input.in_len == rs_->input.in_capacity) {
    if (rs_->input.req_start > 0) {
      // Make room: move the partial request to the front and parse it again
      // (the parser's views would dangle after the move).
      CompactInput();
      rs_->input.parser.Reset();
      Parse();
      return;
    }
    rs_->response.head_only = false;
    rs_->response.method_class = MethodClass::kOther;
    RespondError(rs_->input.parser.in_request_line() ? 414 : 431, /*close=*/true);
    return;
  }
  if (host_->stopping() && rs_->input.req_start == rs_->input.in_len) {
    Close();
    return;
  }
  SubmitRecv();
}

void Connection::HandleRequest() {
  const Request& r = rs_->input.parser.request();
  rs_->input.consumed = r.head_bytes;
  switch (r.method) {
    case Method::kGet:
      rs_->response.method_class = MethodClass::kGet;
      break;
    case Method::kHead:
      rs_->response.method_class = MethodClass::kHead;
      break;
    case Method::kOptions:
      rs_->response.method_class = MethodClass::kOptions;
      break;
    default:
      rs_->response.method_class = MethodClass::kOther;
  }
  rs_->response.client_http10 = r.version_minor == 0;
  rs_->response.head_only = r.method == Method::kHead;
  rs_->response.keep_alive = r.KeepAlive() && !host_->stopping();
  rs_->input.body_to_skip = 0;

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
    if (r.content_length > host_->config().request_body_drain_bytes_max) {
      RespondError(413, /*close=*/true);
      return;
    }
    const size_t buffered = rs_->input.in_len - rs_->input.req_start - r.head_bytes;
    const uint64_t take = std::min<uint64_t>(buffered, r.content_length);
    rs_->input.consumed += take;
    rs_->input.body_to_skip = r.content_length - take;
    if (rs_->input.body_to_skip > 0 && !rs_->input.spill.empty()) {
      // All of `in` past the head was body; the spilled input follows it.
      const size_t skip =
          static_cast<size_t>(std::min<uint64_t>(rs_->input.body_to_skip, rs_->input.spill.size()));
      rs_->input.spill.erase(0, skip);
      rs_->input.body_to_skip -= skip;
    }
    if (rs_->input.body_to_skip > 0) {
      if (r.has(Field::kExpect)) {
        // The client waits for 100 Continue before sending the body; we do
        // not want it, so answer now and end the connection (RFC 9110 §10.1.1).
        rs_->response.keep_alive = false;
      } else if (host_->multishot_recv()) {
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
  // The request's views live in rs_->input.in, so the body goes to the worker's
  // scratch buffer, which every connection may overwrite: it is never read.
  state_ = State::kDrainingBody;
  const size_t want = std::min<uint64_t>(rs_->input.body_to_skip, host_->scratch_bytes());
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, host_->scratch(), want, 0);
}

void Connection::OnDrainBody(int res) {
  if (EndIfInterrupted()) return;
  if (res <= 0) {
    Close();
    return;
  }
  rs_->input.body_to_skip -= static_cast<uint64_t>(res);
  // No new deadline for progress: the head's deadline bounds the body too.
  if (rs_->input.body_to_skip > 0) {
    SubmitDrainBody();
    return;
  }
  Dispatch();
}

void Connection::Dispatch() {
  const Request& r = rs_->input.parser.request();
  if (metrics_only_ || host_->ServesMetricsOnMainListener()) {
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
      RespondError(404, !rs_->response.keep_alive);
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
      RespondError(501, !rs_->response.keep_alive);
      return;
    default:
      RespondError(405, !rs_->response.keep_alive, kAllow);
      return;
  }
  switch (ResolveTarget(r.target, &rs_->lookup.resolved)) {
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
  if (rs_->lookup.resolved.has_dot_segment) {
    // Dotfiles and dot-directories (.git, .env, .htpasswd) are never served.
    RespondError(404, !rs_->response.keep_alive);
    return;
  }
  StartFile();
}

// ---------------------------------------------------------------- sending --

void Connection::BeginResponse(int status) {
  rs_->response.status = status;
  rs_->response.head_len = 0;
  rs_->tx.out.clear();
  rs_->tx.segments.clear();
  rs_->tx.segment_index = 0;
  rs_->tx.out_sent = 0;
}

CommonFields Connection::Common(int status) const {
  CommonFields common;
  common.status = status;
  common.date = host_->date().text();
  common.keep_alive = rs_->response.keep_alive;
  common.client_is_http10 = rs_->response.client_http10;
  return common;
}

void Connection::AddMemorySegment(size_t begin) {
  if (rs_->tx.out.size() > begin)
    rs_->tx.segments.push_back(ResponseSegment{begin, rs_->tx.out.size() - begin, false});
}

void Connection::AddFileSegment(uint64_t offset, uint64_t length) {
  if (length > 0) rs_->tx.segments.push_back(ResponseSegment{offset, length, true});
}

void Connection::RespondError(int status, bool close, std::string_view extra_fields) {
  if (close) {
    rs_->response.keep_alive = false;
    // The client may still be sending what we refused (a body, the rest of
    // an oversized head): read it off before closing.
    rs_->response.linger = true;
  }
  BeginResponse(status);
  rs_->response.head_len =
      AppendErrorResponse(&rs_->tx.out, Common(status), rs_->response.head_only, extra_fields);
  AddMemorySegment(0);
  SendSegments();
}

void Connection::RespondRedirect() {
  std::string location = "Location: /";
  location.append(EncodePath(rs_->lookup.resolved.relative));
  location.push_back('/');
  if (rs_->lookup.resolved.has_query) {
    location.push_back('?');
    location.append(rs_->lookup.resolved.query);
  }
  location.append("\r\n");
  RespondError(301, !rs_->response.keep_alive, location);
}

void Connection::RespondOptions() {
  BeginResponse(204);
  AppendStatusAndCommon(&rs_->tx.out, Common(204));
  rs_->tx.out.append(kAllow);
  FinishHead();
  AddMemorySegment(0);
  SendSegments();
}

void Connection::FinishHead() {
  EndHead(&rs_->tx.out);
  rs_->response.head_len = rs_->tx.out.size();
}

void Connection::SendSegments() {
  host_->metrics().CountRequest(rs_->response.method_class, rs_->response.status);
  rs_->response.response_bytes = 0;
  SetDeadline(host_->config().send_timeout);
  rs_->tx.segment_index = 0;
  StartSegment();
}

void Connection::StartSegment() {
  if (rs_->tx.segment_index >= rs_->tx.segments.size()) {
    ResponseDone();
    return;
  }
  const ResponseSegment& seg = rs_->tx.segments[rs_->tx.segment_index];
  if (!seg.from_file) {
    rs_->tx.out_sent = 0;
    SubmitSend();
    return;
  }
  if (!rs_->tx.has_pipe) {
    if (!host_->pipes().Acquire(&rs_->tx.pipe)) {
      // No pipe (descriptor exhaustion) with the head already out: the only
      // honest ending is to close.
      Close();
      return;
    }
    rs_->tx.has_pipe = true;
    rs_->tx.pipe_bytes = 0;
  }
  rs_->tx.file_offset = seg.offset;
  rs_->tx.body_remaining = seg.length;
  SubmitSpliceIn();
}

void Connection::NextSegment() {
  ++rs_->tx.segment_index;
  StartSegment();
}

bool Connection::MoreSegmentsFollow() const {
  return rs_->tx.segment_index + 1 < rs_->tx.segments.size();
}

void Connection::SubmitSend() {
  state_ = State::kSending;
  const ResponseSegment& seg = rs_->tx.segments[rs_->tx.segment_index];
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSend);
  // MSG_MORE while a body follows, so head and body share segments on the wire.
  const int flags = MSG_NOSIGNAL | (MoreSegmentsFollow() ? MSG_MORE : 0);
  io_uring_prep_send(sqe, fd_, rs_->tx.out.data() + seg.offset + rs_->tx.out_sent,
                     seg.length - rs_->tx.out_sent, flags);
}

void Connection::OnSend(int res) {
  if (res > 0) {
    // These bytes are in the socket now.
    host_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
    rs_->response.response_bytes += static_cast<uint64_t>(res);
    rs_->tx.out_sent += static_cast<size_t>(res);
  }
  if (EndIfInterrupted()) return;
  if (res <= 0) {
    Close();
    return;
  }
  SetDeadline(host_->config().send_timeout);  // Progress.
  if (rs_->tx.out_sent < rs_->tx.segments[rs_->tx.segment_index].length) {
    SubmitSend();  // Short send: continue where it stopped.
    return;
  }
  NextSegment();
}

void Connection::SubmitSpliceIn() {
  SLUICE_DCHECK(rs_->tx.pipe_bytes == 0, "file bytes go into the pipe only once it is empty");
  state_ = State::kSplicingIn;
  const auto len =
      static_cast<unsigned>(std::min<uint64_t>(rs_->tx.body_remaining, rs_->tx.pipe.capacity));
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceIn);
  io_uring_prep_splice(sqe, rs_->tx.file->fd, static_cast<int64_t>(rs_->tx.file_offset),
                       rs_->tx.pipe.write_fd, -1, len, SPLICE_F_NONBLOCK);
}

void Connection::OnSpliceIn(int res) {
  if (res > 0) {
    // These bytes sit in the pipe now: a pipe that holds any goes back to
    // the pool never, or only after they have been spliced out.
    rs_->tx.pipe_bytes += static_cast<uint32_t>(res);
    rs_->tx.file_offset += static_cast<uint64_t>(res);
    rs_->tx.body_remaining -= static_cast<uint64_t>(res);
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
  if (!rs_->tx.file->changed) return false;
  // The file was written, truncated or replaced while we sent it: what the
  // pipe holds may be pages of the new content (or zeros). A reset tells
  // the client the response is broken; a plain close could pass for a
  // short file.
  const linger reset = {1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  host_->metrics().cut_total.Add();
  Close();
  return true;
}

void Connection::SubmitSpliceOut() {
  state_ = State::kSplicingOut;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceOut);
  const bool more = rs_->tx.body_remaining > 0 || MoreSegmentsFollow();
  const unsigned flags = SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
  io_uring_prep_splice(sqe, rs_->tx.pipe.read_fd, -1, fd_, -1, rs_->tx.pipe_bytes, flags);
}

void Connection::OnSpliceOut(int res) {
  if (res > 0) {
    SLUICE_CHECK(static_cast<uint32_t>(res) <= rs_->tx.pipe_bytes,
                 "a splice out of the pipe moves no more than was spliced in");
    rs_->tx.pipe_bytes -= static_cast<uint32_t>(res);
    host_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
    rs_->response.response_bytes += static_cast<uint64_t>(res);
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
  SetDeadline(host_->config().send_timeout);  // Progress.
  if (rs_->tx.pipe_bytes > 0) {
    SubmitSpliceOut();
  } else if (rs_->tx.body_remaining > 0) {
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
  const int64_t now_ns = host_->loop().now_ns();
  host_->metrics().latency_us.Record(
      static_cast<uint64_t>(std::max<int64_t>(0, now_ns - rs_->response.request_start_ns) / 1000));
  if (host_->access_log() != nullptr) LogAccess();
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
  FileCache& cache = host_->file_cache();
  cache.Release(rs_->tx.file);
  cache.Release(rs_->lookup.loading);
  rs_->tx.file = rs_->lookup.loading = nullptr;
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
