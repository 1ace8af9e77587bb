// Connection, who the client is: the PROXY protocol header a load balancer
// sends first (--proxy_protocol), the client a trusted proxy names in its
// forwarding fields (--trusted_proxies), and the per-address connection
// limit (--max_connections_per_ip). On the owning worker's thread.
#include <algorithm>

#include "sluice/http/client_address.h"
#include "sluice/http/proxy_protocol.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"

namespace sluice {

void Connection::ParseProxyInput() {
  RequestInput& input = rs_->input;
  // Stateless: the parser reads everything received so far, at most
  // kProxyHeaderBytesMax bytes of it, on every arrival.
  const ProxyParse parse = ParseProxyHeader(std::string_view(input.in.get(), input.in_len));
  if (parse.status == ProxyParse::Status::kInvalid ||
      (parse.status == ProxyParse::Status::kNeedMore && input.in_len == input.in_capacity)) {
    // Not from our balancer (or a request buffer smaller than a header):
    // no HTTP answer, since nothing here speaks HTTP yet. Close() counts it.
    Close();
    return;
  }
  if (parse.status == ProxyParse::Status::kNeedMore) {
    SubmitRecv();  // Still under the header deadline set at Start().
    return;
  }
  // LOCAL (the balancer's own health check) keeps the socket's peer.
  if (!parse.header.local) {
    peer_ = parse.header.source.address;
    peer_known_ = true;
  }
  input.req_start = parse.header.consumed;  // HTTP starts after the header.
  state_ = State::kReading;
  if (!AdmitPeer()) return;
  if (input.req_start == input.in_len) {
    SubmitRecv();
    return;
  }
  Parse();
}

void Connection::ResolveClient() {
  client_forwarded_ = false;
  const ServerConfig& config = host_->config();
  if (config.trusted_proxies.empty() || !LoadPeer() || !config.trusted_proxies.Contains(peer_)) {
    return;  // Forwarding fields from anyone else are ignored.
  }
  const Request& r = rs_->input.parser.request();
  for (ForwardingField f :
       {ForwardingField::kForwarded, ForwardingField::kXForwardedFor, ForwardingField::kXRealIp}) {
    // More lines than the parser keeps: the chain's right end, where our
    // proxy wrote, is not in view; believe none of it.
    if (r.forwarding_overflow(f)) return;
  }
  const ForwardingFields fields = {r.forwarding(ForwardingField::kForwarded),
                                   r.forwarding(ForwardingField::kXForwardedFor),
                                   r.forwarding(ForwardingField::kXRealIp)};
  const ClientAddress client =
      ResolveClientAddress(peer_, fields, config.trusted_proxies, config.forwarded_sources.span());
  if (client.source == ClientAddress::Source::kPeer) return;
  client_ = client.address;
  client_forwarded_ = true;
}

const IpAddress* Connection::Client() {
  if (client_forwarded_) return &client_;
  return LoadPeer() ? &peer_ : nullptr;
}

bool Connection::AdmitPeer() {
  ConnectionsPerAddress* table = host_->connections_per_address();
  if (table == nullptr || metrics_only_ || !LoadPeer()) return true;
  // A trusted proxy carries many clients: its requests are counted by the
  // client it names (AdmitRequest), the proxy itself not at all.
  if (host_->config().trusted_proxies.Contains(peer_)) return true;
  const ConnectionsPerAddress::Slots slots = table->SlotsFor(peer_);
  if (!table->TryAcquire(slots)) {
    host_->metrics().per_ip_rejected_total.Add();
    Close();  // At once and without a response, like --max_connections.
    return false;
  }
  limit_slots_ = slots;
  limit_held_ = true;
  host_->metrics().per_ip_counted.Add();
  return true;
}

bool Connection::AdmitRequest() {
  ConnectionsPerAddress* table = host_->connections_per_address();
  if (table == nullptr || metrics_only_ || !client_forwarded_ || limit_held_) return true;
  const ConnectionsPerAddress::Slots slots = table->SlotsFor(client_);
  if (!table->TryAcquire(slots)) {
    host_->metrics().per_ip_rejected_total.Add();
    // The connection belongs to the proxy and carries other clients'
    // requests too: refuse this one, keep the connection.
    RespondError(429, !rs_->response.keep_alive);
    return false;
  }
  limit_slots_ = slots;
  limit_held_ = true;
  host_->metrics().per_ip_counted.Add();
  return true;
}

void Connection::ReleaseLimit() {
  if (!limit_held_) return;
  host_->connections_per_address()->Release(limit_slots_);
  limit_held_ = false;
  host_->metrics().per_ip_counted.Sub();
}

}  // namespace sluice
