// The real client address of a request that came through reverse proxies or
// load balancers: the trusted-proxy set (from a flag), the forwarding fields
// to believe and in which order, and the walk that picks the client out of
// Forwarded (RFC 7239), X-Forwarded-For and X-Real-IP.
//
// The rule that keeps it safe: a field is only read when the connection's
// peer is a trusted proxy, and a chain is read from the right (the hop our
// proxy added) leftwards, past trusted proxies only, so whatever a client
// writes into the fields itself lies to the left of the first untrusted hop
// and is never taken. TrustedProxies is built once at start-up and then only
// read (any thread); ResolveClientAddress is a pure function that neither
// allocates nor fails.
#ifndef SLUICE_HTTP_CLIENT_ADDRESS_H_
#define SLUICE_HTTP_CLIENT_ADDRESS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/base/ip_address.h"

namespace sluice {

// The peers whose forwarding fields are believed (--trusted_proxies).
using TrustedProxies = CidrList;

// The fields that can name the client, in the order the operator wants them
// tried (flag values "forwarded", "x-forwarded-for", "x-real-ip").
enum class ForwardedSource : uint8_t { kForwarded, kXForwardedFor, kXRealIp };

inline constexpr size_t kForwardedSourcesMax = 3;

struct ForwardedSourceOrder {
  ForwardedSource sources[kForwardedSourcesMax] = {};
  size_t count = 0;
  std::span<const ForwardedSource> span() const { return {sources, count}; }
};

// "x-forwarded-for,forwarded" → that order. Names are case-insensitive; an
// unknown or repeated name, or an empty list, is an error.
absl::StatusOr<ForwardedSourceOrder> ParseForwardedSourceOrder(std::string_view flag_value);

// Every field line of each name, in the order they came: several lines of a
// list field form one list (RFC 9110 §5.3). Views into the request buffer.
struct ForwardingFields {
  std::span<const std::string_view> forwarded;
  std::span<const std::string_view> x_forwarded_for;
  std::span<const std::string_view> x_real_ip;
};

// At most this many hops of a chain are examined, from the right. A chain
// whose last kHopsMax entries are all trusted proxies gives no answer.
inline constexpr size_t kHopsMax = 64;

struct ClientAddress {
  enum class Source : uint8_t { kPeer, kForwarded, kXForwardedFor, kXRealIp };
  IpAddress address;
  Source source = Source::kPeer;
};

// The client's address:
// - the peer itself unless the peer is in `trusted`;
// - else the first source in `order` that gives an answer, else the peer.
//   Forwarded and X-Forwarded-For: walk the hops right to left, skip those
//   in `trusted`, answer with the first one that is not; if every hop is
//   trusted, the left-most. A hop that is not an address (Forwarded's
//   "unknown" or "_obfuscated" nodes, an element without for=, or any
//   malformed entry) ends the walk without an answer: that hop hid the
//   client, and whatever lies left of it could have been written by anyone.
//   X-Real-IP: a single address, used as given (exactly one field line).
// Addresses may carry a port ("192.0.2.1:8080", "[2001:db8::1]:443"),
// which is dropped; IPv6 in X-Forwarded-For may be bare or in brackets.
ClientAddress ResolveClientAddress(const IpAddress& peer, const ForwardingFields& fields,
                                   const TrustedProxies& trusted,
                                   std::span<const ForwardedSource> order);

}  // namespace sluice

#endif  // SLUICE_HTTP_CLIENT_ADDRESS_H_
