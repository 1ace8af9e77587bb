// Connection, output half: the response head, its segments (memory via SEND,
// file via SPLICE file -> pipe -> socket) and their completions. On the
// owning worker's thread.
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
// What one connection moves by plain splice() before the others' turn.
constexpr uint64_t kPumpBytesPerTurn = uint64_t{4} << 20;

}  // namespace

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

void Connection::RespondFromMemory(int status, std::string_view content_type,
                                   std::string_view body) {
  BeginResponse(status);
  AppendStatusAndCommon(&rs_->tx.out, Common(status));
  AppendField(&rs_->tx.out, "Content-Type", content_type);
  AppendFieldUint(&rs_->tx.out, "Content-Length", body.size());
  AppendField(&rs_->tx.out, "Cache-Control", "no-store");
  FinishHead();
  if (!rs_->response.head_only) rs_->tx.out.append(body);
  AddMemorySegment(0);
  SendSegments();
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
  if (rs_->lookup.rules.any) ApplyRuleHeaders();
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
  PumpBody();
}

void Connection::NextSegment() {
  if (!MoreSegmentsFollow() && ClosesAfterResponse()) {
    // The last bytes of a closing response wait in the socket (sent with
    // MSG_MORE); the FIN is added to their segment, so the client gets both
    // at once (as from nginx) instead of the FIN a round trip later. Every
    // other way on from a held tail ends in a shutdown or a close, which
    // send it too. A plain shutdown(): SHUT_WR only queues the FIN and never
    // blocks, where IORING_OP_SHUTDOWN costs an io-wq hand-off (the kernel
    // always punts it).
    // Who the client is must be read first: once our FIN and the client's
    // have crossed, the socket has no peer left (getpeername: ENOTCONN).
    if (host_->access_log() != nullptr) LoadPeer();
    fin_sent_ = shutdown(fd_, SHUT_WR) == 0;
  }
  ++rs_->tx.segment_index;
  StartSegment();
}

bool Connection::MoreSegmentsFollow() const {
  return rs_->tx.segment_index + 1 < rs_->tx.segments.size();
}

bool Connection::ClosesAfterResponse() const {
  return !rs_->response.keep_alive || host_->stopping();
}

void Connection::SubmitSend() {
  state_ = State::kSending;
  const ResponseSegment& seg = rs_->tx.segments[rs_->tx.segment_index];
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSend);
  // MSG_MORE while a body follows, so head and body share segments on the
  // wire, and at the end of a closing response, so the FIN joins the tail.
  const int flags = MSG_NOSIGNAL | (MoreSegmentsFollow() || ClosesAfterResponse() ? MSG_MORE : 0);
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

// File bodies move file -> pipe -> socket. io_uring hands every SPLICE to an
// io-wq thread (the kernel's io_splice refuses the non-blocking attempt), so
// a step through the ring costs a wake-up and two context switches on a
// busy worker. A step that cannot block runs here as a plain splice():
//  - pipe -> socket, always: the socket is non-blocking (EAGAIN: POLL_ADD
//    through the ring, then again), and the pipe holds only pages that were
//    up to date when they went in;
//  - file -> pipe when every page of the chunk is in the page cache and up
//    to date (FileInfo::Resident) on a local page-cache file system. A cold
//    file, a read still in flight, slow storage or NFS/CIFS/FUSE (whose
//    splice_read may revalidate first) takes the ring's SPLICE, as before.
// One connection moves at most kPumpBytesPerTurn this way before the
// others get their turn (a POLL_ADD on a writable socket completes at once).
void Connection::PumpBody() {
  SLUICE_DCHECK(interrupt_ == Interrupt::kNone, "a body is pumped only between interruptions");
  uint64_t moved = 0;
  for (;;) {
    if (rs_->tx.pipe_bytes > 0) {
      state_ = State::kSplicingOut;
      const bool more = rs_->tx.body_remaining > 0 || MoreSegmentsFollow() || ClosesAfterResponse();
      const unsigned flags = SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0);
      unsigned len = rs_->tx.pipe_bytes;
      int res = 0;
#ifdef SLUICE_CHAOS
      len = host_->loop().chaos().InlineLength(len);
      res = host_->loop().chaos().InlineFault(/*to_socket=*/true);
#endif
      if (res == 0) {
        const ssize_t n = splice(rs_->tx.pipe.read_fd, nullptr, fd_, nullptr, len, flags);
        res = n < 0 ? -errno : static_cast<int>(n);
      }
      if (!TookSpliceOut(res)) return;
      moved += static_cast<uint64_t>(res);
      continue;
    }
    if (rs_->tx.body_remaining == 0) {
      NextSegment();
      return;
    }
    if (moved >= kPumpBytesPerTurn) {
      SubmitPollOut();  // Its completion comes back here.
      return;
    }
    const auto len = static_cast<unsigned>(std::min<uint64_t>(
        {rs_->tx.body_remaining, rs_->tx.pipe.capacity, FileInfo::kResidentBytesMax}));
    int res = 0;
#ifdef SLUICE_CHAOS
    res = host_->loop().chaos().InlineFault(/*to_socket=*/false);
#endif
    if (res == 0 && rs_->tx.file->Resident(rs_->tx.file_offset, len)) {
      auto offset = static_cast<loff_t>(rs_->tx.file_offset);
      const ssize_t n =
          splice(rs_->tx.file->fd, &offset, rs_->tx.pipe.write_fd, nullptr, len, SPLICE_F_NONBLOCK);
      res = n < 0 ? -errno : static_cast<int>(n);
    } else if (res == 0) {
      res = -EAGAIN;
    }
    if (res == -EAGAIN || res == -EINTR) {
      SubmitSpliceIn();  // Not resident (or not now): io-wq may wait for it.
      return;
    }
    host_->metrics().file_chunks_inline_total.Add();
    CountSplicedIn(res);
    if (!SpliceInGoesOn(res)) return;
  }
}

void Connection::SubmitSpliceIn() {
  SLUICE_DCHECK(rs_->tx.pipe_bytes == 0, "file bytes go into the pipe only once it is empty");
  state_ = State::kSplicingIn;
  host_->metrics().file_chunks_ring_total.Add();
  const auto len =
      static_cast<unsigned>(std::min<uint64_t>(rs_->tx.body_remaining, rs_->tx.pipe.capacity));
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kSpliceIn);
  io_uring_prep_splice(sqe, rs_->tx.file->fd, static_cast<int64_t>(rs_->tx.file_offset),
                       rs_->tx.pipe.write_fd, -1, len, SPLICE_F_NONBLOCK);
}

void Connection::OnSpliceIn(int res) {
  CountSplicedIn(res);
  if (EndIfInterrupted()) return;
  if (!SpliceInGoesOn(res)) return;
  PumpBody();
}

void Connection::CountSplicedIn(int res) {
  if (res <= 0) return;
  // These bytes sit in the pipe now: a pipe that holds any goes back to the
  // pool never, or only after they have been spliced out.
  rs_->tx.pipe_bytes += static_cast<uint32_t>(res);
  rs_->tx.file_offset += static_cast<uint64_t>(res);
  rs_->tx.body_remaining -= static_cast<uint64_t>(res);
}

bool Connection::SpliceInGoesOn(int res) {
  if (res <= 0) {
    // 0: the file shrank below the announced length. Error: nothing more
    // can be sent. Either way the client must see a short body.
    Close();
    return false;
  }
  return !FileChanged();
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

bool Connection::TookSpliceOut(int res) {
  if (res > 0) {
    SLUICE_CHECK(static_cast<uint32_t>(res) <= rs_->tx.pipe_bytes,
                 "a splice out of the pipe moves no more than was spliced in");
    rs_->tx.pipe_bytes -= static_cast<uint32_t>(res);
    host_->metrics().bytes_sent_total.Add(static_cast<uint64_t>(res));
    rs_->response.response_bytes += static_cast<uint64_t>(res);
  }
  if (res == -EAGAIN) {
    SubmitPollOut();  // The socket is full: wait until it drains.
    return false;
  }
  if (res <= 0) {
    Close();
    return false;
  }
  if (FileChanged()) return false;
  SetDeadline(host_->config().send_timeout);  // Progress.
  return true;
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
  PumpBody();
}

}  // namespace sluice
