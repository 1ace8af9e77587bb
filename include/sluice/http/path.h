// Request-target → a path relative to the document root (RFC 9112 §3.2,
// RFC 3986 §5.2.4). Pure functions; any thread.
//
// The target is percent-decoded exactly once and dot-segments are removed.
// The result never starts with '/', never contains "." or ".." segments, empty
// segments or NUL, so it cannot name anything above the root by itself; the
// kernel (openat2 RESOLVE_BENEATH) enforces the same for symlinks.
#ifndef SLUICE_HTTP_PATH_H_
#define SLUICE_HTTP_PATH_H_

#include <string>
#include <string_view>

namespace sluice {

struct ResolvedPath {
  std::string relative;          // "" for the root itself, else "a/b/c".
  bool trailing_slash = false;   // The decoded path ended with '/'.
  bool has_dot_segment = false;  // A segment starts with '.' (dotfile or dot-directory).
  std::string_view query;        // Raw query without '?', empty if none.
  bool has_query = false;
  // The authority of an absolute-form target ("http://a.test:80/x" →
  // "a.test:80"), which names the site in place of Host; empty otherwise.
  std::string_view authority;
};

enum class PathError {
  kOk,
  kBadTarget,  // Not origin-form/absolute-form, bad escape, NUL, '#', ... → 400.
  kAboveRoot,  // ".." would climb above the root → 400.
  kNotAPath,   // "*" (asterisk-form) or authority-form: no file to serve.
};

// Parses origin-form ("/a/b?q") and absolute-form ("http://host/a/b?q").
PathError ResolveTarget(std::string_view target, ResolvedPath* out);

// Percent-encodes a relative path for use in a Location header, keeping '/'.
std::string EncodePath(std::string_view path);

}  // namespace sluice

#endif  // SLUICE_HTTP_PATH_H_
