// Conditional requests (RFC 9110 §13) and content negotiation of
// precompressed siblings (RFC 9110 §12.5.3). Pure functions; any thread.
#ifndef SLUICE_HTTP_CONDITIONAL_H_
#define SLUICE_HTTP_CONDITIONAL_H_

#include <ctime>
#include <string_view>

#include "sluice/http/http_parser.h"

namespace sluice {

// The validators of the representation being sent.
struct Validators {
  std::string_view etag;  // Quoted strong entity-tag, e.g. "\"abc\"".
  time_t last_modified = 0;
};

enum class Precondition : uint8_t {
  kProceed,             // Serve normally (ranges may apply).
  kNotModified,         // 304.
  kPreconditionFailed,  // 412.
};

// Evaluates If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since in the order of RFC 9110 §13.2.2 for a GET or HEAD.
// Invalid dates and malformed entity-tag lists are ignored.
Precondition EvaluatePreconditions(const Request& request, const Validators& v);

// RFC 9110 §13.1.5: true if a Range may be honoured: no If-Range, or an
// If-Range whose strong entity-tag equals ours, or whose date equals our
// Last-Modified exactly.
bool IfRangeAllowsRange(std::string_view if_range, const Validators& v);

// True if `list` (an If-Match / If-None-Match value) matches `etag`:
// "*" matches anything; otherwise a comma-separated list of entity-tags,
// compared strongly (both not weak, same opaque) or weakly (same opaque).
// A malformed list matches nothing and sets *malformed.
bool EntityTagListMatches(std::string_view list, std::string_view etag, bool strong,
                          bool* malformed);

// Content codings of precompressed siblings, most preferred first.
enum class Coding : uint8_t { kBrotli, kGzip, kIdentity };

struct CodingChoice {
  // Codings to try, in order; the last is always kIdentity.
  Coding order[3] = {Coding::kIdentity, Coding::kIdentity, Coding::kIdentity};
  int count = 1;
};

// From an Accept-Encoding value (may be empty/absent): which precompressed
// siblings are acceptable, highest q first, br before gzip on a tie. q=0
// excludes a coding; "*" covers codings not listed; "x-gzip" is gzip.
CodingChoice NegotiateCoding(std::string_view accept_encoding, bool present);

}  // namespace sluice

#endif  // SLUICE_HTTP_CONDITIONAL_H_
