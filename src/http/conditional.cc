#include "sluice/http/conditional.h"

#include <optional>

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

// A q-value (RFC 9110 §12.4.2): "0", "0.xxx", "1", "1.000". -1 if invalid.
int ParseQ(std::string_view q) {
  if (q.empty() || q.size() > 5) return -1;
  if (q[0] != '0' && q[0] != '1') return -1;
  int value = (q[0] - '0') * 1000;
  if (q.size() > 1) {
    if (q[1] != '.') return -1;
    int scale = 100;
    for (size_t i = 2; i < q.size(); ++i, scale /= 10) {
      if (q[i] < '0' || q[i] > '9') return -1;
      value += (q[i] - '0') * scale;
    }
  }
  return value > 1000 ? -1 : value;
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

CodingChoice NegotiateCoding(std::string_view accept_encoding, bool present) {
  CodingChoice choice;
  if (!present) return choice;  // No preference stated: identity (RFC 9110 §12.5.3).
  int q_br = -1;
  int q_gzip = -1;
  int q_star = -1;
  std::string_view rest = accept_encoding;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view item = TrimOws(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (item.empty()) continue;
    int q = 1000;
    if (const size_t semi = item.find(';'); semi != std::string_view::npos) {
      std::string_view params = TrimOws(item.substr(semi + 1));
      item = TrimOws(item.substr(0, semi));
      if (params.size() < 2 || (params[0] != 'q' && params[0] != 'Q')) continue;
      params.remove_prefix(1);
      params = TrimOws(params);
      if (params.empty() || params[0] != '=') continue;
      params.remove_prefix(1);
      q = ParseQ(TrimOws(params));
      if (q < 0) continue;  // An invalid weight: ignore the element.
    }
    if (EqualsIgnoreCase(item, "br")) {
      q_br = q;
    } else if (EqualsIgnoreCase(item, "gzip") || EqualsIgnoreCase(item, "x-gzip")) {
      q_gzip = q;
    } else if (item == "*") {
      q_star = q;
    }
  }
  if (q_br < 0) q_br = q_star < 0 ? 0 : q_star;
  if (q_gzip < 0) q_gzip = q_star < 0 ? 0 : q_star;
  choice.count = 0;
  if (q_br > 0 && q_br >= q_gzip) {
    choice.order[choice.count++] = Coding::kBrotli;
    if (q_gzip > 0) choice.order[choice.count++] = Coding::kGzip;
  } else if (q_gzip > 0) {
    choice.order[choice.count++] = Coding::kGzip;
    if (q_br > 0) choice.order[choice.count++] = Coding::kBrotli;
  }
  // Identity is always the last resort: sending it beats a 406 for a static
  // file (RFC 9110 §12.5.3 allows either).
  choice.order[choice.count++] = Coding::kIdentity;
  return choice;
}

}  // namespace sluice
