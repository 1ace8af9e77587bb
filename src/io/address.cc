#include "sluice/io/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice {

int SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

std::string HostText(const sockaddr* addr) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, host, sizeof(host));
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, host,
              sizeof(host));
  } else {
    return "-";
  }
  return host;
}

std::string SocketAddress::ToString() const {
  const std::string host = HostText(reinterpret_cast<const sockaddr*>(&storage));
  if (family() == AF_INET) return absl::StrCat(host, ":", port());
  return absl::StrCat("[", host, "]:", port());
}

absl::StatusOr<SocketAddress> ParseListenAddress(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid --listen address '", std::string(text), "': ", std::string(why),
                     " (expected HOST:PORT such as 127.0.0.1:8080 or [::1]:8080)"));
  };
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("unterminated IPv6 literal or missing port");
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  int port = -1;
  const auto res = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || res.ec != std::errc() ||
      res.ptr != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty() || host == "*") host = "0.0.0.0";

  SocketAddress out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof(sockaddr_in6);
  } else {
    return bad("host must be an IPv4 or bracketed IPv6 literal, or localhost");
  }
  return out;
}

absl::StatusOr<std::vector<CidrRange>> ParseCidrList(std::string_view text) {
  std::vector<CidrRange> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string item(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (item.empty()) continue;
    CidrRange r;
    std::string host = item;
    int prefix = -1;
    if (const size_t slash = item.find('/'); slash != std::string::npos) {
      host = item.substr(0, slash);
      const std::string bits = item.substr(slash + 1);
      const auto res = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
      if (bits.empty() || res.ec != std::errc() || res.ptr != bits.data() + bits.size()) {
        return absl::InvalidArgumentError(absl::StrCat("invalid CIDR '", item, "'"));
      }
    }
    if (inet_pton(AF_INET, host.c_str(), r.address) == 1) {
      r.family = AF_INET;
      if (prefix < 0) prefix = 32;
      if (prefix > 32) return absl::InvalidArgumentError(absl::StrCat("invalid CIDR '", item, "'"));
    } else if (inet_pton(AF_INET6, host.c_str(), r.address) == 1) {
      r.family = AF_INET6;
      if (prefix < 0) prefix = 128;
      if (prefix > 128) {
        return absl::InvalidArgumentError(absl::StrCat("invalid CIDR '", item, "'"));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("invalid CIDR '", item, "'"));
    }
    r.prefix_bits = prefix;
    out.push_back(r);
  }
  return out;
}

bool CidrListContains(const std::vector<CidrRange>& ranges, const sockaddr* peer) {
  int family = peer->sa_family;
  const unsigned char* addr = nullptr;
  if (family == AF_INET) {
    addr = reinterpret_cast<const unsigned char*>(
        &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr);
  } else if (family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
    addr = reinterpret_cast<const unsigned char*>(a6);
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      family = AF_INET;
      addr += 12;
    }
  } else {
    return false;
  }
  for (const CidrRange& r : ranges) {
    if (r.family != family) continue;
    int bits = r.prefix_bits;
    bool match = true;
    for (int i = 0; bits > 0; ++i, bits -= 8) {
      const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
      if ((addr[i] & mask) != (r.address[i] & mask)) {
        match = false;
        break;
      }
    }
    if (match) return true;
  }
  return false;
}

}  // namespace sluice
