#include "sluice/http/http_date.h"

#include <cstring>

namespace sluice {
namespace {

constexpr char kDays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void Put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// Parses exactly `n` digits.
bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

int Month(std::string_view s) {
  for (int i = 0; i < 12; ++i) {
    if (s == kMonths[i]) return i;
  }
  return -1;
}

// "HH:MM:SS" at pos.
bool Clock(std::string_view s, size_t pos, struct tm* tm) {
  return pos + 8 <= s.size() && Digits(s, pos, 2, &tm->tm_hour) && s[pos + 2] == ':' &&
         Digits(s, pos + 3, 2, &tm->tm_min) && s[pos + 5] == ':' &&
         Digits(s, pos + 6, 2, &tm->tm_sec);
}

bool IsDayName(std::string_view s) {
  for (const char* d : kDays) {
    if (s == d) return true;
  }
  return false;
}

bool IsLongDayName(std::string_view s) {
  constexpr std::string_view kLong[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
  for (std::string_view d : kLong) {
    if (s == d) return true;
  }
  return false;
}

std::optional<time_t> ToTime(struct tm* tm) {
  if (tm->tm_mday < 1 || tm->tm_mday > 31 || tm->tm_hour > 23 || tm->tm_min > 59 ||
      tm->tm_sec > 60 || tm->tm_mon < 0) {
    return std::nullopt;
  }
  const int mday = tm->tm_mday;
  const int mon = tm->tm_mon;
  // timegm cannot fail for fields in range with a 64-bit time_t; -1 is the
  // legitimate 1969-12-31T23:59:59Z.
  const time_t t = timegm(tm);
  // timegm rolls "31 Nov" over into December: refuse days the month lacks.
  if (tm->tm_mday != mday || tm->tm_mon != mon) return std::nullopt;
  return t;
}

}  // namespace

void FormatHttpDate(time_t t, char* out) {
  struct tm tm;
  gmtime_r(&t, &tm);
  std::memcpy(out, kDays[tm.tm_wday], 3);
  out[3] = ',';
  out[4] = ' ';
  Put2(out + 5, tm.tm_mday);
  out[7] = ' ';
  std::memcpy(out + 8, kMonths[tm.tm_mon], 3);
  out[11] = ' ';
  const int year = tm.tm_year + 1900;
  Put2(out + 12, (year / 100) % 100);
  Put2(out + 14, year % 100);
  out[16] = ' ';
  Put2(out + 17, tm.tm_hour);
  out[19] = ':';
  Put2(out + 20, tm.tm_min);
  out[22] = ':';
  Put2(out + 23, tm.tm_sec);
  std::memcpy(out + 25, " GMT", 4);
}

std::optional<time_t> ParseHttpDate(std::string_view s) {
  struct tm tm = {};
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() == 29 && IsDayName(s.substr(0, 3)) && s[3] == ',' && s[4] == ' ' && s[7] == ' ' &&
      s[11] == ' ' && s[16] == ' ' && s.substr(25) == " GMT") {
    if (!Digits(s, 5, 2, &tm.tm_mday) || (tm.tm_mon = Month(s.substr(8, 3))) < 0 ||
        !Digits(s, 12, 4, &tm.tm_year) || !Clock(s, 17, &tm)) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    return ToTime(&tm);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() == 24 && IsDayName(s.substr(0, 3)) && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' &&
      s[19] == ' ') {
    if ((tm.tm_mon = Month(s.substr(4, 3))) < 0) return std::nullopt;
    const std::string_view day = s.substr(8, 2);
    if (day[0] == ' ') {
      if (!Digits(s, 9, 1, &tm.tm_mday)) return std::nullopt;
    } else if (!Digits(s, 8, 2, &tm.tm_mday)) {
      return std::nullopt;
    }
    if (!Clock(s, 11, &tm) || !Digits(s, 20, 4, &tm.tm_year)) return std::nullopt;
    tm.tm_year -= 1900;
    return ToTime(&tm);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  const size_t comma = s.find(", ");
  if (comma != std::string_view::npos && IsLongDayName(s.substr(0, comma)) &&
      s.size() == comma + 24 && s.substr(s.size() - 4) == " GMT") {
    const size_t p = comma + 2;
    if (!Digits(s, p, 2, &tm.tm_mday) || s[p + 2] != '-' ||
        (tm.tm_mon = Month(s.substr(p + 3, 3))) < 0 || s[p + 6] != '-' ||
        !Digits(s, p + 7, 2, &tm.tm_year) || s[p + 9] != ' ' || !Clock(s, p + 10, &tm)) {
      return std::nullopt;
    }
    // Two-digit years: RFC 9110 §5.6.7 reads a year more than 50 years in
    // the future as the most recent past year with those digits.
    const time_t now = time(nullptr);
    struct tm now_tm;
    gmtime_r(&now, &now_tm);
    int year = 2000 + tm.tm_year;
    if (year > now_tm.tm_year + 1900 + 50) year -= 100;
    tm.tm_year = year - 1900;
    return ToTime(&tm);
  }
  return std::nullopt;
}

}  // namespace sluice
