// Unit tests for HTTP date formatting and parsing (RFC 9110 §5.6.7).
#include "sluice/http/http_date.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {
namespace {

constexpr time_t kRfcExample = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

std::string Format(time_t t) {
  char buf[kHttpDateLength + 1];
  buf[kHttpDateLength] = '#';  // Must stay untouched: exactly 29 bytes are written.
  FormatHttpDate(t, buf);
  EXPECT_EQ(buf[kHttpDateLength], '#');
  return std::string(buf, kHttpDateLength);
}

template <size_t N>
void ExpectAllRejected(const std::string_view (&cases)[N]) {
  for (std::string_view text : cases) {
    SCOPED_TRACE(testing::PrintToString(std::string(text)));
    const std::optional<time_t> t = ParseHttpDate(text);
    EXPECT_FALSE(t.has_value()) << "parsed as " << *t << " = " << Format(*t);
  }
}

TEST(FormatHttpDateTest, Table) {
  struct Case {
    time_t t;
    std::string_view text;
  };
  const Case kCases[] = {
      {kRfcExample, "Sun, 06 Nov 1994 08:49:37 GMT"},
      {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
      {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},   // Leap day.
      {946684799, "Fri, 31 Dec 1999 23:59:59 GMT"},   // Last second of 1999.
      {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},  // INT32_MAX.
      {2147483648, "Tue, 19 Jan 2038 03:14:08 GMT"},  // One past it.
      {4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"},
      {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.t);
    EXPECT_EQ(Format(c.t), c.text);
  }
}

TEST(ParseHttpDateTest, ThreeFormsOfTheRfcExample) {
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), kRfcExample);   // IMF-fixdate
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), kRfcExample);  // RFC 850
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), kRfcExample);        // asctime
}

TEST(ParseHttpDateTest, ValidVariants) {
  struct Case {
    std::string_view text;
    time_t t;
  };
  const Case kCases[] = {
      {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
      {"Tue, 19 Jan 2038 03:14:08 GMT", 2147483648},
      {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
      {"Wednesday, 09-Nov-94 08:49:37 GMT", 784111777 + 3 * 86400},
      // Two-digit "70" would read as 2070 (RFC 9110 §5.6.7 window); 1980 is unambiguous.
      {"Tuesday, 01-Jan-80 00:00:00 GMT", 315532800},
      {"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},
      {"Sun Nov 06 08:49:37 1994", kRfcExample},  // Two-digit day in asctime.
      {"Wed Nov 16 08:49:37 1994", kRfcExample + 10 * 86400},
      {"Thu Jan  1 00:00:00 1970", 0},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(ParseHttpDate(c.text), std::optional<time_t>(c.t));
  }
}

TEST(ParseHttpDateTest, Rejects) {
  const std::string_view kCases[] = {
      "",
      "garbage",
      "Sun, 06 Nov 1994 08:49:37",        // No zone.
      "Sun, 06 Nov 1994 08:49:37 gmt",    // Zone is case-sensitive.
      "Sun, 06 Nov 1994 08:49:37 UTC",    // Only GMT.
      "Sun, 06 Nov 1994 08:49:37 GMT ",   // Trailing space.
      " Sun, 06 Nov 1994 08:49:37 GMT",   // Leading space.
      "Sun,  06 Nov 1994 08:49:37 GMT",   // Double space.
      "Sun, 06  Nov 1994 08:49:37 GMT",   // Double space.
      "Sun, 06 Nov 1994  08:49:37 GMT",   // Double space.
      "Sun, 6 Nov 1994 08:49:37 GMT",     // One-digit day.
      "Sun, 06 Foo 1994 08:49:37 GMT",    // Bad month.
      "Sun, 06 nov 1994 08:49:37 GMT",    // Month is case-sensitive.
      "Sun, 06 NOV 1994 08:49:37 GMT",    // Month is case-sensitive.
      "Sun, 32 Nov 1994 08:49:37 GMT",    // Day 32.
      "Sun, 00 Nov 1994 08:49:37 GMT",    // Day 0.
      "Sun, 06 Nov 1994 24:00:00 GMT",    // Hour 24.
      "Sun, 06 Nov 1994 08:60:00 GMT",    // Minute 60.
      "Sun, 06 Nov 1994 08:49:61 GMT",    // Second 61.
      "Sun, 06 Nov 1994 08-49-37 GMT",    // Wrong separators.
      "Sun, 06 Nov 94 08:49:37 GMT",      // Two-digit year in IMF-fixdate.
      "Sun, 06 Nov 1994 8:49:37 GMT",     // One-digit hour.
      "Sun, 06 Nov 19a4 08:49:37 GMT",    // Letter in year.
      "Sun, 06 Nov 1994 08:49:37 GMT\r",  // Trailing CR.
      "Sun, 06-Nov-1994 08:49:37 GMT",    // Mixed forms.
      "Sunday, 06-Nov-94 08:49:37 gmt",   // RFC 850, lower-case zone.
      "Sunday, 06-Foo-94 08:49:37 GMT",   // RFC 850, bad month.
      "Sunday, 06 Nov 94 08:49:37 GMT",   // RFC 850 without dashes.
      "Sunday, 32-Nov-94 08:49:37 GMT",   // RFC 850, day 32.
      "Sunday, 06-Nov-94 24:49:37 GMT",   // RFC 850, hour 24.
      "Sunday,  06-Nov-94 08:49:37 GMT",  // RFC 850, double space.
      "Sun Nov  6 08:49:37 1994 ",        // asctime, trailing space.
      "Sun Nov 6 08:49:37 1994",          // asctime, single space before day.
      "Sun Nov  6  08:49:37 1994",        // asctime, double space.
      "Sun Foo  6 08:49:37 1994",         // asctime, bad month.
      "Sun Nov 32 08:49:37 1994",         // asctime, day 32.
      "Sun Nov  6 24:49:37 1994",         // asctime, hour 24.
      "Sun Nov  6 08:49:37 94",           // asctime, two-digit year.
      "Sun Nov  0 08:49:37 1994",         // asctime, day 0.
      "Sun Nov  a 08:49:37 1994",         // asctime, letter for day.
  };
  ExpectAllRejected(kCases);
}

// Fields in range on their own, but no such day exists.
TEST(ParseHttpDateTest, RejectsDaysMissingFromTheMonth) {
  const std::string_view kCases[] = {
      "Wed, 31 Nov 1994 08:49:37 GMT",     // November has 30 days.
      "Tue, 29 Feb 1994 08:49:37 GMT",     // 1994 is not a leap year.
      "Wed, 30 Feb 2000 08:49:37 GMT",     // Not even in a leap year.
      "Sun, 31 Apr 2022 00:00:00 GMT",     // April has 30 days.
      "Wed Nov 31 08:49:37 1994",          // asctime.
      "Thursday, 31-Nov-94 08:49:37 GMT",  // RFC 850.
  };
  ExpectAllRejected(kCases);
}

// day-name is part of all three grammars (RFC 9110 §5.6.7).
TEST(ParseHttpDateTest, RejectsInvalidDayNames) {
  const std::string_view kCases[] = {
      "Xyz, 06 Nov 1994 08:49:37 GMT",
      "sun, 06 Nov 1994 08:49:37 GMT",
      "Xyzday, 06-Nov-94 08:49:37 GMT",
      "Xyz Nov  6 08:49:37 1994",
  };
  ExpectAllRejected(kCases);
}

// RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years
// in the future is the most recent past year with those digits.
TEST(ParseHttpDateTest, Rfc850TwoDigitYearWindow) {
  const time_t now = time(nullptr);
  struct tm now_tm;
  gmtime_r(&now, &now_tm);
  const int this_year = now_tm.tm_year + 1900;
  for (int yy = 0; yy < 100; ++yy) {
    int year = this_year / 100 * 100 + yy;
    if (year > this_year + 50) year -= 100;
    if (year <= this_year - 50) year += 100;
    // Avoid the edge of the window, where "now" inside the year matters.
    if (year == this_year + 50 || year == this_year - 50) continue;
    struct tm want = {};
    want.tm_year = year - 1900;
    want.tm_mon = 0;
    want.tm_mday = 2;
    want.tm_hour = 3;
    const time_t want_t = timegm(&want);  // Also sets tm_wday.
    static constexpr const char* kDayNames[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                "Thursday", "Friday", "Saturday"};
    char text[64];
    snprintf(text, sizeof(text), "%s, 02-Jan-%02d 03:00:00 GMT", kDayNames[want.tm_wday], yy);
    SCOPED_TRACE(testing::Message() << text << " should be " << year);
    const std::optional<time_t> got = ParseHttpDate(text);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, want_t) << "got " << Format(*got);
  }
}

// Format → Parse is the identity over a sweep of times.
TEST(HttpDateRoundTripTest, Sweep) {
  // Steps that are not a divisor of a day, so all clock fields vary.
  for (time_t t = 0; t < 4200000000; t += 7919 * 101) {
    const std::string text = Format(t);
    ASSERT_EQ(ParseHttpDate(text), std::optional<time_t>(t)) << text;
  }
  for (time_t t = kRfcExample - 100000; t < kRfcExample + 100000; t += 37) {
    const std::string text = Format(t);
    ASSERT_EQ(ParseHttpDate(text), std::optional<time_t>(t)) << text;
  }
}

TEST(DateCacheTest, TextIsImfFixdateAndFollowsRefresh) {
  DateCache cache;
  EXPECT_EQ(cache.text().size(), kHttpDateLength);
  EXPECT_EQ(cache.text().size(), 29u);
  EXPECT_TRUE(cache.text().ends_with(" GMT"));
  EXPECT_TRUE(ParseHttpDate(cache.text()).has_value());

  cache.Refresh(kRfcExample);
  EXPECT_EQ(cache.now(), kRfcExample);
  EXPECT_EQ(cache.text(), "Sun, 06 Nov 1994 08:49:37 GMT");
  const std::string before(cache.text());

  cache.Refresh(kRfcExample);  // Same second: unchanged.
  EXPECT_EQ(cache.text(), before);

  cache.Refresh(kRfcExample + 1);
  EXPECT_EQ(cache.now(), kRfcExample + 1);
  EXPECT_NE(cache.text(), before);
  EXPECT_EQ(cache.text(), "Sun, 06 Nov 1994 08:49:38 GMT");
  EXPECT_EQ(cache.text().size(), 29u);
}

TEST(DateCacheTest, StartsAtCurrentTime) {
  const time_t before = time(nullptr);
  DateCache cache;
  const time_t after = time(nullptr);
  EXPECT_GE(cache.now(), before);
  EXPECT_LE(cache.now(), after);
  EXPECT_EQ(ParseHttpDate(cache.text()), std::optional<time_t>(cache.now()));
}

}  // namespace
}  // namespace sluice
