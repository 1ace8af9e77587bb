// Pieces of a JSON-lines access log: a string value escaped per RFC 8259
// §7 and a timestamp in RFC 3339 form, both appended to a caller's buffer
// (the log writer's line buffer, whose capacity is reused from line to line,
// so a warm buffer is never reallocated). Pure functions; any thread.
#ifndef SLUICE_HTTP_JSON_LOG_H_
#define SLUICE_HTTP_JSON_LOG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// Appends `value` as a JSON string, quotes included. The output is ASCII:
// '"' and '\\' are escaped, as are control characters (\b \f \n \r \t, other
// C0 bytes and DEL as \u00XX), so a line can never be split or a terminal
// driven by what a client sent. Well-formed UTF-8 is copied unchanged.
// Ill-formed UTF-8 (a stray continuation byte, a truncated sequence, an
// overlong form, a surrogate, a code point above U+10FFFF) becomes
// "\ufffd", one per maximal ill-formed subpart (Unicode §3.9, the
// "substitution of maximal subparts" practice browsers follow): \u00XX
// would claim the byte was the code point U+00XX, which it is not.
// The input is bounded by the caller (request fields are, by the parser's
// head limit); the output grows at most 6 bytes per input byte, plus 2.
void AppendJsonString(std::string* out, std::string_view value);

// RFC 3339 UTC with milliseconds, "2026-12-04T22:22:01.123Z": always
// kRfc3339MillisBytes bytes. Times outside years 0000-9999 are clamped to
// the first or last millisecond of that range.
inline constexpr size_t kRfc3339MillisBytes = 24;
void AppendRfc3339Millis(std::string* out, int64_t unix_ms);
// The same into `out`, which has room for kRfc3339MillisBytes bytes.
void FormatRfc3339Millis(int64_t unix_ms, char* out);

}  // namespace sluice

#endif  // SLUICE_HTTP_JSON_LOG_H_
