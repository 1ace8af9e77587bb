#include "sluice/http/client_address.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "sluice/http/http_parser.h"

namespace sluice {
namespace {

// Calls f(item) for each comma-separated item of `value`, trimmed.
template <typename F>
void ForEachItem(std::string_view value, F f) {
  while (true) {
    const size_t comma = value.find(',');
    f(TrimOws(value.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

bool IsDigits(std::string_view v) {
  if (v.empty() || v.size() > 5) return false;
  uint32_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n <= 65535;
}

// RFC 7239 §6.3 obfport: "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
bool IsObfuscatedPort(std::string_view v) {
  if (v.size() < 2 || v[0] != '_') return false;
  for (char c : v.substr(1)) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

enum class Syntax : uint8_t { kForwarded, kXForwardedFor };

// A hop's node: IPv4, "[IPv6]", either with ":port"; in X-Forwarded-For also
// bare IPv6. Anything else (including "unknown", "_hidden") is not an address.
std::optional<IpAddress> ParseNode(std::string_view node, Syntax syntax) {
  std::string_view port;
  std::string_view address;
  if (!node.empty() && node.front() == '[') {
    const size_t close = node.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    address = node.substr(1, close - 1);
    std::string_view after = node.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
      if (port.empty()) return std::nullopt;
    }
    std::optional<IpAddress> ip = IpAddress::ParseV6(address);
    if (!ip) return std::nullopt;
    if (!port.empty() && !IsDigits(port) &&
        !(syntax == Syntax::kForwarded && IsObfuscatedPort(port))) {
      return std::nullopt;
    }
    return ip;
  }
  const size_t colon = node.find(':');
  if (colon != std::string_view::npos && node.find(':', colon + 1) == std::string_view::npos) {
    // IPv4 with a port.
    port = node.substr(colon + 1);
    if (!IsDigits(port) && !(syntax == Syntax::kForwarded && IsObfuscatedPort(port))) {
      return std::nullopt;
    }
    return IpAddress::ParseV4(node.substr(0, colon));
  }
  if (colon != std::string_view::npos && syntax == Syntax::kForwarded) {
    return std::nullopt;  // RFC 7239 §6: IPv6 must be in brackets.
  }
  return IpAddress::Parse(node);
}

// The last kHopsMax hops of a chain, oldest first, without allocating.
class HopRing {
 public:
  void Push(std::string_view node) {
    nodes_[total_ % kHopsMax] = node;
    ++total_;
  }
  size_t kept() const { return total_ < kHopsMax ? total_ : kHopsMax; }
  bool truncated() const { return total_ > kHopsMax; }
  // i = 0 is the newest (right-most) hop.
  std::string_view FromRight(size_t i) const { return nodes_[(total_ - 1 - i) % kHopsMax]; }

 private:
  std::string_view nodes_[kHopsMax];
  size_t total_ = 0;
};

// The right-to-left walk shared by Forwarded and X-Forwarded-For.
std::optional<IpAddress> WalkHops(const HopRing& hops, Syntax syntax,
                                  const TrustedProxies& trusted) {
  std::optional<IpAddress> leftmost;
  for (size_t i = 0; i < hops.kept(); ++i) {
    const std::optional<IpAddress> hop = ParseNode(hops.FromRight(i), syntax);
    if (!hop) return std::nullopt;
    if (!trusted.Contains(*hop)) return hop;
    leftmost = hop;
  }
  if (hops.truncated()) return std::nullopt;
  return leftmost;
}

std::optional<IpAddress> FromXForwardedFor(std::span<const std::string_view> lines,
                                           const TrustedProxies& trusted) {
  HopRing hops;
  for (std::string_view line : lines) {
    ForEachItem(line, [&hops](std::string_view item) {
      // Empty list elements are allowed (RFC 9110 §5.6.1).
      if (!item.empty()) hops.Push(item);
    });
  }
  return WalkHops(hops, Syntax::kXForwardedFor, trusted);
}

bool IsTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Parses one Forwarded field line (RFC 7239 §4): elements separated by ",",
// pairs by ";", values tokens or quoted strings. Pushes each element's for=
// node, or an empty node for an element without one. False on a syntax error.
bool ParseForwardedLine(std::string_view line, HopRing* hops) {
  size_t i = 0;
  const auto skip_ows = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
  };
  bool element_empty = true;
  bool have_for = false;
  std::string_view for_node;
  while (true) {
    skip_ows();
    if (i < line.size() && line[i] != ',') {
      const size_t name_start = i;
      while (i < line.size() && IsTchar(line[i])) ++i;
      const std::string_view name = line.substr(name_start, i - name_start);
      if (name.empty() || i >= line.size() || line[i] != '=') return false;
      ++i;
      std::string_view value;
      if (i < line.size() && line[i] == '"') {
        const size_t value_start = ++i;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') ++i;  // quoted-pair: the next byte is literal.
          ++i;
        }
        if (i >= line.size()) return false;
        value = line.substr(value_start, i - value_start);
        ++i;
      } else {
        const size_t value_start = i;
        while (i < line.size() && IsTchar(line[i])) ++i;
        value = line.substr(value_start, i - value_start);
      }
      if (EqualsIgnoreCase(name, "for")) {
        if (have_for) return false;  // §4: a parameter at most once per element.
        have_for = true;
        // A node never needs an escape; one makes the value unusable.
        for_node = value.find('\\') == std::string_view::npos ? value : std::string_view("\\");
      }
      element_empty = false;
      skip_ows();
      if (i < line.size() && line[i] == ';') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] != ',') return false;
    }
    // End of an element: at "," or the end of the line.
    if (!element_empty) hops->Push(have_for ? for_node : std::string_view());
    element_empty = true;
    have_for = false;
    if (i >= line.size()) return true;
    ++i;  // The comma.
  }
}

std::optional<IpAddress> FromForwarded(std::span<const std::string_view> lines,
                                       const TrustedProxies& trusted) {
  HopRing hops;
  for (std::string_view line : lines) {
    if (!ParseForwardedLine(line, &hops)) return std::nullopt;
  }
  return WalkHops(hops, Syntax::kForwarded, trusted);
}

std::optional<IpAddress> FromXRealIp(std::span<const std::string_view> lines) {
  if (lines.size() != 1) return std::nullopt;
  return ParseNode(TrimOws(lines[0]), Syntax::kXForwardedFor);
}

}  // namespace

absl::StatusOr<ForwardedSourceOrder> ParseForwardedSourceOrder(std::string_view flag_value) {
  ForwardedSourceOrder order;
  absl::Status status;
  ForEachItem(flag_value, [&](std::string_view item) {
    if (!status.ok()) return;
    ForwardedSource source;
    if (EqualsIgnoreCase(item, "forwarded")) {
      source = ForwardedSource::kForwarded;
    } else if (EqualsIgnoreCase(item, "x-forwarded-for")) {
      source = ForwardedSource::kXForwardedFor;
    } else if (EqualsIgnoreCase(item, "x-real-ip")) {
      source = ForwardedSource::kXRealIp;
    } else {
      status = absl::InvalidArgumentError(
          absl::StrCat("forwarded sources: \"", std::string(item),
                       "\" is not one of forwarded, x-forwarded-for, x-real-ip"));
      return;
    }
    for (size_t i = 0; i < order.count; ++i) {
      if (order.sources[i] == source) {
        status = absl::InvalidArgumentError(
            absl::StrCat("forwarded sources: \"", std::string(item), "\" is listed twice"));
        return;
      }
    }
    order.sources[order.count++] = source;
  });
  if (!status.ok()) return status;
  return order;
}

ClientAddress ResolveClientAddress(const IpAddress& peer, const ForwardingFields& fields,
                                   const TrustedProxies& trusted,
                                   std::span<const ForwardedSource> order) {
  if (!trusted.Contains(peer)) return {peer, ClientAddress::Source::kPeer};
  for (ForwardedSource source : order) {
    switch (source) {
      case ForwardedSource::kForwarded:
        if (auto a = FromForwarded(fields.forwarded, trusted)) {
          return {*a, ClientAddress::Source::kForwarded};
        }
        break;
      case ForwardedSource::kXForwardedFor:
        if (auto a = FromXForwardedFor(fields.x_forwarded_for, trusted)) {
          return {*a, ClientAddress::Source::kXForwardedFor};
        }
        break;
      case ForwardedSource::kXRealIp:
        if (auto a = FromXRealIp(fields.x_real_ip)) return {*a, ClientAddress::Source::kXRealIp};
        break;
    }
  }
  return {peer, ClientAddress::Source::kPeer};
}

}  // namespace sluice
