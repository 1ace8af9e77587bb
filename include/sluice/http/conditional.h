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

// Content codings of precompressed siblings (FILE.br, FILE.zst, FILE.gz).
enum class Coding : uint8_t { kBrotli, kZstd, kGzip, kIdentity };
inline constexpr int kCodingCount = 4;

struct CodingChoice {
  // Codings to try, in order; the last is always kIdentity.
  Coding order[kCodingCount] = {Coding::kIdentity, Coding::kIdentity, Coding::kIdentity,
                                Coding::kIdentity};
  int count = 1;
};

// From an Accept-Encoding value (may be empty/absent): which precompressed
// siblings to try, in order (RFC 9110 §12.5.3).
// - Tokens are case-insensitive: "br", "zstd" (RFC 8878 §7.2), "gzip" and
//   its alias "x-gzip" (RFC 9110 §8.4.1.3), "identity", "*". Others are
//   ignored, and so is an element whose weight is not a valid q-value.
// - q=0 refuses a coding; "*" gives its weight to every coding not listed.
// - Higher q first. On a tie: br, then zstd, then gzip. Precompressed at
//   their highest levels, brotli (with its built-in dictionary of web text)
//   is usually the smallest of the three and zstd -19 smaller than gzip -9;
//   all three decode faster than a network sends, so the smaller file wins.
//   Browsers send "gzip, deflate, br, zstd" with equal weights.
// - identity ends the list: a coding is tried only if it ranks above
//   identity. Identity's own weight comes from "identity;q=" (or from "*"
//   when identity is not listed); when neither names it, it ranks below
//   every acceptable coding. A compressed coding wins a tie with identity.
//   Identity refused (identity;q=0, or *;q=0 without an identity entry) is
//   still the last resort when no acceptable sibling exists: RFC 9110
//   §12.5.3 allows it, and a 406 for a static file serves nobody.
CodingChoice NegotiateCoding(std::string_view accept_encoding, bool present);

// The content-coding token of a sibling ("br", "zstd", "gzip"), its file
// suffix (".br", ".zst", ".gz") and the suffix its entity-tag gets inside
// the quotes ("-br", "-zst", "-gz"). Empty for kIdentity.
std::string_view CodingToken(Coding c);
std::string_view CodingFileSuffix(Coding c);
std::string_view CodingEtagSuffix(Coding c);

}  // namespace sluice

#endif  // SLUICE_HTTP_CONDITIONAL_H_
