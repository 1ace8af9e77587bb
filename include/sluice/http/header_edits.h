// Response header edits from configuration rules (issue 12): set, append and
// remove fields of a response head the server has already written. Pure;
// edits are built once at load and shared read-only by every thread.
//
// Semantics, in the order edits are given (rules in file order):
// - remove NAME: every field of that name goes, ours included;
// - set NAME: VALUE: every field of that name goes, then this one is added
//   (a later set of the same name replaces an earlier one);
// - append NAME: VALUE: this field is added, keeping the others.
// Names compare case-insensitively; added fields keep the configured case.
// Framing fields (Content-Length, Transfer-Encoding, Connection...) are
// refused when the configuration loads, so an edit never changes framing.
//
// A 304 (RFC 9110 §15.4.5) carries the fields a 200 would have for cache
// updating (Cache-Control, ETag, Expires, Vary, Content-Location) and
// response metadata (security headers and the like), but no other
// representation metadata: edits of Content-Type, Content-Language,
// Content-Disposition and Last-Modified are skipped on a 304.
#ifndef SLUICE_HTTP_HEADER_EDITS_H_
#define SLUICE_HTTP_HEADER_EDITS_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/cors.h"

namespace sluice {

struct HeaderEdits {
  std::vector<HeaderField> set;     // Replace any field of that name.
  std::vector<HeaderField> append;  // Add a field, keeping others.
  std::vector<std::string> remove;  // Lower-case names.
  bool empty() const { return set.empty() && append.empty() && remove.empty(); }
};

// True for the fields a 304 leaves out (see above); `name` in any case.
bool SkippedOnNotModified(std::string_view name);
// True for Cache-Control and Expires, which an error page never takes from
// rules: a rule giving /assets/** a year of `immutable` must not make a
// missing asset's 404 cached for a year.
bool SkippedOnErrorPage(std::string_view name);

enum class HeadKind : uint8_t { kNormal, kNotModified, kErrorPage };

// Rewrites the head `head` ("HTTP/1.1 ...\r\n...\r\n\r\n", as our writers
// produce it) with `edits` applied in order, plus `extra` fields (CORS)
// appended last, into *out (cleared first). `kind`: a 304's head, or a
// configured error page's, leaves out the edits named above. The status line always stays first and
// the head ends in CRLF CRLF.
void RewriteHead(std::string_view head, std::span<const HeaderEdits* const> edits,
                 std::span<const HeaderField> extra, HeadKind kind, std::string* out);

}  // namespace sluice

#endif  // SLUICE_HTTP_HEADER_EDITS_H_
