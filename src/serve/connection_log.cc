// Connection, what it reports about a request: the peer's address and the
// access-log line. On the owning worker's thread.
#include <sys/socket.h>

#include <cstring>
#include <ctime>
#include <optional>
#include <string>

#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"

namespace sluice {

bool Connection::LoadPeer() {
  if (peer_known_) return true;
  // One getpeername() per connection, only when something needs the peer
  // (the access log, /metrics, trusted proxies, the per-address limit). A
  // multishot ACCEPT cannot return each connection's address (it would
  // share one buffer), and getpeername only copies what the socket holds.
  sockaddr_storage addr = {};
  socklen_t len = sizeof(addr);
  if (getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return false;
  const std::optional<IpAddress> peer =
      IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&addr), len);
  if (!peer.has_value()) return false;
  peer_ = *peer;
  peer_known_ = true;
  return true;
}

void Connection::LogAccess() {
  AccessLogWriter* log = host_->access_log();
  const Request& r = rs_->input.parser.request();
  // The request line's pieces go to the log as they are (no line is built
  // here); "-" when the request line itself could not be parsed.
  const bool parsed = !r.method_text.empty() && !rs_->input.parser.in_request_line();
  AccessLogWriter::Entry e;
  if (parsed) {
    e.request = {r.method_text, r.target, r.version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1"};
    e.referer = r.field(Field::kReferer);
    e.user_agent = r.field(Field::kUserAgent);
    e.request_id = r.field(Field::kXRequestId);
  }
  // The client as resolved (a trusted proxy's forwarding fields), and the
  // peer beside it when they differ.
  char client_text[IpAddress::kTextBytesMax];
  char peer_text[IpAddress::kTextBytesMax];
  const IpAddress* client = Client();
  e.client = client != nullptr ? std::string_view(client_text, client->Format(client_text)) : "-";
  if (client_forwarded_) e.peer = std::string_view(peer_text, peer_.Format(peer_text));
  // Wall-clock time in milliseconds: CLOCK_REALTIME is a vDSO read, no syscall.
  timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  e.unix_ms = static_cast<int64_t>(wall.tv_sec) * 1000 + wall.tv_nsec / 1000000;
  e.status = rs_->response.status;
  e.body_bytes = rs_->response.response_bytes > rs_->response.head_len
                     ? rs_->response.response_bytes - rs_->response.head_len
                     : 0;
  const int64_t elapsed_ns = host_->loop().now_ns() - rs_->response.request_start_ns;
  e.duration_us = elapsed_ns > 0 ? static_cast<uint64_t>(elapsed_ns) / 1000 : 0;
  log->Log(e);
}

}  // namespace sluice
