#include "sluice/http/conditional.h"

#include <optional>

#include "sluice/http/field_syntax.h"
#include "sluice/http/http_date.h"
#include "sluice/http/http_parser.h"

namespace sluice {
namespace {

// etagc = "!" / %x23-7E / obs-text (RFC 9110 §8.8.3).
bool IsEtagChar(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

// Splits a leading entity-tag off `s`. Returns false if malformed.
bool NextEntityTag(std::string_view* s, bool* weak, std::string_view* opaque) {
  std::string_view v = *s;
  *weak = false;
  if (v.size() >= 2 && v[0] == 'W' && v[1] == '/') {
    *weak = true;
    v.remove_prefix(2);
  }
  if (v.empty() || v[0] != '"') return false;
  size_t end = 1;
  while (end < v.size() && v[end] != '"') {
    if (!IsEtagChar(static_cast<unsigned char>(v[end]))) return false;
    ++end;
  }
  if (end >= v.size()) return false;
  *opaque = v.substr(0, end + 1);  // Including the quotes.
  v.remove_prefix(end + 1);
  *s = v;
  return true;
}

std::optional<time_t> SingleDate(const Request& r, Field f) {
  if (r.field_count(f) != 1) return std::nullopt;
  return ParseHttpDate(r.field(f));
}

}  // namespace

bool EntityTagListMatches(std::string_view list, std::string_view etag, bool strong,
                          bool* malformed) {
  *malformed = false;
  list = TrimOws(list);
  if (list == "*") return true;
  std::string_view our = etag;
  bool our_weak = false;
  if (our.size() >= 2 && our[0] == 'W' && our[1] == '/') {
    our_weak = true;
    our.remove_prefix(2);
  }
  bool matched = false;
  while (true) {
    list = TrimOws(list);
    if (list.empty()) break;
    if (list[0] == ',') {
      list.remove_prefix(1);
      continue;
    }
    bool weak = false;
    std::string_view opaque;
    if (!NextEntityTag(&list, &weak, &opaque)) {
      *malformed = true;
      return false;
    }
    if (opaque == our && (!strong || (!weak && !our_weak))) matched = true;
    list = TrimOws(list);
    if (!list.empty() && list[0] != ',') {
      *malformed = true;
      return false;
    }
  }
  return matched;
}

Precondition EvaluatePreconditions(const Request& r, const Validators& v) {
  bool malformed = false;
  // Step 1: If-Match (strong comparison).
  if (r.has(Field::kIfMatch)) {
    const bool match = EntityTagListMatches(r.field(Field::kIfMatch), v.etag, true, &malformed);
    if (!malformed && !match) return Precondition::kPreconditionFailed;
  } else if (auto date = SingleDate(r, Field::kIfUnmodifiedSince)) {
    // Step 2: If-Unmodified-Since, only without If-Match.
    if (v.last_modified > *date) return Precondition::kPreconditionFailed;
  }
  // Step 3: If-None-Match (weak comparison).
  if (r.has(Field::kIfNoneMatch)) {
    const bool match =
        EntityTagListMatches(r.field(Field::kIfNoneMatch), v.etag, false, &malformed);
    if (!malformed && match) return Precondition::kNotModified;  // GET/HEAD only.
    return Precondition::kProceed;
  }
  // Step 4: If-Modified-Since, only without If-None-Match.
  if (auto date = SingleDate(r, Field::kIfModifiedSince)) {
    if (v.last_modified <= *date) return Precondition::kNotModified;
  }
  return Precondition::kProceed;
}

bool IfRangeAllowsRange(std::string_view if_range, const Validators& v) {
  if_range = TrimOws(if_range);
  if (if_range.empty()) return true;
  if (if_range[0] == '"' || (if_range.size() > 1 && if_range[0] == 'W' && if_range[1] == '/')) {
    // Strong comparison; a weak tag never matches (RFC 9110 §13.1.5).
    return if_range[0] == '"' && if_range == v.etag;
  }
  const std::optional<time_t> date = ParseHttpDate(if_range);
  return date.has_value() && *date == v.last_modified;
}

namespace {

// Weights as stated: -1 when not listed. Index: Coding.
struct CodingWeights {
  int q[kCodingCount] = {-1, -1, -1, -1};
  int star = -1;
};

CodingWeights ParseAcceptEncoding(std::string_view value) {
  CodingWeights w;
  std::string_view rest = value;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = TrimOws(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    std::string_view token;
    int q = 0;
    if (item.empty() || !ParseWeightedElement(item, /*other_params=*/false, &token, &q)) continue;
    if (EqualsIgnoreCase(token, "br")) {
      w.q[static_cast<int>(Coding::kBrotli)] = q;
    } else if (EqualsIgnoreCase(token, "zstd")) {
      w.q[static_cast<int>(Coding::kZstd)] = q;
    } else if (EqualsIgnoreCase(token, "gzip") || EqualsIgnoreCase(token, "x-gzip")) {
      w.q[static_cast<int>(Coding::kGzip)] = q;
    } else if (EqualsIgnoreCase(token, "identity")) {
      w.q[static_cast<int>(Coding::kIdentity)] = q;
    } else if (token == "*") {
      w.star = q;
    }
  }
  return w;
}

}  // namespace

CodingChoice NegotiateCoding(std::string_view accept_encoding, bool present) {
  CodingChoice choice;
  if (!present) return choice;  // No preference stated: identity (RFC 9110 §12.5.3).
  const CodingWeights w = ParseAcceptEncoding(accept_encoding);
  int q[kCodingCount];
  for (int i = 0; i < kCodingCount; ++i) q[i] = w.q[i] >= 0 ? w.q[i] : (w.star >= 0 ? w.star : 0);
  // Identity unnamed (neither listed nor covered by "*"): acceptable, below
  // every acceptable coding.
  const int identity = static_cast<int>(Coding::kIdentity);
  if (w.q[identity] < 0 && w.star < 0) q[identity] = 0;
  // Insertion by weight, stable: enum order (br, zstd, gzip) breaks ties.
  choice.count = 0;
  for (int i = 0; i < identity; ++i) {
    if (q[i] <= 0 || q[i] < q[identity]) continue;  // Refused, or below identity.
    int at = choice.count++;
    while (at > 0 && q[static_cast<int>(choice.order[at - 1])] < q[i]) {
      choice.order[at] = choice.order[at - 1];
      --at;
    }
    choice.order[at] = static_cast<Coding>(i);
  }
  // Identity is always the last resort: sending it beats a 406 for a static
  // file (RFC 9110 §12.5.3 allows either).
  choice.order[choice.count++] = Coding::kIdentity;
  return choice;
}

std::string_view CodingToken(Coding c) {
  switch (c) {
    case Coding::kBrotli:
      return "br";
    case Coding::kZstd:
      return "zstd";
    case Coding::kGzip:
      return "gzip";
    case Coding::kIdentity:
      break;
  }
  return {};
}

std::string_view CodingFileSuffix(Coding c) {
  switch (c) {
    case Coding::kBrotli:
      return ".br";
    case Coding::kZstd:
      return ".zst";
    case Coding::kGzip:
      return ".gz";
    case Coding::kIdentity:
      break;
  }
  return {};
}

std::string_view CodingEtagSuffix(Coding c) {
  switch (c) {
    case Coding::kBrotli:
      return "-br";
    case Coding::kZstd:
      return "-zst";
    case Coding::kGzip:
      return "-gz";
    case Coding::kIdentity:
      break;
  }
  return {};
}

}  // namespace sluice
