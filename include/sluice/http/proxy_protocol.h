// HAProxy's PROXY protocol, versions 1 (text) and 2 (binary), as sent by a
// load balancer at the start of each TCP connection before any HTTP byte
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
//
// ParseProxyHeader() is a pure function over the bytes received so far on a
// connection (the buffer's start, growing length): a connection state machine
// calls it after each RECV until it answers kDone or kInvalid, then drops
// `consumed` bytes and hands the rest to the HTTP parser. It keeps no state
// between calls and never allocates; a header is at most
// kProxyHeaderBytesMax bytes, so re-reading from the start costs little. It
// answers kInvalid as soon as the bytes received cannot begin a valid header
// (a client talking HTTP directly is refused on its first byte, not after a
// timeout). Any thread.
#ifndef SLUICE_HTTP_PROXY_PROTOCOL_H_
#define SLUICE_HTTP_PROXY_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/base/ip_address.h"

namespace sluice {

// v1: the whole line, "PROXY ... \r\n" included (the specification's limit).
inline constexpr size_t kProxyV1BytesMax = 107;
// v2: the 16-byte fixed part and at most 520 bytes of addresses and TLVs.
// 536 is the specification's suggested receive size: room for the largest
// address block (two 108-byte UNIX paths) plus 304 bytes of TLVs (ALPN,
// authority, unique ID, SSL details). Anything longer is refused.
inline constexpr size_t kProxyV2FixedBytes = 16;
inline constexpr size_t kProxyHeaderBytesMax = 536;

struct ProxyEndpoint {
  IpAddress address;
  uint16_t port = 0;
};

struct ProxyHeader {
  size_t consumed = 0;  // Bytes of the header; the client's data starts here.
  uint8_t version = 0;  // 1 or 2.
  // True: the header carries no client address to use, and the connection's
  // own peer address stands. Set for v2 LOCAL (the balancer's health
  // checks), v2 UNSPEC or UNIX families, and v1 "UNKNOWN".
  bool local = true;
  ProxyEndpoint source;       // The client; valid when !local.
  ProxyEndpoint destination;  // The address the client connected to; when !local.
  // v2 only: the TLV area, bytes [tlv_offset, tlv_offset + tlv_bytes) of
  // the input, checked to be a well-formed TLV sequence, for the PROXY
  // command with an INET, INET6 or UNIX family. Under LOCAL or UNSPEC the
  // block after the fixed part is discarded unread, as the specification
  // says. Both are 0 when there are no TLVs.
  size_t tlv_offset = 0;
  size_t tlv_bytes = 0;
};

struct ProxyParse {
  enum class Status : uint8_t {
    kNeedMore,  // A prefix of a valid header; call again with more bytes.
    kInvalid,   // Not a valid PROXY header, whatever may follow: close.
    kDone,      // `header` is filled in.
  };
  Status status = Status::kNeedMore;
  ProxyHeader header;       // When kDone.
  std::string_view reason;  // When kInvalid: a static string for logs and tests.
};

// `received`: every byte received on the connection so far, from its first.
// Bytes past the header are not examined. Validation is strict:
// - v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF,
//   single spaces, TCP4 addresses dotted-quad without leading zeros, TCP6
//   IPv6 text, ports 0-65535 in decimal without leading zeros; or
//   "PROXY UNKNOWN" and anything up to CRLF. A CR not followed by LF, a bare
//   LF, or no CRLF within 107 bytes is invalid.
// - v2: the 12-byte signature; version 2; command LOCAL (0) or PROXY (1);
//   family/transport one of 0x00, 0x11, 0x21, 0x31, 0x32 (UDP over IPv4 or
//   IPv6, 0x12 and 0x22, is refused: this is a stream server); a length
//   large enough for the family's addresses and within the limit above; and
//   TLVs (type, 16-bit length, value) that exactly fill what follows the
//   addresses.
ProxyParse ParseProxyHeader(std::string_view received);

}  // namespace sluice

#endif  // SLUICE_HTTP_PROXY_PROTOCOL_H_
