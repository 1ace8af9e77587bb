// IpAddress and Cidr: strict text forms, IPv4-mapped normalisation, socket
// addresses, and block matching, as tables.

#include "sluice/base/ip_address.h"

#include <arpa/inet.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

struct ParseCase {
  std::string text;
  std::string canonical;  // Empty: must not parse.
  IpAddress::Family family = IpAddress::Family::kNone;
};

TEST(IpAddressTest, ParseTable) {
  using F = IpAddress::Family;
  const std::vector<ParseCase> cases = {
      {"192.0.2.1", "192.0.2.1", F::kV4},
      {"0.0.0.0", "0.0.0.0", F::kV4},
      {"255.255.255.255", "255.255.255.255", F::kV4},
      {"::1", "::1", F::kV6},
      {"[::1]", "::1", F::kV6},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", F::kV6},
      {"::", "::", F::kV6},
      {"::ffff:192.0.2.1", "192.0.2.1", F::kV4},
      {"[::ffff:c000:0201]", "192.0.2.1", F::kV4},
      {"64:ff9b::192.0.2.1", "64:ff9b::c000:201", F::kV6},
      // Refused.
      {"", ""},
      {"192.0.2", ""},
      {"192.0.2.1.5", ""},
      {"192.0.2.256", ""},
      {"192.0.2.01", ""},
      {"010.0.0.1", ""},
      {"1.2.3.4 ", ""},
      {" 1.2.3.4", ""},
      {"1.2.3.-4", ""},
      {"0x7f.0.0.1", ""},
      {"1.2.3.4:80", ""},
      {"[1.2.3.4]", ""},
      {"[::1", ""},
      {"::1]", ""},
      {"fe80::1%eth0", ""},
      {"::ffff:192.0.2.01", ""},
      {"1:2:3:4:5:6:7:8:9", ""},
      {"1::2::3", ""},
      {"12345::", ""},
      {"localhost", ""},
      {std::string("1.2.3.4\0", 8), ""},
      {std::string(100, '1'), ""},
  };
  for (const ParseCase& c : cases) {
    SCOPED_TRACE(c.text);
    const auto a = IpAddress::Parse(c.text);
    if (c.canonical.empty()) {
      EXPECT_FALSE(a.has_value()) << a->ToString();
      continue;
    }
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->ToString(), c.canonical);
    EXPECT_EQ(a->family(), c.family);
    // The canonical text parses back to the same address.
    EXPECT_EQ(IpAddress::Parse(c.canonical), a);
  }
}

TEST(IpAddressTest, FamilySpecificParsers) {
  EXPECT_TRUE(IpAddress::ParseV4("10.0.0.1").has_value());
  EXPECT_FALSE(IpAddress::ParseV4("::1").has_value());
  EXPECT_TRUE(IpAddress::ParseV6("::1").has_value());
  EXPECT_FALSE(IpAddress::ParseV6("10.0.0.1").has_value());
  EXPECT_FALSE(IpAddress::ParseV6("[::1]").has_value());
}

TEST(IpAddressTest, SockaddrRoundTrip) {
  for (const char* text : {"192.0.2.1", "2001:db8::7"}) {
    SCOPED_TRACE(text);
    const auto a = IpAddress::Parse(text);
    ASSERT_TRUE(a.has_value());
    sockaddr_storage ss;
    const socklen_t len = a->ToSockaddr(8443, &ss);
    EXPECT_EQ(len, a->is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    uint16_t port = 0;
    const auto back = IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len, &port);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, *a);
    EXPECT_EQ(port, 8443);
    EXPECT_FALSE(IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len - 1).has_value());
  }
  // A dual-stack socket's IPv4 client comes out as IPv4.
  sockaddr_in6 in6 = {};
  in6.sin6_family = AF_INET6;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr), 1);
  const auto mapped =
      IpAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&in6), sizeof(in6), nullptr);
  ASSERT_TRUE(mapped.has_value());
  EXPECT_TRUE(mapped->is_v4());
  EXPECT_EQ(mapped->ToString(), "10.1.2.3");
}

struct CidrCase {
  std::string text;
  bool ok;
  std::vector<std::string> inside;
  std::vector<std::string> outside;
  std::string error_part = "";  // Part of the error message when !ok.
};

TEST(CidrTest, Table) {
  const std::vector<CidrCase> cases = {
      {"10.0.0.0/8", true, {"10.0.0.0", "10.255.255.255", "::ffff:10.1.1.1"}, {"11.0.0.0", "::1"}},
      {"192.168.1.7", true, {"192.168.1.7"}, {"192.168.1.6", "192.168.1.8"}},
      {"172.16.0.0/12", true, {"172.16.0.1", "172.31.255.255"}, {"172.32.0.0", "172.15.255.255"}},
      {"0.0.0.0/0", true, {"1.2.3.4", "255.255.255.255"}, {"::1", "2001:db8::1"}},
      {"::1/128", true, {"::1"}, {"::2", "0.0.0.1"}},
      {"::1", true, {"::1"}, {"::"}},
      {"2001:db8::/32", true, {"2001:db8::1", "2001:db8:ffff::1"}, {"2001:db9::1"}},
      {"fe80::/10", true, {"fe80::1", "febf::1"}, {"fec0::1"}},
      {"::/0", true, {"::1", "2001:db8::1"}, {"10.0.0.1"}},
      {"::ffff:10.0.0.0/104", true, {"10.1.2.3"}, {"11.0.0.0"}},
      {"1.2.3.4/32", true, {"1.2.3.4"}, {"1.2.3.5"}},
      {"10.0.0.1/8", false, {}, {}, "did you mean 10.0.0.0/8?"},
      {"2001:db8::1/32", false, {}, {}, "did you mean 2001:db8::/32?"},
      {"10.0.0.0/33", false, {}, {}, "0-32"},
      {"::/129", false, {}, {}, "0-128"},
      {"10.0.0.0/", false, {}, {}, "prefix"},
      {"10.0.0.0/08", false, {}, {}, "prefix"},
      {"10.0.0.0/-1", false, {}, {}, "prefix"},
      {"10.0.0.0/8/8", false, {}, {}, "prefix"},
      {"::ffff:10.0.0.0/8", false, {}, {}, "at least 96"},
      {"10.0.0.0 /8", false, {}, {}, "not an IP address"},
      {"example.com/8", false, {}, {}, "not an IP address"},
      {"", false, {}, {}, "not an IP address"},
  };
  for (const CidrCase& c : cases) {
    SCOPED_TRACE(c.text);
    const absl::StatusOr<Cidr> cidr = Cidr::Parse(c.text);
    ASSERT_EQ(cidr.ok(), c.ok) << cidr.status();
    if (!c.ok) {
      EXPECT_NE(cidr.status().message().find(c.error_part), std::string::npos) << cidr.status();
      EXPECT_NE(cidr.status().message().find(c.text), std::string::npos) << cidr.status();
      continue;
    }
    for (const std::string& in : c.inside) {
      EXPECT_TRUE(cidr->Contains(*IpAddress::Parse(in))) << in;
    }
    for (const std::string& out : c.outside) {
      EXPECT_FALSE(cidr->Contains(*IpAddress::Parse(out))) << out;
    }
    EXPECT_FALSE(cidr->Contains(IpAddress())) << "an invalid address is in no block";
  }
}

}  // namespace
}  // namespace sluice
