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

}  // namespace sluice

#endif  // SLUICE_HTTP_FIELD_SYNTAX_H_
