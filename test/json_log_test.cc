// AppendJsonString (RFC 8259 escaping, ill-formed UTF-8 → U+FFFD) and
// FormatRfc3339Millis, as tables; the escaping is also checked against
// nlohmann/json's parser, and the time against absl::FormatTime.

#include "sluice/http/json_log.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sluice {
namespace {

struct EscapeCase {
  std::string name;
  std::string input;
  std::string want;  // Without the surrounding quotes.
};

TEST(AppendJsonStringTest, Table) {
  const std::vector<EscapeCase> cases = {
      {"empty", "", ""},
      {"plain", "GET /index.html", "GET /index.html"},
      {"quote_backslash", "a\"b\\c", "a\\\"b\\\\c"},
      {"short_escapes", "\b\f\n\r\t", "\\b\\f\\n\\r\\t"},
      {"nul", std::string("a\0b", 3), "a\\u0000b"},
      {"other_c0", "\x01\x1f\x1b[31m", "\\u0001\\u001f\\u001b[31m"},
      {"del", "\x7f", "\\u007f"},
      {"slash_kept", "/a/b", "/a/b"},
      {"utf8_two", "caf\xc3\xa9", "caf\xc3\xa9"},
      {"utf8_three", "\xe2\x82\xac", "\xe2\x82\xac"},
      {"utf8_four", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
      {"utf8_max", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf"},
      {"u2028_kept", "\xe2\x80\xa8", "\xe2\x80\xa8"},
      {"lone_continuation", "a\x80z", "a\\ufffdz"},
      {"two_continuations", "\x80\xbf", "\\ufffd\\ufffd"},
      {"c0_lead", "\xc0\xaf", "\\ufffd\\ufffd"},
      {"c1_lead", "\xc1\xbf", "\\ufffd\\ufffd"},
      {"f5_lead", "\xf5\x80\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
      {"ff", "\xff", "\\ufffd"},
      {"overlong_three", "\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"},
      {"surrogate", "\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},
      {"above_max", "\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},
      {"truncated_three_at_end", "\xe2\x82", "\\ufffd"},
      {"truncated_four_then_ascii", "\xf0\x9f\x98z", "\\ufffdz"},
      {"truncated_then_quote", "\xe2\"", "\\ufffd\\\""},
      {"truncated_then_valid", "\xe2\x82\xc3\xa9", "\\ufffd\xc3\xa9"},
      {"lead_then_lead", "\xc3\xc3\xa9", "\\ufffd\xc3\xa9"},
  };
  for (const EscapeCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string out = "prefix:";
    AppendJsonString(&out, c.input);
    EXPECT_EQ(out, "prefix:\"" + c.want + "\"");
  }
}

// Whatever the bytes, the result is one JSON string that a strict parser
// accepts; for well-formed input it decodes back to the input.
TEST(AppendJsonStringTest, RandomBytesAreValidJson) {
  std::mt19937 rng(13);
  for (int round = 0; round < 2000; ++round) {
    std::string input(rng() % 40, '\0');
    for (char& ch : input) ch = static_cast<char>(rng() % 256);
    std::string out;
    AppendJsonString(&out, input);
    SCOPED_TRACE(out);
    ASSERT_TRUE(nlohmann::json::accept(out));
    const nlohmann::json parsed = nlohmann::json::parse(out);
    ASSERT_TRUE(parsed.is_string());
    for (char ch : out) {
      ASSERT_FALSE(static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f);
    }
    // No U+FFFD was needed exactly when the input was valid UTF-8, and then
    // the input comes back unchanged.
    if (out.find("\\ufffd") == std::string::npos) {
      EXPECT_EQ(parsed.get<std::string>(), input);
    }
  }
}

TEST(AppendJsonStringTest, WarmBufferIsNotReallocated) {
  std::string out;
  out.reserve(1024);
  const char* data = out.data();
  for (int i = 0; i < 10; ++i) {
    out.clear();
    AppendJsonString(&out, "GET /\x01\"\xff caf\xc3\xa9");
  }
  EXPECT_EQ(out.data(), data);
}

struct TimeCase {
  int64_t unix_ms;
  std::string want;
};

TEST(FormatRfc3339MillisTest, Table) {
  const std::vector<TimeCase> cases = {
      {0, "1970-01-01T00:00:00.000Z"},
      {1, "1970-01-01T00:00:00.001Z"},
      {-1, "1969-12-31T23:59:59.999Z"},
      {951782400000, "2000-02-29T00:00:00.000Z"},
      {1798928521123, "2027-01-02T22:22:01.123Z"},
      {4107542399999, "2100-02-28T23:59:59.999Z"},
      {-62167219200000, "0000-01-01T00:00:00.000Z"},
      {-62167219200001, "0000-01-01T00:00:00.000Z"},
      {253402300799999, "9999-12-31T23:59:59.999Z"},
      {253402300800000, "9999-12-31T23:59:59.999Z"},
      {INT64_MIN, "0000-01-01T00:00:00.000Z"},
      {INT64_MAX, "9999-12-31T23:59:59.999Z"},
  };
  for (const TimeCase& c : cases) {
    SCOPED_TRACE(c.unix_ms);
    std::string out = "t=";
    AppendRfc3339Millis(&out, c.unix_ms);
    EXPECT_EQ(out, "t=" + c.want);
  }
}

TEST(FormatRfc3339MillisTest, AgreesWithAbsl) {
  std::mt19937_64 rng(13);
  for (int i = 0; i < 20000; ++i) {
    const int64_t ms = static_cast<int64_t>(rng() % 315569520000000) - 62167219200000;
    char text[kRfc3339MillisBytes];
    FormatRfc3339Millis(ms, text);
    const std::string want =
        absl::FormatTime("%E4Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
    ASSERT_EQ(std::string(text, sizeof(text)), want) << ms;
  }
}

}  // namespace
}  // namespace sluice
