#include "sluice/http/json_log.h"

#include <algorithm>

namespace sluice {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr std::string_view kReplacement = "\\ufffd";

bool IsContinuation(uint8_t b) { return b >= 0x80 && b <= 0xbf; }

// Length of the well-formed UTF-8 sequence at the start of `s` (Unicode
// Table 3-7), or, as a negative number, the length of its maximal
// ill-formed subpart (at least 1) to replace with one U+FFFD.
int Utf8Sequence(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  int length = 0;
  uint8_t second_low = 0x80;
  uint8_t second_high = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    length = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    length = 3;
    if (b0 == 0xe0) second_low = 0xa0;   // No overlong forms.
    if (b0 == 0xed) second_high = 0x9f;  // No surrogates.
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    length = 4;
    if (b0 == 0xf0) second_low = 0x90;   // No overlong forms.
    if (b0 == 0xf4) second_high = 0x8f;  // Nothing above U+10FFFF.
  } else {
    return -1;  // A continuation byte, C0, C1 or F5-FF.
  }
  for (int i = 1; i < length; ++i) {
    if (static_cast<size_t>(i) >= s.size()) return -i;
    const auto b = static_cast<uint8_t>(s[static_cast<size_t>(i)]);
    const bool ok = i == 1 ? (b >= second_low && b <= second_high) : IsContinuation(b);
    if (!ok) return -i;
  }
  return length;
}

void AppendEscape(std::string* out, uint8_t c) {
  char short_form = 0;
  switch (c) {
    case '"':
      short_form = '"';
      break;
    case '\\':
      short_form = '\\';
      break;
    case '\b':
      short_form = 'b';
      break;
    case '\f':
      short_form = 'f';
      break;
    case '\n':
      short_form = 'n';
      break;
    case '\r':
      short_form = 'r';
      break;
    case '\t':
      short_form = 't';
      break;
    default:
      break;
  }
  if (short_form != 0) {
    const char escape[2] = {'\\', short_form};
    out->append(escape, 2);
    return;
  }
  const char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
  out->append(escape, 6);
}

bool NeedsEscape(uint8_t c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7f; }

}  // namespace

void AppendJsonString(std::string* out, std::string_view value) {
  out->push_back('"');
  size_t run_start = 0;  // Bytes [run_start, i) are copied unchanged.
  size_t i = 0;
  while (i < value.size()) {
    const auto c = static_cast<uint8_t>(value[i]);
    if (c < 0x80 && !NeedsEscape(c)) {
      ++i;
      continue;
    }
    int sequence = 1;
    if (c >= 0x80) {
      sequence = Utf8Sequence(value.substr(i));
      if (sequence > 0) {
        i += static_cast<size_t>(sequence);
        continue;
      }
    }
    out->append(value.data() + run_start, i - run_start);
    if (c < 0x80) {
      AppendEscape(out, c);
      ++i;
    } else {
      out->append(kReplacement);
      i += static_cast<size_t>(-sequence);
    }
    run_start = i;
  }
  out->append(value.data() + run_start, i - run_start);
  out->push_back('"');
}

void FormatRfc3339Millis(int64_t unix_ms, char* out) {
  // 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
  constexpr int64_t kMinMs = -62167219200000;
  constexpr int64_t kMaxMs = 253402300799999;
  unix_ms = std::clamp(unix_ms, kMinMs, kMaxMs);
  constexpr int64_t kMsPerDay = 86400000;
  int64_t days = unix_ms / kMsPerDay;
  int64_t ms_of_day = unix_ms % kMsPerDay;
  if (ms_of_day < 0) {
    ms_of_day += kMsPerDay;
    --days;
  }
  // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm,
  // proleptic Gregorian calendar in 400-year eras).
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  const auto put = [&out](size_t at, int64_t value, int digits) {
    for (int d = digits - 1; d >= 0; --d) {
      out[at + static_cast<size_t>(d)] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
  };
  put(0, year, 4);
  out[4] = '-';
  put(5, month, 2);
  out[7] = '-';
  put(8, day, 2);
  out[10] = 'T';
  put(11, ms_of_day / 3600000, 2);
  out[13] = ':';
  put(14, ms_of_day / 60000 % 60, 2);
  out[16] = ':';
  put(17, ms_of_day / 1000 % 60, 2);
  out[19] = '.';
  put(20, ms_of_day % 1000, 3);
  out[23] = 'Z';
}

void AppendRfc3339Millis(std::string* out, int64_t unix_ms) {
  char text[kRfc3339MillisBytes];
  FormatRfc3339Millis(unix_ms, text);
  out->append(text, sizeof(text));
}

}  // namespace sluice
