#include "sluice/connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/http_date.h"
#include "sluice/log.h"
#include "sluice/mime.h"
#include "sluice/response.h"
#include "sluice/worker.h"

namespace sluice {
namespace {

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

constexpr std::string_view kAllow = "Allow: GET, HEAD, OPTIONS\r\n";
constexpr uint64_t kLingerBytesMax = 1 << 20;

}  // namespace

Connection::Connection(Worker* worker) : worker_(worker), parser_(worker->config().limits) {
  io_op_.owner = this;
  timer_op_.owner = this;
  timer_node_.owner = this;
  idle_node_.owner = this;
}

Connection::~Connection() {
  ReleaseFile();
  if (has_pipe_) worker_->pipes().Release(pipe_, false);
  if (fd_ >= 0) close(fd_);
}

bool Connection::waiting_for_request() const {
  return state_ == State::kReading && req_start_ == in_len_;
}

io_uring_sqe* Connection::Prep(Operation* op, OpKind kind) {
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
  if (io_op_.in_flight) worker_->SubmitCancel(&io_op_);
}

void Connection::OnTimeout() {
  if (state_ == State::kFree || state_ == State::kClosing || state_ == State::kShuttingDown ||
      state_ == State::kLingering) {
    return;
  }
  worker_->metrics().timeouts_total.Add();
  timed_out_ = true;
  CancelInFlight();
}

void Connection::CloseIdle() {
  SetIdle(false);
  timed_out_ = true;
  CancelInFlight();
}

void Connection::Start(int fd, bool metrics_only) {
  fd_ = fd;
  metrics_only_ = metrics_only;
  peer_known_ = false;
  ++generation_;
  aborting_ = false;
  timed_out_ = false;
  SetDeadline(worker_->config().header_timeout);
  in_len_ = req_start_ = 0;
  parser_.Reset();
  if (!in_) {
    in_capacity_ = worker_->config().limits.head_bytes_max;
    in_ = std::make_unique<char[]>(in_capacity_);
  }
  SubmitRecv();
}

void Connection::OnCompletion(Operation* op, int res, uint32_t /*cqe_flags*/) noexcept {
  if (op == &timer_op_ || op->kind == OpKind::kLingerTimeout) {
    if (state_ == State::kLingering) OnLingerStep();
    return;
  }
  if (aborting_ && state_ != State::kClosing) {
    // Drain deadline passed: whatever this was, the connection ends now.
    if (state_ == State::kLingering) {
      linger_res_ = -ECANCELED;
      OnLingerStep();
      return;
    }
    Close();
    return;
  }
  if (timed_out_ && state_ != State::kClosing && state_ != State::kShuttingDown &&
      state_ != State::kLingering) {
    timed_out_ = false;
    if (state_ == State::kReading && req_start_ < in_len_) {
      // Part of a request head arrived, too slowly: say so (RFC 9110 §15.5.9).
      head_only_ = false;
      method_class_ = MethodClass::kOther;
      RespondError(408, /*close=*/true);
    } else {
      Close();
    }
    return;
  }
  switch (op->kind) {
    case OpKind::kRecv:
      if (state_ == State::kDrainingBody) {
        OnDrainBody(res);
      } else if (state_ == State::kLingering) {
        linger_res_ = res;
        OnLingerStep();
      } else {
        OnRecv(res);
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
      LogError(absl::StrCat("connection: unexpected operation ", OpKindName(op->kind)));
      Close();
  }
}

void Connection::OnWorkerStopping() {
  // Idle keep-alive: cancel the RECV; its completion closes the socket.
  if (waiting_for_request()) CancelInFlight();
  // Otherwise the response in progress finishes and ResponseDone() closes.
}

void Connection::Abort() {
  if (state_ == State::kClosing || state_ == State::kFree) return;
  aborting_ = true;
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
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, in_.get() + in_len_, in_capacity_ - in_len_, 0);
}

void Connection::OnRecv(int res) {
  if (res <= 0) {
    // EOF, reset, or a cancel while idle: nothing to answer.
    Close();
    return;
  }
  if (req_start_ == in_len_) {
    // The first bytes of a request: the whole head must follow in time.
    request_start_ns_ = MonotonicNanos();
    request_line_seen_ = false;
    SetIdle(false);
    SetDeadline(worker_->config().header_timeout);
  }
  in_len_ += static_cast<size_t>(res);
  Parse();
}

void Connection::Parse() {
  const RequestParser::Status st = parser_.Feed(in_.get() + req_start_, in_len_ - req_start_);
  if (st == RequestParser::Status::kError) {
    head_only_ = false;
    method_class_ = MethodClass::kOther;
    RespondError(parser_.error_status(), /*close=*/true);
    return;
  }
  if (st == RequestParser::Status::kDone) {
    HandleRequest();
    return;
  }
  if (in_len_ == in_capacity_) {
    if (req_start_ > 0) {
      // Make room: move the partial request to the front and parse it again
      // (the parser's views would dangle after the move).
      std::memmove(in_.get(), in_.get() + req_start_, in_len_ - req_start_);
      in_len_ -= req_start_;
      req_start_ = 0;
      parser_.Reset();
      Parse();
      return;
    }
    head_only_ = false;
    method_class_ = MethodClass::kOther;
    RespondError(parser_.in_request_line() ? 414 : 431, /*close=*/true);
    return;
  }
  if (worker_->stopping() && req_start_ == in_len_) {
    Close();
    return;
  }
  SubmitRecv();
}

void Connection::HandleRequest() {
  const Request& r = parser_.request();
  consumed_ = r.head_bytes;
  request_line_seen_ = true;
  switch (r.method) {
    case Method::kGet:
      method_class_ = MethodClass::kGet;
      break;
    case Method::kHead:
      method_class_ = MethodClass::kHead;
      break;
    case Method::kOptions:
      method_class_ = MethodClass::kOptions;
      break;
    default:
      method_class_ = MethodClass::kOther;
  }
  client_http10_ = r.version_minor == 0;
  head_only_ = r.method == Method::kHead;
  keep_alive_ = r.KeepAlive() && !worker_->stopping();
  body_to_skip_ = 0;

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
    const size_t buffered = in_len_ - req_start_ - r.head_bytes;
    const uint64_t take = std::min<uint64_t>(buffered, r.content_length);
    consumed_ += take;
    body_to_skip_ = r.content_length - take;
    if (body_to_skip_ > 0) {
      if (r.has(Field::kExpect)) {
        // The client waits for 100 Continue before sending the body; we do
        // not want it, so answer now and end the connection (RFC 9110 §10.1.1).
        keep_alive_ = false;
      } else {
        SubmitDrainBody();
        return;
      }
    }
  }
  Dispatch();
}

void Connection::SubmitDrainBody() {
  // The request's views live in in_, so the body is read into out_, which is
  // not in use until the response is built.
  state_ = State::kDrainingBody;
  if (out_.size() < 16384) out_.resize(16384);
  const size_t want = std::min<uint64_t>(body_to_skip_, out_.size());
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, out_.data(), want, 0);
}

void Connection::OnDrainBody(int res) {
  if (res <= 0) {
    Close();
    return;
  }
  body_to_skip_ -= static_cast<uint64_t>(res);
  SetDeadline(worker_->config().header_timeout);
  if (body_to_skip_ > 0) {
    SubmitDrainBody();
    return;
  }
  Dispatch();
}

void Connection::Dispatch() {
  const Request& r = parser_.request();
  if (metrics_only_ || worker_->ServesMetricsOnMainListener()) {
    if (IsMetricsTarget(r.target)) {
      HandleMetrics();
      return;
    }
    if (metrics_only_) {
      RespondError(404, !keep_alive_);
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
      RespondError(501, !keep_alive_);
      return;
    default:
      RespondError(405, !keep_alive_, kAllow);
      return;
  }
  switch (ResolveTarget(r.target, &resolved_)) {
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
  if (resolved_.has_dot_segment) {
    // Dotfiles and dot-directories (.git, .env, .htpasswd) are never served.
    RespondError(404, !keep_alive_);
    return;
  }
  StartFile();
}

// ---------------------------------------------------------------- sending --

void Connection::BeginResponse(int status) {
  status_ = status;
  head_len_ = 0;
  out_.clear();
  segments_.clear();
  segment_index_ = 0;
  out_sent_ = 0;
}

CommonFields Connection::Common(int status) const {
  CommonFields common;
  common.status = status;
  common.date = worker_->date().text();
  common.keep_alive = keep_alive_;
  common.client_is_http10 = client_http10_;
  return common;
}

void Connection::AddMemorySegment(size_t begin) {
  if (out_.size() > begin) segments_.push_back(Segment{begin, out_.size() - begin, false});
}

void Connection::AddFileSegment(uint64_t offset, uint64_t length) {
  if (length > 0) segments_.push_back(Segment{offset, length, true});
}

void Connection::RespondError(int status, bool close, std::string_view extra_fields) {
  if (close) keep_alive_ = false;
  BeginResponse(status);
  AppendErrorResponse(&out_, Common(status), head_only_, extra_fields);
  head_len_ = out_.find("\r\n\r\n") + 4;
  AddMemorySegment(0);
  SendSegments();
}

void Connection::RespondRedirect() {
  std::string location = "Location: /";
  location.append(EncodePath(resolved_.relative));
  location.push_back('/');
  if (resolved_.has_query) {
    location.push_back('?');
    location.append(resolved_.query);
  }
  location.append("\r\n");
  RespondError(301, !keep_alive_, location);
}

void Connection::RespondOptions() {
  BeginResponse(204);
  AppendStatusAndCommon(&out_, Common(204));
  out_.append(kAllow);
  FinishHead();
  AddMemorySegment(0);
  SendSegments();
}

void Connection::FinishHead() {
  EndHead(&out_);
  head_len_ = out_.size();
}

void Connection::SendSegments() {
  worker_->metrics().CountRequest(method_class_, status_);
  response_bytes_ = 0;
  SetDeadline(worker_->config().send_timeout);
  segment_index_ = 0;
  StartSegment();
}

void Connection::StartSegment() {
  if (segment_index_ >= segments_.size()) {
    ResponseDone();
    return;
  }
  const Segment& seg = segments_[segment_index_];
  if (!seg.from_file) {
    out_sent_ = 0;
    SubmitSend();
    return;
  }
  if (!has_pipe_) {
    if (!worker_->pipes().Acquire(&pipe_)) {
      // No pipe (descriptor exhaustion) with the head already out: the only
      // honest ending is to close.
      Close();
      return;
    }
    has_pipe_ = true;
    pipe_bytes_ = 0;
  }
  file_offset_ = seg.offset;
  body_remaining_ = seg.length;
  SubmitSpliceIn();
}

void Connection::NextSegment() {
  ++segment_index_;
  StartSegment();
}

bool Connection::MoreSegmentsFollow() const { return segment_index_ + 1 < segments_.size(); }

void Connection::SubmitSend() {
  state_ = State::kSending;
  const Segment& seg = segments_[segment_index_];
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSend);
  // MSG_MORE while a body follows, so head and body share segments on the wire.
  const int flags = MSG_NOSIGNAL | (MoreSegmentsFollow() ? MSG_MORE : 0);
  io_uring_prep_send(sqe, fd_, out_.data() + seg.offset + out_sent_, seg.length - out_sent_, flags);
}

void Connection::OnSend(int res) {
  if (res <= 0) {
    Close();
    return;
  }
  worker_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
  response_bytes_ += static_cast<uint64_t>(res);
  SetDeadline(worker_->config().send_timeout);  // Progress.
  out_sent_ += static_cast<size_t>(res);
  if (out_sent_ < segments_[segment_index_].length) {
    SubmitSend();  // Short send: continue where it stopped.
    return;
  }
  NextSegment();
}

void Connection::SubmitSpliceIn() {
  state_ = State::kSplicingIn;
  const auto len = static_cast<unsigned>(std::min<uint64_t>(body_remaining_, pipe_.capacity));
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceIn);
  io_uring_prep_splice(sqe, file_->fd, static_cast<int64_t>(file_offset_), pipe_.write_fd, -1, len,
                       SPLICE_F_NONBLOCK);
}

void Connection::OnSpliceIn(int res) {
  if (res <= 0) {
    // 0: the file shrank below the announced length. Error: nothing more
    // can be sent. Either way the client must see a short body.
    Close();
    return;
  }
  pipe_bytes_ = static_cast<uint32_t>(res);
  file_offset_ += static_cast<uint64_t>(res);
  body_remaining_ -= static_cast<uint64_t>(res);
  SubmitSpliceOut();
}

void Connection::SubmitSpliceOut() {
  state_ = State::kSplicingOut;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceOut);
  const bool more = body_remaining_ > 0 || MoreSegmentsFollow();
  const unsigned flags = SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
  io_uring_prep_splice(sqe, pipe_.read_fd, -1, fd_, -1, pipe_bytes_, flags);
}

void Connection::OnSpliceOut(int res) {
  if (res == -EAGAIN) {
    SubmitPollOut();  // The socket is full: wait until it drains.
    return;
  }
  if (res <= 0) {
    Close();
    return;
  }
  worker_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
  response_bytes_ += static_cast<uint64_t>(res);
  SetDeadline(worker_->config().send_timeout);  // Progress.
  pipe_bytes_ -= static_cast<uint32_t>(res);
  if (pipe_bytes_ > 0) {
    SubmitSpliceOut();
  } else if (body_remaining_ > 0) {
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
  if (res < 0 || (res & (POLLERR | POLLHUP))) {
    Close();
    return;
  }
  SubmitSpliceOut();
}

void Connection::ResponseDone() {
  ReleaseFile();
  const int64_t now_ns = MonotonicNanos();
  worker_->metrics().latency_us.Record(
      static_cast<uint64_t>(std::max<int64_t>(0, now_ns - request_start_ns_) / 1000));
  if (worker_->access_log_enabled()) LogAccess();
  if (!keep_alive_ || worker_->stopping()) {
    LingerThenClose();
    return;
  }
  req_start_ += consumed_;
  consumed_ = 0;
  parser_.Reset();
  if (req_start_ == in_len_) {
    req_start_ = in_len_ = 0;
    SetIdle(true);
    SetDeadline(worker_->config().keepalive_timeout);
    SubmitRecv();
    return;
  }
  SetDeadline(worker_->config().header_timeout);
  request_start_ns_ = now_ns;  // Its bytes were here; its turn starts now.
  Parse();                     // A pipelined request is already buffered.
}

// ---------------------------------------------------------------- closing --

void Connection::ReleaseFile() {
  FileCache& cache = worker_->file_cache();
  cache.Release(file_);
  cache.Release(loading_);
  file_ = loading_ = nullptr;
  if (has_pipe_) {
    worker_->pipes().Release(pipe_, pipe_bytes_ == 0);
    has_pipe_ = false;
    pipe_bytes_ = 0;
  }
}

void Connection::LingerThenClose() {
  // Closing a socket with unread input makes the kernel send a RST, which
  // can destroy our last response before the client reads it. So: send FIN,
  // then read and discard until the client closes, for a bounded time.
  state_ = State::kShuttingDown;
  ClearDeadline();  // The lingering RECV has a linked timeout of its own.
  SetIdle(false);
  linger_bytes_ = 0;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kShutdown);
  io_uring_prep_shutdown(sqe, fd_, SHUT_WR);
}

void Connection::OnShutdown(int res) {
  if (res < 0) {
    Close();
    return;
  }
  SubmitLinger();
}

void Connection::SubmitLinger() {
  state_ = State::kLingering;
  const int64_t linger_ns = absl::ToInt64Nanoseconds(worker_->config().linger_timeout);
  linger_ts_.tv_sec = linger_ns / 1000000000;
  linger_ts_.tv_nsec = linger_ns % 1000000000;
  if (out_.size() < 16384) out_.resize(16384);
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRecv);
  io_uring_prep_recv(sqe, fd_, out_.data(), out_.size(), 0);
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_sqe* tsqe = Prep(&timer_op_, OpKind::kLingerTimeout);
  io_uring_prep_link_timeout(tsqe, &linger_ts_, 0);
}

void Connection::OnLingerStep() {
  // Both the RECV and its linked timeout post a completion; act once both
  // are in, so the slots are free to reuse.
  if (io_op_.in_flight || timer_op_.in_flight) return;
  if (linger_res_ > 0 && !aborting_) {
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
  ReleaseFile();
  state_ = State::kClosing;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kClose);
  io_uring_prep_close(sqe, fd_);
}

void Connection::OnClose(int /*res*/) {
  // The descriptor is gone whatever close() returned.
  fd_ = -1;
  state_ = State::kFree;
  if (idle_in_kernel()) worker_->Recycle(this);
}

}  // namespace sluice
