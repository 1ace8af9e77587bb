// ParseProxyHeader (PROXY protocol v1 and v2) as a table: valid headers,
// LOCAL and UNKNOWN, TLVs, limits, garbage; every case is also fed at every
// byte boundary, as a connection receiving it in pieces would.

#include "sluice/http/proxy_protocol.h"

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using Status = ProxyParse::Status;

const std::string kV2Sig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

std::string Be16(size_t v) { return Bytes({static_cast<int>(v >> 8), static_cast<int>(v & 0xff)}); }

// A v2 header: signature, version/command, family, length of `body`, body.
std::string V2(int version_command, int family, const std::string& body) {
  return kV2Sig + Bytes({version_command, family}) + Be16(body.size()) + body;
}

std::string Tlv(int type, const std::string& value) {
  return Bytes({type}) + Be16(value.size()) + value;
}

const std::string kV4Addresses = Bytes({192, 0, 2, 1, 198, 51, 100, 2}) + Be16(56324) + Be16(443);
const std::string kV6Addresses =
    Bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}) +
    Bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}) + Be16(1) + Be16(65535);
const std::string kV6MappedAddresses =
    Bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3}) +
    Bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 9, 9}) + Be16(80) + Be16(8080);

struct Case {
  std::string name;
  std::string input;
  Status status;
  // kDone:
  size_t consumed = 0;
  int version = 0;
  bool local = true;
  std::string source;  // "address port", when !local.
  std::string destination;
  size_t tlv_offset = 0;
  size_t tlv_bytes = 0;
  // kInvalid: the prefix length at which the answer must already be kInvalid
  // (early refusal); 0 means the whole input.
  size_t invalid_by = 0;
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

Case Make(std::string name, std::string input, Status status) {
  Case c;
  c.name = std::move(name);
  c.input = std::move(input);
  c.status = status;
  return c;
}

std::string Endpoint(const ProxyEndpoint& e) {
  return e.address.ToString() + " " + std::to_string(e.port);
}

Case Done(std::string name, std::string input, size_t consumed, int version, std::string source,
          std::string destination) {
  Case c = Make(std::move(name), std::move(input), Status::kDone);
  c.consumed = consumed;
  c.version = version;
  c.local = source.empty();
  c.source = std::move(source);
  c.destination = std::move(destination);
  return c;
}

Case Local(std::string name, std::string input, size_t consumed, int version) {
  return Done(std::move(name), std::move(input), consumed, version, "", "");
}

Case WithTlvs(Case c, size_t offset, size_t bytes) {
  c.tlv_offset = offset;
  c.tlv_bytes = bytes;
  return c;
}

Case Invalid(std::string name, std::string input, size_t invalid_by = 0) {
  Case c = Make(std::move(name), std::move(input), Status::kInvalid);
  c.invalid_by = invalid_by;
  return c;
}

Case NeedMore(std::string name, std::string input) {
  return Make(std::move(name), std::move(input), Status::kNeedMore);
}

const std::string kV1Tcp4 = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
const std::string kV1MaxUnknown =
    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    "65535 65535\r\n";
const std::string kTlvs = Tlv(0x01, "h2") + Tlv(0x02, "example.com") + Tlv(0x04, "");

std::vector<Case> Cases() {
  std::vector<Case> cases = {
      // v1, valid.
      Done("v1_tcp4", kV1Tcp4, kV1Tcp4.size(), 1, "192.0.2.1 56324", "198.51.100.2 443"),
      Done("v1_tcp4_then_http", kV1Tcp4 + "GET / HTTP/1.1\r\n\r\n", kV1Tcp4.size(), 1,
           "192.0.2.1 56324", "198.51.100.2 443"),
      Done("v1_tcp6", "PROXY TCP6 2001:db8::1 2001:DB8::2 1 65535\r\n", 44, 1, "2001:db8::1 1",
           "2001:db8::2 65535"),
      Done("v1_tcp6_v4_mapped", "PROXY TCP6 ::ffff:10.1.2.3 ::1 0 80\r\n", 37, 1, "10.1.2.3 0",
           "::1 80"),
      Done("v1_tcp4_ports_0", "PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n", 40, 1, "0.0.0.0 0",
           "255.255.255.255 0"),
      Local("v1_unknown", "PROXY UNKNOWN\r\n", 15, 1),
      Local("v1_unknown_max_107", kV1MaxUnknown, 107, 1),
      Local("v1_unknown_anything", "PROXY UNKNOWN whatever?!\r\nrest", 26, 1),
      // v1, invalid.
      Invalid("v1_port_too_big", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 65536\r\n"),
      Invalid("v1_port_leading_zero", "PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n"),
      Invalid("v1_port_negative", "PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n", 35),
      Invalid("v1_port_empty", "PROXY TCP4 192.0.2.1 198.51.100.2  443\r\n"),
      Invalid("v1_address_leading_zero", "PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n"),
      Invalid("v1_address_octet_256", "PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n"),
      Invalid("v1_address_three_octets", "PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n"),
      Invalid("v1_tcp4_with_ipv6", "PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n"),
      Invalid("v1_tcp6_with_ipv4", "PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n"),
      Invalid("v1_tcp6_zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 19),
      Invalid("v1_double_space", "PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n"),
      Invalid("v1_missing_port", "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n"),
      Invalid("v1_extra_field", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n"),
      Invalid("v1_trailing_space", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n"),
      Invalid("v1_lowercase", "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n", 1),
      Invalid("v1_tcp5", "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n", 10),
      Invalid("v1_unknownx", "PROXY UNKNOWNX\r\n", 14),
      Invalid("v1_empty_protocol", "PROXY \r\n"),
      Invalid("v1_bare_lf", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n"),
      Invalid("v1_cr_without_lf", "PROXY TCP4 192.0.2.1\r198.51.100.2 1 2\r\n", 22),
      Invalid("v1_unknown_cr_without_lf", "PROXY UNKNOWN a\rb\r\n", 17),
      Invalid("v1_no_crlf_in_107", "PROXY UNKNOWN " + std::string(100, 'a') + "\r\n", 107),
      Invalid("v1_line_108", "PROXY UNKNOWN " + std::string(92, 'a') + "\r\n", 107),
      Invalid("v1_tab", "PROXY\tTCP4 192.0.2.1 198.51.100.2 1 2\r\n", 6),
      // v1, waiting.
      NeedMore("empty", ""),
      NeedMore("v1_prefix", "PROX"),
      NeedMore("v1_protocol", "PROXY TCP"),
      NeedMore("v1_partial_addresses", "PROXY TCP6 2001:db8::1 2001:db8"),
      NeedMore("v1_before_lf", "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r"),
      NeedMore("v1_unknown_long", "PROXY UNKNOWN " + std::string(90, 'z')),
      // Not a PROXY header at all: refused on the first byte.
      Invalid("http_request", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1),
      Invalid("tls_client_hello", Bytes({0x16, 0x03, 0x01, 0x02, 0x00}), 1),
      Invalid("nul_byte", std::string(1, '\0'), 1),
      Invalid("v1_signature_mismatch", "PROXZ TCP4", 5),

      // v2, valid.
      Done("v2_tcp4", V2(0x21, 0x11, kV4Addresses), 28, 2, "192.0.2.1 56324", "198.51.100.2 443"),
      Done("v2_tcp4_then_http", V2(0x21, 0x11, kV4Addresses) + "GET / HTTP/1.1\r\n", 28, 2,
           "192.0.2.1 56324", "198.51.100.2 443"),
      Done("v2_tcp6", V2(0x21, 0x21, kV6Addresses), 52, 2, "2001:db8::1 1", "2001:db8::2 65535"),
      Done("v2_tcp6_v4_mapped", V2(0x21, 0x21, kV6MappedAddresses), 52, 2, "10.1.2.3 80",
           "10.9.9.9 8080"),
      WithTlvs(Done("v2_tcp4_tlvs", V2(0x21, 0x11, kV4Addresses + kTlvs), 28 + kTlvs.size(), 2,
                    "192.0.2.1 56324", "198.51.100.2 443"),
               28, kTlvs.size()),
      WithTlvs(Done("v2_at_limit_536",
                    V2(0x21, 0x11, kV4Addresses + Tlv(0xe0, std::string(520 - 12 - 3, 'x'))), 536,
                    2, "192.0.2.1 56324", "198.51.100.2 443"),
               28, 508),
      Local("v2_local", V2(0x20, 0x00, ""), 16, 2),
      Local("v2_local_ignores_block", V2(0x20, 0x11, kV4Addresses + "\x01"), 29, 2),
      Local("v2_local_any_family", V2(0x20, 0x77, "junk"), 20, 2),
      Local("v2_unspec", V2(0x21, 0x00, ""), 16, 2),
      Local("v2_unspec_with_bytes", V2(0x21, 0x00, "anything"), 24, 2),
      WithTlvs(
          Local("v2_unix_stream", V2(0x21, 0x31, std::string(216, '/') + Tlv(5, "id")), 237, 2),
          232, 5),
      Local("v2_unix_dgram", V2(0x21, 0x32, std::string(216, '/')), 232, 2),
      // v2, invalid.
      Invalid("v2_version_1", kV2Sig + Bytes({0x11, 0x11}) + Be16(12) + kV4Addresses, 13),
      Invalid("v2_version_3", kV2Sig + Bytes({0x31, 0x11}) + Be16(12) + kV4Addresses, 13),
      Invalid("v2_command_2", kV2Sig + Bytes({0x22, 0x11}) + Be16(12) + kV4Addresses, 13),
      Invalid("v2_command_f", kV2Sig + Bytes({0x2f, 0x11}) + Be16(12) + kV4Addresses, 13),
      Invalid("v2_udp4", V2(0x21, 0x12, kV4Addresses), 14),
      Invalid("v2_udp6", V2(0x21, 0x22, kV6Addresses), 14),
      Invalid("v2_family_4", V2(0x21, 0x41, kV4Addresses), 14),
      Invalid("v2_transport_0_inet", V2(0x21, 0x10, kV4Addresses), 14),
      Invalid("v2_transport_3", V2(0x21, 0x13, kV4Addresses), 14),
      Invalid("v2_tcp4_short", V2(0x21, 0x11, kV4Addresses.substr(0, 11)), 16),
      Invalid("v2_tcp6_with_v4_length", V2(0x21, 0x21, kV4Addresses), 16),
      Invalid("v2_unix_short", V2(0x21, 0x31, std::string(215, '/')), 16),
      Invalid("v2_over_limit_537",
              V2(0x21, 0x11, kV4Addresses + Tlv(0xe0, std::string(521 - 12 - 3, 'x'))), 16),
      Invalid("v2_length_ffff", kV2Sig + Bytes({0x21, 0x11, 0xff, 0xff}), 16),
      Invalid("v2_tlv_overrun", V2(0x21, 0x11, kV4Addresses + Bytes({1, 0, 5}) + "ab")),
      Invalid("v2_tlv_partial_head", V2(0x21, 0x11, kV4Addresses + Tlv(1, "h2") + Bytes({1, 0}))),
      Invalid("v2_signature_mismatch", std::string("\r\n\r\n\0\r\nQUIX\n", 12), 11),
      Invalid("v2_signature_crlf_then_http", "\r\nGET / HTTP/1.1\r\n", 3),
      // v2, waiting.
      NeedMore("v2_signature_part", kV2Sig.substr(0, 7)),
      NeedMore("v2_signature", kV2Sig),
      NeedMore("v2_fixed_part", V2(0x21, 0x11, kV4Addresses).substr(0, 16)),
      NeedMore("v2_addresses_part", V2(0x21, 0x21, kV6Addresses).substr(0, 40)),
  };
  return cases;
}

class ProxyProtocolTest : public testing::TestWithParam<Case> {};

void ExpectMatches(const Case& c, const ProxyParse& p, std::string_view fed) {
  SCOPED_TRACE(testing::Message() << c.name << ", " << fed.size() << " bytes fed");
  ASSERT_EQ(static_cast<int>(p.status), static_cast<int>(c.status)) << p.reason;
  if (c.status == Status::kInvalid) {
    EXPECT_FALSE(p.reason.empty());
    return;
  }
  if (c.status != Status::kDone) return;
  const ProxyHeader& h = p.header;
  EXPECT_EQ(h.consumed, c.consumed);
  EXPECT_EQ(h.version, c.version);
  EXPECT_EQ(h.local, c.local);
  if (!c.local) {
    EXPECT_EQ(Endpoint(h.source), c.source);
    EXPECT_EQ(Endpoint(h.destination), c.destination);
  }
  EXPECT_EQ(h.tlv_offset, c.tlv_offset);
  EXPECT_EQ(h.tlv_bytes, c.tlv_bytes);
  EXPECT_LE(h.consumed, kProxyHeaderBytesMax);
}

TEST_P(ProxyProtocolTest, Whole) {
  const Case& c = GetParam();
  ExpectMatches(c, ParseProxyHeader(c.input), c.input);
}

// Fed a prefix at a time, as RECVs arrive: a valid header is kNeedMore until
// its last byte and then the same header; an invalid one never looks done,
// stays invalid once refused, and is refused as early as promised.
TEST_P(ProxyProtocolTest, EveryByteBoundary) {
  const Case& c = GetParam();
  const std::string_view input = c.input;
  bool refused = false;
  for (size_t n = 0; n <= input.size(); ++n) {
    SCOPED_TRACE(testing::Message() << n << " of " << input.size() << " bytes");
    const ProxyParse p = ParseProxyHeader(input.substr(0, n));
    switch (c.status) {
      case Status::kDone:
        if (n < c.consumed) {
          ASSERT_EQ(p.status, Status::kNeedMore) << p.reason;
        } else {
          ExpectMatches(c, p, input.substr(0, n));
        }
        break;
      case Status::kInvalid:
        ASSERT_NE(p.status, Status::kDone);
        if (refused || (c.invalid_by != 0 && n >= c.invalid_by)) {
          ASSERT_EQ(p.status, Status::kInvalid);
        }
        refused = p.status == Status::kInvalid;
        break;
      case Status::kNeedMore:
        ASSERT_EQ(p.status, Status::kNeedMore) << p.reason;
        break;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ProxyProtocolTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

// Each early refusal is exactly as early as the table says: one byte less
// is still a possible header.
TEST(ProxyProtocolEarly, RefusedNoEarlierThanNeeded) {
  for (const Case& c : Cases()) {
    if (c.status != Status::kInvalid || c.invalid_by == 0) continue;
    EXPECT_EQ(ParseProxyHeader(std::string_view(c.input).substr(0, c.invalid_by - 1)).status,
              Status::kNeedMore)
        << c.name;
  }
}

TEST(ProxyProtocolLimits, V1MaxExampleIs107Bytes) {
  // The specification's worst case line is exactly the limit.
  EXPECT_EQ(kV1MaxUnknown.size(), kProxyV1BytesMax);
}

TEST(ProxyProtocolLimits, SourceToSockaddr) {
  const ProxyParse p = ParseProxyHeader(kV1Tcp4);
  ASSERT_EQ(p.status, Status::kDone);
  sockaddr_storage ss;
  const socklen_t len = p.header.source.address.ToSockaddr(p.header.source.port, &ss);
  uint16_t port = 0;
  const auto back = IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&ss), len, &port);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, p.header.source.address);
  EXPECT_EQ(port, 56324);
}

}  // namespace
}  // namespace sluice
