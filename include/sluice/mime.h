// File extension → Content-Type. The built-in table covers nginx's mime.types
// and modern web types; text types carry "; charset=utf-8". Immutable after
// start-up, so any thread may read it.
#ifndef SLUICE_MIME_H_
#define SLUICE_MIME_H_

#include <string_view>

namespace sluice {

inline constexpr std::string_view kDefaultMimeType = "application/octet-stream";

// Content-Type for a path, from the text after its last '.' in the last
// segment, matched case-insensitively; kDefaultMimeType when unknown.
std::string_view MimeTypeForPath(std::string_view path);

// Content-Type for a bare extension ("html", "JPG").
std::string_view MimeTypeForExtension(std::string_view ext);

}  // namespace sluice

#endif  // SLUICE_MIME_H_
