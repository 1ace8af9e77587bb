// Syntax checks for header fields a configuration supplies (RFC 9110 §5):
// names must be tokens, values must not smuggle CR, LF, NUL or other
// controls into a response head. Pure functions; any thread.
#ifndef SLUICE_HTTP_FIELD_SYNTAX_H_
#define SLUICE_HTTP_FIELD_SYNTAX_H_

#include <string>
#include <string_view>

namespace sluice {

// token = 1*tchar (RFC 9110 §5.6.2).
bool IsHttpToken(std::string_view s);

// field-value = *field-content: visible ASCII, obs-text, SP and HTAB, with no
// leading or trailing whitespace (RFC 9110 §5.5). Empty is allowed.
bool IsHttpFieldValue(std::string_view s);

// ASCII lower-case copy; header names and host names compare case-insensitively.
std::string AsciiLower(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Strips optional whitespace (SP / HTAB, RFC 9110 §5.6.3) from both ends.
std::string_view TrimOws(std::string_view v);

// A weight (RFC 9110 §12.4.2: "0", "0.xxx", "1", "1.000") in thousandths,
// or -1 when it is not one.
int ParseQValue(std::string_view q);

// Splits one list element "token;q=x" (Accept-Encoding, Accept) into what
// precedes its parameters and its weight (1000 without one). False when a q
// parameter is not a valid weight, or, unless `other_params` (Accept's
// media-range parameters), when there is any other parameter (RFC 9110
// §12.5.3 allows codings a weight only).
bool ParseWeightedElement(std::string_view element, bool other_params, std::string_view* value,
                          int* q);

}  // namespace sluice

#endif  // SLUICE_HTTP_FIELD_SYNTAX_H_
