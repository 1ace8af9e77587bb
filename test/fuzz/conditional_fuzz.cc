// Fuzzes conditional requests and content negotiation: EvaluatePreconditions,
// IfRangeAllowsRange, EntityTagListMatches, NegotiateCoding and
// ParseHttpDate never crash, and their answers are consistent:
// - a strong match is also a weak match, and malformedness does not depend
//   on the comparison;
// - our own entity-tag and our own Last-Modified date satisfy If-Range;
// - NegotiateCoding lists each coding at most once, identity last;
// - a date that parses formats back (IMF-fixdate) and re-parses to the same
//   time.
//
// Input: byte 0 says which fields are present (bit 7: send them twice),
// bytes 1-8 the file's Last-Modified, the rest, split at '\n': If-Match,
// If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range,
// Accept-Encoding, and our entity-tag.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/conditional.h"
#include "sluice/http/http_date.h"
#include "sluice/http/http_parser.h"

namespace {

using sluice::Coding;
using sluice::CodingChoice;
using sluice::Field;
using sluice::Precondition;
using sluice::Request;
using sluice::Validators;

[[noreturn]] void Fail(const char* what, std::string_view detail) {
  std::fprintf(stderr, "conditional_fuzz: %s ('%.*s')\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void CheckDateRoundTrip(std::string_view s) {
  const std::optional<time_t> t = sluice::ParseHttpDate(s);
  if (!t) return;
  char text[sluice::kHttpDateLength];
  sluice::FormatHttpDate(*t, text);
  const std::string_view formatted(text, sluice::kHttpDateLength);
  const std::optional<time_t> again = sluice::ParseHttpDate(formatted);
  if (!again) Fail("a formatted date does not parse", formatted);
  if (*again != *t) Fail("date round trip changed the time", formatted);
}

// A well-formed strong entity-tag, as the server makes: "opaque" with etagc
// bytes (RFC 9110 §8.8.3) between the quotes.
bool IsStrongTag(std::string_view t) {
  if (t.size() < 2 || t.front() != '"' || t.back() != '"') return false;
  for (size_t i = 1; i + 1 < t.size(); ++i) {
    const auto c = static_cast<unsigned char>(t[i]);
    if (!(c == 0x21 || (c >= 0x23 && c != 0x7f))) return false;
  }
  return true;
}

void CheckTagList(std::string_view list, std::string_view etag) {
  bool malformed_strong = false;
  bool malformed_weak = false;
  const bool strong = sluice::EntityTagListMatches(list, etag, true, &malformed_strong);
  const bool weak = sluice::EntityTagListMatches(list, etag, false, &malformed_weak);
  if (malformed_strong != malformed_weak) Fail("malformed depends on the comparison", list);
  if (strong && !weak) Fail("a strong match that is not a weak match", list);
  if (malformed_strong && (strong || weak)) Fail("a malformed list matched", list);
}

void CheckCoding(std::string_view value, bool present) {
  const CodingChoice c = sluice::NegotiateCoding(value, present);
  if (c.count < 1 || c.count > sluice::kCodingCount) Fail("coding count out of range", value);
  if (c.order[c.count - 1] != Coding::kIdentity) Fail("identity is not last", value);
  for (int i = 0; i < c.count; ++i) {
    for (int j = 0; j < i; ++j) {
      if (c.order[i] == c.order[j]) Fail("a coding listed twice", value);
    }
  }
  if (!present && c.count != 1) Fail("codings without Accept-Encoding", value);
  // Case does not matter (tokens and the q parameter are case-insensitive).
  std::string upper(value);
  for (char& ch : upper) {
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  }
  const CodingChoice u = sluice::NegotiateCoding(upper, present);
  if (u.count != c.count) Fail("case changed the choice", value);
  for (int i = 0; i < c.count; ++i) {
    if (u.order[i] != c.order[i]) Fail("case changed the order", value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 9) return 0;
  const uint8_t present = data[0];
  int64_t lm = 0;
  std::memcpy(&lm, data + 1, sizeof(lm));
  // Years 1 to 9999, what an HTTP date can say.
  constexpr int64_t kMin = -62135596800;
  constexpr int64_t kMaxTime = 253402300799;
  const int64_t span = kMaxTime - kMin + 1;
  if (lm < kMin || lm > kMaxTime) lm = kMin + ((lm % span) + span) % span;

  // Owned copies of the pieces, so that views into them stay valid.
  const std::string rest(reinterpret_cast<const char*>(data + 9), size - 9);
  std::vector<std::string> pieces;
  size_t start = 0;
  while (pieces.size() < 7) {
    const size_t nl = rest.find('\n', start);
    pieces.push_back(rest.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  pieces.resize(7);
  const std::string etag = pieces[6].empty() ? std::string("\"1b2c-3f-17a8\"") : pieces[6];
  const Validators v{etag, static_cast<time_t>(lm)};

  const Field fields[6] = {Field::kIfMatch,           Field::kIfNoneMatch, Field::kIfModifiedSince,
                           Field::kIfUnmodifiedSince, Field::kIfRange,     Field::kAcceptEncoding};
  Request r;
  for (int i = 0; i < 6; ++i) {
    if ((present & (1u << i)) == 0) continue;
    const auto f = static_cast<size_t>(fields[i]);
    r.fields[f] = pieces[static_cast<size_t>(i)];
    r.field_counts[f] = (present & 0x80) ? 2 : 1;
  }

  const Precondition p = sluice::EvaluatePreconditions(r, v);
  if (p != Precondition::kProceed && p != Precondition::kNotModified &&
      p != Precondition::kPreconditionFailed) {
    Fail("unknown precondition result", rest);
  }
  sluice::IfRangeAllowsRange(pieces[4], v);
  if (IsStrongTag(etag) && !sluice::IfRangeAllowsRange(etag, v)) {
    Fail("our own entity-tag does not satisfy If-Range", etag);
  }
  char own_date[sluice::kHttpDateLength];
  sluice::FormatHttpDate(v.last_modified, own_date);
  if (!sluice::IfRangeAllowsRange(std::string_view(own_date, sizeof(own_date)), v)) {
    Fail("our own Last-Modified does not satisfy If-Range",
         std::string_view(own_date, sizeof(own_date)));
  }
  for (int i = 0; i < 2; ++i) CheckTagList(pieces[static_cast<size_t>(i)], etag);
  CheckCoding(pieces[5], (present & 0x20) != 0);
  CheckCoding(pieces[5], false);
  for (const std::string& piece : pieces) CheckDateRoundTrip(piece);
  CheckDateRoundTrip(rest);
  return 0;
}
