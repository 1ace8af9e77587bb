#include "sluice/http/proxy_protocol.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace sluice {
namespace {

using Status = ProxyParse::Status;

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr char kV2SignatureBytes[] = "\r\n\r\n\0\r\nQUIT\n";
constexpr std::string_view kV2Signature(kV2SignatureBytes, 12);

// v2 byte 13, high nibble: version; low nibble: command.
constexpr uint8_t kV2Version = 2;
constexpr uint8_t kV2CommandLocal = 0;
constexpr uint8_t kV2CommandProxy = 1;
// v2 byte 14: address family (high nibble) and transport (low nibble).
constexpr uint8_t kV2Unspec = 0x00;
constexpr uint8_t kV2TcpV4 = 0x11;
constexpr uint8_t kV2UdpV4 = 0x12;
constexpr uint8_t kV2TcpV6 = 0x21;
constexpr uint8_t kV2UdpV6 = 0x22;
constexpr uint8_t kV2UnixStream = 0x31;
constexpr uint8_t kV2UnixDgram = 0x32;
// Address block sizes: two addresses and two ports, or two 108-byte paths.
constexpr size_t kV2AddressBytesV4 = 4 + 4 + 2 + 2;
constexpr size_t kV2AddressBytesV6 = 16 + 16 + 2 + 2;
constexpr size_t kV2AddressBytesUnix = 108 + 108;
constexpr size_t kV2TlvHeadBytes = 3;  // Type, 16-bit length.

ProxyParse NeedMore() { return {}; }

ProxyParse Invalid(std::string_view reason) {
  ProxyParse p;
  p.status = Status::kInvalid;
  p.reason = reason;
  return p;
}

ProxyParse Done(const ProxyHeader& header) {
  ProxyParse p;
  p.status = Status::kDone;
  p.header = header;
  return p;
}

// True when `received` (possibly short) agrees with `expected` so far.
bool PrefixMatches(std::string_view received, std::string_view expected) {
  const size_t n = std::min(received.size(), expected.size());
  return received.substr(0, n) == expected.substr(0, n);
}

// 0-65535, decimal, no sign, no leading zero.
std::optional<uint16_t> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

bool IsV1AddressChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
         c == ':' || c == ' ';
}

// Before the CRLF has arrived: could `received` (shorter than the limit,
// no LF yet) still become a valid v1 line? Sound, not complete: it never
// refuses a prefix of a valid line.
ProxyParse CheckV1Prefix(std::string_view received) {
  std::string_view rest = received.substr(kV1Prefix.size());
  const bool unknown = PrefixMatches(rest, "UNKNOWN");
  const bool tcp = PrefixMatches(rest, "TCP4 ") || PrefixMatches(rest, "TCP6 ");
  if (!unknown && !tcp) return Invalid("v1: protocol is not TCP4, TCP6 or UNKNOWN");
  if (unknown) {
    // After "UNKNOWN", anything up to CRLF; only a CR may not be followed by
    // something other than LF.
    if (rest.size() > 7 && rest[7] != ' ' && rest[7] != '\r') {
      return Invalid("v1: protocol is not TCP4, TCP6 or UNKNOWN");
    }
  } else {
    for (size_t i = 5; i < rest.size(); ++i) {
      if (!IsV1AddressChar(rest[i]) && !(rest[i] == '\r' && i + 1 == rest.size())) {
        return Invalid("v1: unexpected character in addresses");
      }
    }
  }
  const size_t cr = received.find('\r');
  if (cr != std::string_view::npos && cr + 1 < received.size()) {
    return Invalid("v1: CR not followed by LF");
  }
  return NeedMore();
}

// The complete line, "PROXY " through CRLF.
ProxyParse ParseV1Line(std::string_view line) {
  ProxyHeader header;
  header.version = 1;
  header.consumed = line.size();
  std::string_view rest = line.substr(kV1Prefix.size(), line.size() - kV1Prefix.size() - 2);
  if (rest == "UNKNOWN" || rest.substr(0, 8) == "UNKNOWN ") return Done(header);

  std::string_view parts[5];
  for (size_t i = 0; i < 5; ++i) {
    const size_t space = rest.find(' ');
    if ((space == std::string_view::npos) != (i == 4)) {
      return Invalid("v1: expected 5 space-separated fields");
    }
    parts[i] = rest.substr(0, space);
    if (parts[i].empty()) return Invalid("v1: empty field (two spaces)");
    rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  }
  const bool v4 = parts[0] == "TCP4";
  if (!v4 && parts[0] != "TCP6") return Invalid("v1: protocol is not TCP4, TCP6 or UNKNOWN");
  const std::optional<IpAddress> source =
      v4 ? IpAddress::ParseV4(parts[1]) : IpAddress::ParseV6(parts[1]);
  const std::optional<IpAddress> destination =
      v4 ? IpAddress::ParseV4(parts[2]) : IpAddress::ParseV6(parts[2]);
  if (!source || !destination) {
    return Invalid(v4 ? "v1: TCP4 address is not dotted-quad IPv4" : "v1: TCP6 address invalid");
  }
  const std::optional<uint16_t> source_port = ParsePort(parts[3]);
  const std::optional<uint16_t> destination_port = ParsePort(parts[4]);
  if (!source_port || !destination_port) return Invalid("v1: port is not 0-65535");
  header.local = false;
  header.source = {*source, *source_port};
  header.destination = {*destination, *destination_port};
  return Done(header);
}

ProxyParse ParseV1(std::string_view received) {
  if (!PrefixMatches(received, kV1Prefix)) return Invalid("not a PROXY header");
  if (received.size() <= kV1Prefix.size()) return NeedMore();
  const std::string_view window = received.substr(0, kProxyV1BytesMax);
  const size_t lf = window.find('\n');
  if (lf == std::string_view::npos) {
    if (window.size() == kProxyV1BytesMax) return Invalid("v1: no CRLF within 107 bytes");
    return CheckV1Prefix(window);
  }
  if (lf == 0 || window[lf - 1] != '\r') return Invalid("v1: LF without CR");
  // The CR must be the first one: a stray CR earlier is not part of a line.
  if (window.find('\r') != lf - 1) return Invalid("v1: CR not followed by LF");
  if (ProxyParse early = CheckV1Prefix(window.substr(0, lf - 1));
      early.status == Status::kInvalid) {
    return early;
  }
  return ParseV1Line(window.substr(0, lf + 1));
}

uint16_t ReadBe16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

size_t V2AddressBytes(uint8_t family) {
  switch (family) {
    case kV2TcpV4:
      return kV2AddressBytesV4;
    case kV2TcpV6:
      return kV2AddressBytesV6;
    case kV2UnixStream:
    case kV2UnixDgram:
      return kV2AddressBytesUnix;
    default:
      return 0;
  }
}

// Walks the TLVs in `tlvs`; true when they fill it exactly.
bool TlvsWellFormed(std::string_view tlvs) {
  while (!tlvs.empty()) {
    if (tlvs.size() < kV2TlvHeadBytes) return false;
    const size_t value_bytes = ReadBe16(tlvs.data() + 1);
    if (value_bytes > tlvs.size() - kV2TlvHeadBytes) return false;
    tlvs.remove_prefix(kV2TlvHeadBytes + value_bytes);
  }
  return true;
}

ProxyEndpoint ReadEndpoint(const char* address, size_t address_bytes, const char* port) {
  uint8_t bytes[16];
  std::memcpy(bytes, address, address_bytes);
  return {address_bytes == 4 ? IpAddress::V4(bytes) : IpAddress::V6(bytes), ReadBe16(port)};
}

ProxyParse ParseV2(std::string_view received) {
  if (!PrefixMatches(received, kV2Signature)) return Invalid("not a PROXY header");
  if (received.size() <= kV2Signature.size()) return NeedMore();
  const auto version_command = static_cast<uint8_t>(received[12]);
  if (version_command >> 4 != kV2Version) return Invalid("v2: unsupported version");
  const uint8_t command = version_command & 0x0f;
  if (command != kV2CommandLocal && command != kV2CommandProxy) {
    return Invalid("v2: unknown command");
  }
  if (received.size() < 14) return NeedMore();
  const auto family = static_cast<uint8_t>(received[13]);
  if (command == kV2CommandProxy) {
    if (family == kV2UdpV4 || family == kV2UdpV6) return Invalid("v2: UDP on a stream connection");
    if (family != kV2Unspec && V2AddressBytes(family) == 0) {
      return Invalid("v2: unknown address family or transport");
    }
  }
  if (received.size() < kProxyV2FixedBytes) return NeedMore();
  const size_t length = ReadBe16(received.data() + 14);
  if (length > kProxyHeaderBytesMax - kProxyV2FixedBytes) return Invalid("v2: header too long");
  const size_t address_bytes = command == kV2CommandProxy ? V2AddressBytes(family) : 0;
  if (length < address_bytes) return Invalid("v2: length too short for the address family");
  if (received.size() < kProxyV2FixedBytes + length) return NeedMore();

  ProxyHeader header;
  header.version = 2;
  header.consumed = kProxyV2FixedBytes + length;
  if (command == kV2CommandLocal || family == kV2Unspec) return Done(header);
  const std::string_view tlvs =
      received.substr(kProxyV2FixedBytes + address_bytes, length - address_bytes);
  if (!TlvsWellFormed(tlvs)) return Invalid("v2: TLV overruns the header");
  if (!tlvs.empty()) {
    header.tlv_offset = kProxyV2FixedBytes + address_bytes;
    header.tlv_bytes = tlvs.size();
  }
  if (family == kV2UnixStream || family == kV2UnixDgram) return Done(header);

  const char* a = received.data() + kProxyV2FixedBytes;
  const size_t ip_bytes = family == kV2TcpV4 ? 4 : 16;
  header.local = false;
  header.source = ReadEndpoint(a, ip_bytes, a + 2 * ip_bytes);
  header.destination = ReadEndpoint(a + ip_bytes, ip_bytes, a + 2 * ip_bytes + 2);
  return Done(header);
}

}  // namespace

ProxyParse ParseProxyHeader(std::string_view received) {
  if (received.empty()) return NeedMore();
  // The two signatures differ in their first byte.
  if (received[0] == kV1Prefix[0]) return ParseV1(received);
  if (received[0] == kV2Signature[0]) return ParseV2(received);
  return Invalid("not a PROXY header");
}

}  // namespace sluice
