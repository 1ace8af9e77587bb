// Connection, input half: receiving (single-shot and multishot RECV on the
// provided-buffer ring), buffering, parsing, discarding request bodies and
// dispatching a request to its handler. On the owning worker's thread.
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
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"

namespace sluice {
namespace {

constexpr std::string_view kAllow = "Allow: GET, HEAD, OPTIONS\r\n";

}  // namespace

void Connection::SubmitRecv() {
  // The PROXY header is read the same way; only its parse differs.
  if (state_ != State::kReadingProxy) state_ = State::kReading;
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
    // Input that raced a deadline is kept (FinishTimeout answers a head that
    // is complete); only a connection being aborted drops it.
    const bool reading = state_ == State::kReading || state_ == State::kReadingProxy;
    if (res > 0 && interrupt_ != Interrupt::kAborted && reading) {
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
  ParseInput();
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
      if ((state_ == State::kReading || state_ == State::kReadingProxy) &&
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
    ParseInput();  // Re-arms through SubmitRecv() if it needs more and we stopped.
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

void Connection::ParseInput() {
  if (state_ == State::kReadingProxy) {
    ParseProxyInput();
  } else {
    Parse();
  }
}

void Connection::Parse(bool deadline_passed) {
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
      Parse(deadline_passed);
      return;
    }
    rs_->response.head_only = false;
    rs_->response.method_class = MethodClass::kOther;
    RespondError(rs_->input.parser.in_request_line() ? 414 : 431, /*close=*/true);
    return;
  }
  if (deadline_passed) {
    // Part of a request head arrived, too slowly: say so (RFC 9110 §15.5.9).
    // A client whose request line says HEAD reads any response as bodiless
    // (RFC 9112 §6.3): a body would look like the start of the next one.
    const std::string_view input(rs_->input.in.get() + rs_->input.req_start,
                                 rs_->input.in_len - rs_->input.req_start);
    rs_->response.head_only = input.starts_with("HEAD ");
    rs_->response.method_class = MethodClass::kOther;
    RespondError(408, /*close=*/true);
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
  ClearRules();
  ResolveClient();
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
  if (!AdmitRequest()) return;
  const Request& r = rs_->input.parser.request();
  if (HandleProbe(r.target)) return;
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
      // The server's own options; a path's go on to its rules (CORS).
      if (r.target == "*") {
        RespondOptions();
        return;
      }
      break;
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
  if (ApplySiteAndRules()) return;  // A redirect or a CORS preflight answered it.
  if (r.method == Method::kOptions) {
    RespondOptions();
    return;
  }
  StartFile();
}

// ---------------------------------------------------------------- sending --

}  // namespace sluice
