// TrustedProxies, the forwarded-source order, and ResolveClientAddress as
// tables: who is believed, which hop is taken, and the spoofing attempts a
// client can make through (or around) a trusted proxy.

#include "sluice/http/client_address.h"

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using Source = ClientAddress::Source;

constexpr std::string_view kTrusted = "10.0.0.0/8, 192.168.0.0/16, ::1";
constexpr std::string_view kDefaultOrder = "forwarded,x-forwarded-for,x-real-ip";

struct Case {
  std::string name;
  std::string peer;
  std::vector<std::string_view> forwarded;
  std::vector<std::string_view> xff;
  std::vector<std::string_view> x_real_ip;
  std::string want;  // The client address's text.
  Source want_source;
  std::string order = std::string(kDefaultOrder);
  std::string trusted = std::string(kTrusted);
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

// "a, b, c" repeated: `count` trusted hops.
std::string TrustedHops(size_t count) {
  std::string s;
  for (size_t i = 0; i < count; ++i) s += (i ? ", 10.0.0." : "10.0.0.") + std::to_string(i % 250);
  return s;
}

const std::string kHops64 = TrustedHops(64);
const std::string kHops65 = TrustedHops(65);
const std::string kClientThen100 = "198.51.100.7, " + TrustedHops(100);
const std::string kHops100ThenClient = TrustedHops(100) + ", 198.51.100.7";

std::vector<Case> Cases() {
  const std::string client = "198.51.100.7";
  const std::string proxy = "10.0.0.1";
  return {
      // Who is believed.
      {"untrusted_peer_xff_ignored",
       "203.0.113.5",
       {},
       {"1.2.3.4"},
       {},
       "203.0.113.5",
       Source::kPeer},
      {"untrusted_peer_forwarded_ignored",
       "203.0.113.5",
       {"for=1.2.3.4"},
       {},
       {},
       "203.0.113.5",
       Source::kPeer},
      {"untrusted_peer_real_ip_ignored",
       "203.0.113.5",
       {},
       {},
       {"1.2.3.4"},
       "203.0.113.5",
       Source::kPeer},
      {"no_trusted_proxies",
       proxy,
       {},
       {client},
       {},
       proxy,
       Source::kPeer,
       std::string(kDefaultOrder),
       ""},
      {"trusted_peer_no_fields", proxy, {}, {}, {}, proxy, Source::kPeer},
      {"trusted_v6_peer", "::1", {}, {client}, {}, client, Source::kXForwardedFor},
      {"trusted_v4_mapped_peer",
       "::ffff:10.0.0.1",
       {},
       {client},
       {},
       client,
       Source::kXForwardedFor},

      // X-Forwarded-For: right to left past trusted hops.
      {"xff_one", proxy, {}, {"198.51.100.7"}, {}, client, Source::kXForwardedFor},
      {"xff_fake_hop_prepended",
       proxy,
       {},
       {"6.6.6.6, 198.51.100.7"},
       {},
       client,
       Source::kXForwardedFor},
      {"xff_fake_hops_prepended_garbage",
       proxy,
       {},
       {"garbage, 10.0.0.9, 198.51.100.7"},
       {},
       client,
       Source::kXForwardedFor},
      {"xff_trusted_hops_skipped",
       proxy,
       {},
       {"6.6.6.6, 198.51.100.7, 192.168.1.1, 10.0.0.2"},
       {},
       client,
       Source::kXForwardedFor},
      {"xff_all_trusted_leftmost",
       proxy,
       {},
       {"10.0.0.5, 192.168.1.1, 10.0.0.2"},
       {},
       "10.0.0.5",
       Source::kXForwardedFor},
      {"xff_lines_concatenated",
       proxy,
       {},
       {"6.6.6.6", "198.51.100.7, 10.0.0.2"},
       {},
       client,
       Source::kXForwardedFor},
      {"xff_lines_order_counts",
       proxy,
       {},
       {"198.51.100.7, 10.0.0.2", "6.6.6.6"},
       {},
       "6.6.6.6",
       Source::kXForwardedFor},
      {"xff_v4_port", proxy, {}, {"198.51.100.7:4711"}, {}, client, Source::kXForwardedFor},
      {"xff_v6_bare", proxy, {}, {"2001:db8::7"}, {}, "2001:db8::7", Source::kXForwardedFor},
      {"xff_v6_brackets_port",
       proxy,
       {},
       {"[2001:db8::7]:443"},
       {},
       "2001:db8::7",
       Source::kXForwardedFor},
      {"xff_v4_mapped",
       proxy,
       {},
       {"::ffff:198.51.100.7, ::ffff:10.0.0.3"},
       {},
       client,
       Source::kXForwardedFor},
      {"xff_empty_elements",
       proxy,
       {},
       {" , 198.51.100.7 ,, 10.0.0.2,"},
       {},
       client,
       Source::kXForwardedFor},
      {"xff_tabs_and_spaces", proxy, {}, {"\t198.51.100.7\t"}, {}, client, Source::kXForwardedFor},
      {"xff_malformed_rightmost", proxy, {}, {"198.51.100.7, garbage"}, {}, proxy, Source::kPeer},
      {"xff_unknown_rightmost", proxy, {}, {"198.51.100.7, unknown"}, {}, proxy, Source::kPeer},
      {"xff_malformed_after_trusted",
       proxy,
       {},
       {"198.51.100.7, 1.2.3, 10.0.0.2"},
       {},
       proxy,
       Source::kPeer},
      {"xff_bad_port", proxy, {}, {"198.51.100.7:65536"}, {}, proxy, Source::kPeer},
      {"xff_leading_zero", proxy, {}, {"198.051.100.7"}, {}, proxy, Source::kPeer},
      {"xff_only_commas", proxy, {}, {",,,"}, {}, proxy, Source::kPeer},
      {"xff_64_trusted_hops", proxy, {}, {kHops64}, {}, "10.0.0.0", Source::kXForwardedFor},
      {"xff_65_trusted_hops_gives_up", proxy, {}, {kHops65}, {}, proxy, Source::kPeer},
      {"xff_client_far_left_of_100", proxy, {}, {kClientThen100}, {}, proxy, Source::kPeer},
      {"xff_client_right_of_100",
       proxy,
       {},
       {kHops100ThenClient},
       {},
       client,
       Source::kXForwardedFor},

      // Forwarded (RFC 7239).
      {"fwd_one", proxy, {"for=198.51.100.7"}, {}, {}, client, Source::kForwarded},
      {"fwd_case_and_params",
       proxy,
       {"For=198.51.100.7;proto=https;by=10.0.0.1"},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_quoted_v4_port",
       proxy,
       {"for=\"198.51.100.7:8080\""},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_quoted_v6_port",
       proxy,
       {"for=\"[2001:db8::7]:443\""},
       {},
       {},
       "2001:db8::7",
       Source::kForwarded},
      {"fwd_quoted_v6",
       proxy,
       {"for=\"[2001:db8::7]\""},
       {},
       {},
       "2001:db8::7",
       Source::kForwarded},
      {"fwd_obfuscated_port",
       proxy,
       {"for=\"198.51.100.7:_p1\""},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_fake_hop_prepended",
       proxy,
       {"for=6.6.6.6, for=198.51.100.7"},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_trusted_skipped",
       proxy,
       {"for=198.51.100.7;proto=http, for=10.0.0.2"},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_lines_concatenated",
       proxy,
       {"for=6.6.6.6", "for=198.51.100.7, for=10.0.0.2"},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_quoted_comma_not_split",
       proxy,
       {"for=\"6.6.6.6, 198.51.100.7\""},
       {},
       {},
       proxy,
       Source::kPeer},
      {"fwd_quoted_semicolon_in_other",
       proxy,
       {"by=\"a;b,c\";for=198.51.100.7"},
       {},
       {},
       client,
       Source::kForwarded},
      {"fwd_unknown", proxy, {"for=unknown"}, {}, {}, proxy, Source::kPeer},
      {"fwd_unknown_hides_left",
       proxy,
       {"for=198.51.100.7, for=unknown"},
       {},
       {},
       proxy,
       Source::kPeer},
      {"fwd_obfuscated_hides_left",
       proxy,
       {"for=198.51.100.7, for=_hidden, for=10.0.0.2"},
       {},
       {},
       proxy,
       Source::kPeer},
      {"fwd_element_without_for",
       proxy,
       {"for=198.51.100.7, proto=https"},
       {},
       {},
       proxy,
       Source::kPeer},
      {"fwd_duplicate_for", proxy, {"for=6.6.6.6;for=198.51.100.7"}, {}, {}, proxy, Source::kPeer},
      {"fwd_unquoted_v6", proxy, {"for=[2001:db8::7]"}, {}, {}, proxy, Source::kPeer},
      {"fwd_bare_v6", proxy, {"for=\"2001:db8::7\""}, {}, {}, proxy, Source::kPeer},
      {"fwd_unterminated_quote", proxy, {"for=\"198.51.100.7"}, {}, {}, proxy, Source::kPeer},
      {"fwd_escape_in_node", proxy, {"for=\"198.51.100.\\7\""}, {}, {}, proxy, Source::kPeer},
      {"fwd_garbage", proxy, {"198.51.100.7"}, {}, {}, proxy, Source::kPeer},
      {"fwd_syntax_error_anywhere",
       proxy,
       {"for=6.6.6.6 junk, for=198.51.100.7"},
       {},
       {},
       proxy,
       Source::kPeer},
      {"fwd_ows_around_separators",
       proxy,
       {"for=6.6.6.6 , for=198.51.100.7 ; proto=https"},
       {},
       {},
       client,
       Source::kForwarded},

      // X-Real-IP.
      {"real_ip", proxy, {}, {}, {"198.51.100.7"}, client, Source::kXRealIp},
      {"real_ip_v6_brackets", proxy, {}, {}, {"[2001:db8::7]"}, "2001:db8::7", Source::kXRealIp},
      {"real_ip_two_lines", proxy, {}, {}, {"198.51.100.7", "6.6.6.6"}, proxy, Source::kPeer},
      {"real_ip_list", proxy, {}, {}, {"6.6.6.6, 198.51.100.7"}, proxy, Source::kPeer},
      {"real_ip_garbage", proxy, {}, {}, {"example.com"}, proxy, Source::kPeer},

      // Order among sources, and falling through.
      {"order_forwarded_first",
       proxy,
       {"for=198.51.100.7"},
       {"203.0.113.9"},
       {"203.0.113.8"},
       client,
       Source::kForwarded},
      {"order_xff_first",
       proxy,
       {"for=203.0.113.9"},
       {"198.51.100.7"},
       {},
       client,
       Source::kXForwardedFor,
       "x-forwarded-for,forwarded"},
      {"order_malformed_falls_through",
       proxy,
       {"for=unknown"},
       {"garbage"},
       {"198.51.100.7"},
       client,
       Source::kXRealIp},
      {"order_unlisted_source_ignored",
       proxy,
       {"for=203.0.113.9"},
       {"203.0.113.8"},
       {},
       proxy,
       Source::kPeer,
       "x-real-ip"},
      {"order_only_forwarded_spoofed_xff",
       proxy,
       {},
       {"6.6.6.6"},
       {},
       proxy,
       Source::kPeer,
       "forwarded"},
  };
}

class ResolveClientAddressTest : public testing::TestWithParam<Case> {};

TEST_P(ResolveClientAddressTest, Table) {
  const Case& c = GetParam();
  const absl::StatusOr<TrustedProxies> trusted = TrustedProxies::Parse(c.trusted);
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  const absl::StatusOr<ForwardedSourceOrder> order = ParseForwardedSourceOrder(c.order);
  ASSERT_TRUE(order.ok()) << order.status();
  const std::optional<IpAddress> peer = IpAddress::Parse(c.peer);
  ASSERT_TRUE(peer.has_value());
  ForwardingFields fields;
  fields.forwarded = c.forwarded;
  fields.x_forwarded_for = c.xff;
  fields.x_real_ip = c.x_real_ip;
  const ClientAddress got = ResolveClientAddress(*peer, fields, *trusted, order->span());
  EXPECT_EQ(got.address.ToString(), c.want);
  EXPECT_EQ(static_cast<int>(got.source), static_cast<int>(c.want_source));
}

INSTANTIATE_TEST_SUITE_P(Cases, ResolveClientAddressTest, testing::ValuesIn(Cases()),
                         [](const testing::TestParamInfo<Case>& p) { return p.param.name; });

struct FlagCase {
  std::string value;
  bool ok;
  size_t size_or_count = 0;     // Blocks, or sources.
  std::string error_part = "";  // Part of the message when !ok.
};

TEST(TrustedProxiesTest, ParseTable) {
  std::string too_many;
  for (int i = 0; i <= 256; ++i)
    too_many += (i ? ",10.0." : "10.0.") + std::to_string(i / 256) + "." + std::to_string(i % 256);
  const std::vector<FlagCase> cases = {
      {"", true, 0},
      {"  ", true, 0},
      {"10.0.0.0/8", true, 1},
      {" 10.0.0.0/8 ,\t::1 ", true, 2},
      {"10.0.0.0/8,,::1", false, 0, "item 2 is empty"},
      {"10.0.0.0/8,", false, 0, "item 2 is empty"},
      {"10.0.0.1/8", false, 0, "did you mean 10.0.0.0/8?"},
      {"10.0.0.0/8, localhost", false, 0, "item 2: \"localhost\" is not an IP address"},
      {too_many, false, 0, "more than 256"},
  };
  for (const FlagCase& c : cases) {
    SCOPED_TRACE(c.value.substr(0, 40));
    const absl::StatusOr<TrustedProxies> t = TrustedProxies::Parse(c.value);
    ASSERT_EQ(t.ok(), c.ok) << t.status();
    if (c.ok) {
      EXPECT_EQ(t->size(), c.size_or_count);
    } else {
      EXPECT_NE(t.status().message().find(c.error_part), std::string::npos) << t.status();
    }
  }
}

TEST(ForwardedSourceOrderTest, ParseTable) {
  const std::vector<FlagCase> cases = {
      {"forwarded", true, 1},
      {"X-Forwarded-For,forwarded,x-real-ip", true, 3},
      {"x-real-ip, x-forwarded-for", true, 2},
      {"", false, 0, "\"\" is not one of"},
      {"forwarded,", false, 0, "\"\" is not one of"},
      {"x-forwarded-for,X-FORWARDED-FOR", false, 0, "listed twice"},
      {"true-client-ip", false, 0, "\"true-client-ip\" is not one of"},
  };
  for (const FlagCase& c : cases) {
    SCOPED_TRACE(c.value);
    const absl::StatusOr<ForwardedSourceOrder> o = ParseForwardedSourceOrder(c.value);
    ASSERT_EQ(o.ok(), c.ok) << o.status();
    if (c.ok) {
      EXPECT_EQ(o->count, c.size_or_count);
    } else {
      EXPECT_NE(o.status().message().find(c.error_part), std::string::npos) << o.status();
    }
  }
  const auto o = ParseForwardedSourceOrder("x-real-ip,forwarded");
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(o->span().size(), 2u);
  EXPECT_EQ(o->span()[0], ForwardedSource::kXRealIp);
  EXPECT_EQ(o->span()[1], ForwardedSource::kForwarded);
}

}  // namespace
}  // namespace sluice
