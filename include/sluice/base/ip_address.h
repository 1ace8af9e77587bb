// IP addresses and CIDR blocks as values: parsed from text (flags, PROXY
// headers, Forwarded / X-Forwarded-For fields) or from a socket address, and
// matched. Shared by the PROXY protocol parser and the client-address rules,
// so neither depends on the other. Pure values and functions; any thread.
#ifndef SLUICE_BASE_IP_ADDRESS_H_
#define SLUICE_BASE_IP_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

class IpAddress {
 public:
  enum class Family : uint8_t { kNone, kV4, kV6 };

  // Longest text Format() writes ("ffff:...:255.255.255.255"), without NUL.
  static constexpr size_t kTextBytesMax = 45;

  IpAddress() = default;

  // The address in network byte order. An IPv4-mapped IPv6 address
  // (::ffff:a.b.c.d) becomes the IPv4 address a.b.c.d: a dual-stack
  // listener reports IPv4 clients that way, and a client must match
  // "10.0.0.0/8" whichever socket it came through.
  static IpAddress V4(const uint8_t bytes[4]);
  static IpAddress V6(const uint8_t bytes[16]);

  // Dotted-quad IPv4 (four decimal octets 0-255, no leading zeros, so
  // "010.1.1.1" is not silently octal) or RFC 4291 IPv6 text, optionally in
  // brackets ("[::1]"). No zone index ("fe80::1%eth0"), no port, no
  // surrounding whitespace. nullopt when the text is anything else.
  static std::optional<IpAddress> Parse(std::string_view text);
  // Only IPv4 text (PROXY v1 "TCP4"), only IPv6 text (no brackets; "TCP6").
  // The IPv6 form is still normalised when it is IPv4-mapped.
  static std::optional<IpAddress> ParseV4(std::string_view text);
  static std::optional<IpAddress> ParseV6(std::string_view text);

  // AF_INET or AF_INET6 socket address (e.g. from accept); the port goes to
  // *port when it is not null. nullopt for other families or a short length.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* addr, socklen_t len,
                                               uint16_t* port = nullptr);
  // Writes this address and `port` as AF_INET or AF_INET6; returns the length
  // to pass to the kernel, 0 for a default-constructed address.
  socklen_t ToSockaddr(uint16_t port, sockaddr_storage* out) const;

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  bool is_v6() const { return family_ == Family::kV6; }
  bool valid() const { return family_ != Family::kNone; }
  // 4 or 16 bytes in network order; the first size() bytes of bytes().
  size_t size() const { return is_v4() ? 4 : is_v6() ? 16 : 0; }
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  // Writes the canonical text (RFC 5952 for IPv6, no brackets) into `out`,
  // which has room for kTextBytesMax bytes; returns the length (0 when
  // invalid). No allocation.
  size_t Format(char* out) const;
  std::string ToString() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.family_ == b.family_ && a.bytes_ == b.bytes_;
  }

 private:
  Family family_ = Family::kNone;
  std::array<uint8_t, 16> bytes_ = {};  // Unused bytes stay zero (for ==).
};

// An address block. Parsed strictly: host bits below the prefix must be zero
// ("10.0.0.1/8" is refused, with a message suggesting "10.0.0.0/8"), because
// such an entry is more often a typo for a single host than a network.
class Cidr {
 public:
  // "10.0.0.0/8", "2001:db8::/32", "::1/128"; a bare address means /32 or
  // /128. An IPv4-mapped IPv6 block ("::ffff:10.0.0.0/104", prefix >= 96)
  // becomes the IPv4 block (10.0.0.0/8), as addresses are normalised. Note
  // that "::/0" therefore matches IPv6 clients only; "0.0.0.0/0" covers IPv4.
  static absl::StatusOr<Cidr> Parse(std::string_view text);

  bool Contains(const IpAddress& address) const;

  const IpAddress& network() const { return network_; }
  int prefix_bits() const { return prefix_bits_; }

 private:
  IpAddress network_;
  int prefix_bits_ = 0;
};

// A list of address blocks from a flag ("10.0.0.0/8, 192.168.1.7, ::1"):
// --metrics_allow, --trusted_proxies. Built once at start-up, then only read
// (any thread).
class CidrList {
 public:
  // More entries than this is refused: Contains() is a linear scan.
  static constexpr size_t kEntriesMax = 256;

  // Comma-separated blocks or addresses, spaces around items allowed. "" is
  // the empty list (matches nobody). An empty item, a bad block or too many
  // items is an error naming the item.
  static absl::StatusOr<CidrList> Parse(std::string_view text);

  bool Contains(const IpAddress& address) const;
  bool empty() const { return blocks_.empty(); }
  size_t size() const { return blocks_.size(); }

 private:
  std::vector<Cidr> blocks_;
};

}  // namespace sluice

#endif  // SLUICE_BASE_IP_ADDRESS_H_
