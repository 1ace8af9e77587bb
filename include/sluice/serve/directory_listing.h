// Directory listings (--directory_listing): reading a directory beneath the
// root (blocking: it runs on a helper thread of the worker's BlockingPool,
// never on the worker), and rendering what was read as HTML or JSON (pure,
// any thread).
//
// Decisions (README "Directory listings"):
// - Order: by name, byte order (strcmp), directories mixed with files; a
//   directory's name is shown with a trailing '/'.
// - Hidden: names starting with '.' (never served either); names that are
//   not valid UTF-8 or hold a control byte (they could not be shown or
//   put in JSON faithfully; skipped and counted); symlinks that do not
//   resolve inside the root (openat2 RESOLVE_BENEATH from the root, as a
//   request would), dangling ones, and anything that is neither a regular
//   file nor a directory (FIFOs, sockets, devices: never served).
// - A symlink that resolves inside the root is listed as what it points to.
// - Capped: the first `entries_max` names in sort order are listed; the
//   listing says how many there were in all and that it was cut.
#ifndef SLUICE_SERVE_DIRECTORY_LISTING_H_
#define SLUICE_SERVE_DIRECTORY_LISTING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

struct ListingEntry {
  std::string name;
  bool directory = false;
  uint64_t size = 0;  // Bytes (0 for a directory).
  int64_t mtime_sec = 0;
};

struct Listing {
  std::vector<ListingEntry> entries;  // Sorted by name, at most the cap.
  size_t total = 0;                   // Entries that would be listed without the cap.
  bool truncated = false;             // total > entries.size().
  size_t skipped = 0;                 // Hidden for a reason other than a leading dot.
  // Memory it holds, roughly: what a cache of listings counts.
  size_t bytes() const;
};

// True if `name` is listed by name alone: not "." or "..", no leading dot,
// valid UTF-8 (no overlong forms, no surrogates), no control bytes.
bool ListableName(std::string_view name);

// Blocking. Reads directory `relative` ("" for the root) beneath `root_fd`
// (opened with openat2 RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, like every
// request's file) into *out, keeping the first `entries_max` names in sort
// order. Returns 0, or the errno of opening or reading the directory.
int ReadDirectoryListing(int root_fd, std::string_view relative, size_t entries_max, Listing* out);

// `url_path`: the directory's decoded path as requested, with its slashes
// ("/" or "/a/b/"), shown as the title. `at_root`: no link to the parent.
std::string RenderListingHtml(const Listing& listing, std::string_view url_path, bool at_root);
// {"path", "entries": [{"name","type":"file"|"directory","size","mtime"}],
//  "total", "truncated"}; mtime as RFC 3339 UTC.
std::string RenderListingJson(const Listing& listing, std::string_view url_path);

// True when `accept` (RFC 9110 §12.5.1) gives application/json a higher
// weight than text/html (HTML wins a tie, and without the field).
bool PrefersJson(std::string_view accept, bool present);

// Helpers, exposed for tests.
void AppendHtmlEscaped(std::string* out, std::string_view text);
// Every byte outside RFC 3986 unreserved (ALPHA DIGIT - . _ ~) as %XX: the
// result is one path segment and never looks like a scheme (':').
void AppendPercentEncoded(std::string* out, std::string_view segment);

}  // namespace sluice

#endif  // SLUICE_SERVE_DIRECTORY_LISTING_H_
