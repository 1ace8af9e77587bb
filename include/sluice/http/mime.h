// File extension → Content-Type. The built-in table covers nginx's mime.types
// and modern web types; text types carry "; charset=utf-8". Immutable after
// start-up, so any thread may read it.
#ifndef SLUICE_HTTP_MIME_H_
#define SLUICE_HTTP_MIME_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sluice {

inline constexpr std::string_view kDefaultMimeType = "application/octet-stream";

// Content-Type for a path, from the text after its last '.' in the last
// segment, matched case-insensitively; kDefaultMimeType when unknown.
std::string_view MimeTypeForPath(std::string_view path);

// Content-Type for a bare extension ("html", "JPG").
std::string_view MimeTypeForExtension(std::string_view ext);

// Loads a types file in nginx's mime.types format (`type ext ext;`, optionally
// inside `types { ... }`, `#` comments) whose entries override the built-in
// table. text/* types without parameters get "; charset=utf-8". Call before
// any worker starts: the table is read without locks afterwards.
absl::Status LoadMimeTypes(const std::string& path);

// Parses the text of such a file into the override table (used by LoadMimeTypes
// and tests). Replaces any earlier overrides.
absl::Status ParseMimeTypes(std::string_view text);

}  // namespace sluice

#endif  // SLUICE_HTTP_MIME_H_
