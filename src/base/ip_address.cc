#include "sluice/base/ip_address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice {
namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool IsV4Mapped(const uint8_t bytes[16]) {
  return std::memcmp(bytes, kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0;
}

// Four decimal octets; each 0-255 with no leading zero (inet_aton would read
// "010" as octal 8 and "1.2" as 1.0.0.2: neither belongs in a header).
bool ParseDottedQuad(std::string_view text, uint8_t out[4]) {
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
    const size_t start = i;
    unsigned value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 3) {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
    }
    const size_t digits = i - start;
    if (digits == 0 || value > 255 || (digits > 1 && text[start] == '0')) return false;
    out[part] = static_cast<uint8_t>(value);
  }
  return i == text.size();
}

// Needs a NUL-terminated copy; the longest valid text is 45 bytes.
bool ParseV6Text(std::string_view text, uint8_t out[16]) {
  if (text.empty() || text.size() > IpAddress::kTextBytesMax) return false;
  // inet_pton accepts IPv4 leading zeros in the embedded tail on some libcs;
  // check that tail ourselves when there is one.
  const size_t last_colon = text.rfind(':');
  if (last_colon == std::string_view::npos) return false;
  const std::string_view tail = text.substr(last_colon + 1);
  if (tail.find('.') != std::string_view::npos) {
    uint8_t quad[4];
    if (!ParseDottedQuad(tail, quad)) return false;
  }
  char buffer[IpAddress::kTextBytesMax + 1];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  return inet_pton(AF_INET6, buffer, out) == 1;
}

}  // namespace

IpAddress IpAddress::V4(const uint8_t bytes[4]) {
  IpAddress a;
  a.family_ = Family::kV4;
  std::memcpy(a.bytes_.data(), bytes, 4);
  return a;
}

IpAddress IpAddress::V6(const uint8_t bytes[16]) {
  if (IsV4Mapped(bytes)) return V4(bytes + 12);
  IpAddress a;
  a.family_ = Family::kV6;
  std::memcpy(a.bytes_.data(), bytes, 16);
  return a;
}

std::optional<IpAddress> IpAddress::ParseV4(std::string_view text) {
  uint8_t bytes[4];
  if (!ParseDottedQuad(text, bytes)) return std::nullopt;
  return V4(bytes);
}

std::optional<IpAddress> IpAddress::ParseV6(std::string_view text) {
  uint8_t bytes[16];
  if (!ParseV6Text(text, bytes)) return std::nullopt;
  return V6(bytes);
}

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    return ParseV6(text.substr(1, text.size() - 2));
  }
  if (text.find(':') != std::string_view::npos) return ParseV6(text);
  return ParseV4(text);
}

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* addr, socklen_t len,
                                                 uint16_t* port) {
  if (addr == nullptr || len < static_cast<socklen_t>(sizeof(sa_family_t))) return std::nullopt;
  if (addr->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, addr, sizeof(in));
    if (port != nullptr) *port = ntohs(in.sin_port);
    return V4(reinterpret_cast<const uint8_t*>(&in.sin_addr));
  }
  if (addr->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6;
    std::memcpy(&in6, addr, sizeof(in6));
    if (port != nullptr) *port = ntohs(in6.sin6_port);
    return V6(in6.sin6_addr.s6_addr);
  }
  return std::nullopt;
}

socklen_t IpAddress::ToSockaddr(uint16_t port, sockaddr_storage* out) const {
  std::memset(out, 0, sizeof(*out));
  if (is_v4()) {
    sockaddr_in in = {};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, bytes_.data(), 4);
    std::memcpy(out, &in, sizeof(in));
    return sizeof(in);
  }
  if (is_v6()) {
    sockaddr_in6 in6 = {};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(in6.sin6_addr.s6_addr, bytes_.data(), 16);
    std::memcpy(out, &in6, sizeof(in6));
    return sizeof(in6);
  }
  return 0;
}

size_t IpAddress::Format(char* out) const {
  if (!valid()) return 0;
  char buffer[INET6_ADDRSTRLEN];
  if (inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buffer, sizeof(buffer)) == nullptr) {
    return 0;
  }
  const size_t len = std::strlen(buffer);
  std::memcpy(out, buffer, len);
  return len;
}

std::string IpAddress::ToString() const {
  char buffer[kTextBytesMax];
  return std::string(buffer, Format(buffer));
}

absl::StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  const std::string quoted = absl::StrCat("\"", std::string(text), "\"");
  const size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const bool v6_text = address_text.find(':') != std::string_view::npos;
  std::optional<IpAddress> address = IpAddress::Parse(address_text);
  if (!address) {
    return absl::InvalidArgumentError(
        absl::StrCat(quoted, " is not an IP address or CIDR block (e.g. 10.0.0.0/8, ::1/128)"));
  }
  const int family_bits = v6_text ? 128 : 32;
  int bits = family_bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) {
      bits = -1;
    } else {
      bits = 0;
      for (char c : digits) bits = (c >= '0' && c <= '9') ? bits * 10 + (c - '0') : 1000;
    }
    if (bits < 0 || bits > family_bits) {
      return absl::InvalidArgumentError(absl::StrCat(quoted, ": the prefix length must be 0-",
                                                     family_bits, " for this address family"));
    }
  }
  if (v6_text && address->is_v4()) {
    // IPv4-mapped text: the block is an IPv4 block if it lies inside ::ffff:0:0/96.
    if (bits < 96) {
      return absl::InvalidArgumentError(absl::StrCat(
          quoted, ": an IPv4-mapped block needs a prefix of at least 96; write the IPv4 block"));
    }
    bits -= 96;
  }
  Cidr cidr;
  cidr.network_ = *address;
  cidr.prefix_bits_ = bits;
  // Host bits must be zero.
  const auto& b = address->bytes();
  for (size_t i = 0; i < address->size(); ++i) {
    const int bit_start = static_cast<int>(i) * 8;
    uint8_t host_mask = 0xff;
    if (bits >= bit_start + 8) {
      host_mask = 0;
    } else if (bits > bit_start) {
      host_mask = static_cast<uint8_t>(0xff >> (bits - bit_start));
    }
    if ((b[i] & host_mask) != 0) {
      std::array<uint8_t, 16> masked = b;
      for (size_t j = i; j < address->size(); ++j) {
        const int start = static_cast<int>(j) * 8;
        if (bits >= start + 8) continue;
        masked[j] &= bits > start ? static_cast<uint8_t>(0xff << (8 - (bits - start))) : 0;
      }
      const IpAddress network =
          address->is_v4() ? IpAddress::V4(masked.data()) : IpAddress::V6(masked.data());
      return absl::InvalidArgumentError(absl::StrCat(quoted, " has host bits set; did you mean ",
                                                     network.ToString(), "/", bits, "?"));
    }
  }
  return cidr;
}

bool Cidr::Contains(const IpAddress& address) const {
  if (address.family() != network_.family() || !address.valid()) return false;
  const auto& a = address.bytes();
  const auto& n = network_.bytes();
  const int full_bytes = prefix_bits_ / 8;
  if (std::memcmp(a.data(), n.data(), static_cast<size_t>(full_bytes)) != 0) return false;
  const int rest = prefix_bits_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[static_cast<size_t>(full_bytes)] & mask) == (n[static_cast<size_t>(full_bytes)] & mask);
}

namespace {

std::string_view TrimListItem(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

absl::StatusOr<CidrList> CidrList::Parse(std::string_view text) {
  CidrList out;
  if (TrimListItem(text).empty()) return out;
  size_t index = 0;
  for (std::string_view rest = text;;) {
    const size_t comma = rest.find(',');
    const std::string_view item = TrimListItem(rest.substr(0, comma));
    ++index;
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("item ", index, " is empty (stray comma?)"));
    }
    if (out.blocks_.size() == kEntriesMax) {
      return absl::InvalidArgumentError(
          absl::StrCat("more than ", kEntriesMax, " items; use wider CIDR blocks"));
    }
    absl::StatusOr<Cidr> cidr = Cidr::Parse(item);
    if (!cidr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("item ", index, ": ", cidr.status().message()));
    }
    out.blocks_.push_back(*cidr);
    if (comma == std::string_view::npos) return out;
    rest.remove_prefix(comma + 1);
  }
}

bool CidrList::Contains(const IpAddress& address) const {
  for (const Cidr& block : blocks_) {
    if (block.Contains(address)) return true;
  }
  return false;
}

}  // namespace sluice
