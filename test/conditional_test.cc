// Conditional requests (RFC 9110 §13) and Accept-Encoding negotiation
// (RFC 9110 §12.5.3), as tables. Requests are built by running the real
// RequestParser over request text, so the fields look exactly as the server
// sees them.

#include "sluice/http/conditional.h"

#include <algorithm>
#include <ctime>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "sluice/http/http_date.h"
#include "sluice/http/http_parser.h"

namespace sluice {
namespace {

constexpr std::string_view kEtag = "\"1f-3e8-167a2b3c4d5e6f70\"";
constexpr std::string_view kOtherEtag = "\"1f-3e8-167a2b3c4d5e6f71\"";
constexpr time_t kMtime = 1614834367;  // Thu, 04 Mar 2021 05:06:07 GMT
const Validators kValidators{kEtag, kMtime};

std::string Date(time_t t) {
  char text[kHttpDateLength];
  FormatHttpDate(t, text);
  return std::string(text, kHttpDateLength);
}

std::string Weak(std::string_view etag) { return "W/" + std::string(etag); }

// A GET request with the given field lines, parsed by the real parser. The
// Request refers into text_, so a ParsedHead never moves.
class ParsedHead {
 public:
  explicit ParsedHead(const std::string& field_lines)
      : text_("GET /file.txt HTTP/1.1\r\nHost: example.test\r\n" + field_lines + "\r\n") {
    status_ = parser_.Feed(text_.data(), text_.size());
  }
  ParsedHead(const ParsedHead&) = delete;
  ParsedHead& operator=(const ParsedHead&) = delete;

  bool ok() const { return status_ == RequestParser::Status::kDone; }
  const Request& request() const { return parser_.request(); }
  const std::string& text() const { return text_; }

 private:
  const std::string text_;
  RequestParser parser_;
  RequestParser::Status status_;
};

std::string Line(std::string_view name, std::string_view value) {
  return std::string(name) + ": " + std::string(value) + "\r\n";
}

const char* PreconditionName(Precondition p) {
  switch (p) {
    case Precondition::kProceed:
      return "kProceed";
    case Precondition::kNotModified:
      return "kNotModified (304)";
    case Precondition::kPreconditionFailed:
      return "kPreconditionFailed (412)";
  }
  return "?";
}

struct CaseName {
  template <typename T>
  std::string operator()(const ::testing::TestParamInfo<T>& info) const {
    return info.param.name;
  }
};

// ------------------------------------------------ EvaluatePreconditions --

struct PreconditionCase {
  std::string name;
  std::string fields;  // Raw field lines.
  Precondition expected;
};

std::ostream& operator<<(std::ostream& os, const PreconditionCase& c) {
  return os << c.name << " fields='" << c.fields << "'";
}

std::vector<PreconditionCase> PreconditionCases() {
  const Precondition go = Precondition::kProceed;
  const Precondition not_modified = Precondition::kNotModified;
  const Precondition failed = Precondition::kPreconditionFailed;
  const std::string same = Date(kMtime);
  const std::string older = Date(kMtime - 1);
  const std::string newer = Date(kMtime + 1);
  const std::string ours = std::string(kEtag);
  const std::string other = std::string(kOtherEtag);
  return {
      {"NoConditions", "", go},
      // Step 1: If-Match, strong comparison (RFC 9110 §13.1.1).
      {"IfMatchOurs", Line("If-Match", ours), go},
      {"IfMatchOther", Line("If-Match", other), failed},
      {"IfMatchStar", Line("If-Match", "*"), go},
      {"IfMatchListWithOurs", Line("If-Match", other + ", " + ours), go},
      {"IfMatchListWithoutOurs", Line("If-Match", other + ",\"x\""), failed},
      {"IfMatchWeakOursNeverMatches", Line("If-Match", Weak(ours)), failed},
      {"IfMatchWeakAndStrongOurs", Line("If-Match", Weak(ours) + ", " + ours), go},
      {"IfMatchMalformedIgnored", Line("If-Match", "1f-3e8"), go},
      {"IfMatchUnterminatedIgnored", Line("If-Match", "\"1f-3e8"), go},
      // Step 2: If-Unmodified-Since, only without If-Match (§13.1.4).
      {"IfUnmodifiedSinceOlder", Line("If-Unmodified-Since", older), failed},
      {"IfUnmodifiedSinceEqual", Line("If-Unmodified-Since", same), go},
      {"IfUnmodifiedSinceNewer", Line("If-Unmodified-Since", newer), go},
      {"IfUnmodifiedSinceGarbageIgnored", Line("If-Unmodified-Since", "yesterday"), go},
      {"IfUnmodifiedSinceIgnoredWithIfMatch",
       Line("If-Match", ours) + Line("If-Unmodified-Since", older), go},
      {"IfMatchFailsEvenWithGoodIfUnmodifiedSince",
       Line("If-Match", other) + Line("If-Unmodified-Since", newer), failed},
      // Steps 1-2 come before 3-4.
      {"IfMatchFailureBeatsIfNoneMatch", Line("If-Match", other) + Line("If-None-Match", ours),
       failed},
      {"IfUnmodifiedSinceFailureBeatsIfNoneMatch",
       Line("If-Unmodified-Since", older) + Line("If-None-Match", ours), failed},
      {"IfUnmodifiedSinceFailureBeatsIfModifiedSince",
       Line("If-Unmodified-Since", older) + Line("If-Modified-Since", newer), failed},
      {"IfMatchPassesThenIfNoneMatch", Line("If-Match", ours) + Line("If-None-Match", ours),
       not_modified},
      {"IfMatchStarAndIfNoneMatchStar", Line("If-Match", "*") + Line("If-None-Match", "*"),
       not_modified},
      // Step 3: If-None-Match, weak comparison (§13.1.2).
      {"IfNoneMatchOurs", Line("If-None-Match", ours), not_modified},
      {"IfNoneMatchWeakOurs", Line("If-None-Match", Weak(ours)), not_modified},
      {"IfNoneMatchOther", Line("If-None-Match", other), go},
      {"IfNoneMatchListWithOurs", Line("If-None-Match", "\"a\", " + other + " , " + ours),
       not_modified},
      {"IfNoneMatchListWithEmptyElements", Line("If-None-Match", ",, " + ours + " ,"),
       not_modified},
      {"IfNoneMatchListWithoutOurs", Line("If-None-Match", "\"a\", " + other), go},
      {"IfNoneMatchStar", Line("If-None-Match", "*"), not_modified},
      {"IfNoneMatchMalformedIgnored", Line("If-None-Match", "1f-3e8-167a2b3c4d5e6f70"), go},
      {"IfNoneMatchMissingCommaIgnored", Line("If-None-Match", ours + " " + other), go},
      {"IfNoneMatchTrailingGarbageIgnored", Line("If-None-Match", ours + " x"), go},
      {"IfNoneMatchCaseSensitive", Line("If-None-Match", "\"1F-3E8-167A2B3C4D5E6F70\""), go},
      // Step 4: If-Modified-Since, only without If-None-Match (§13.1.3).
      {"IfModifiedSinceEqual", Line("If-Modified-Since", same), not_modified},
      {"IfModifiedSinceNewer", Line("If-Modified-Since", newer), not_modified},
      {"IfModifiedSinceOlder", Line("If-Modified-Since", older), go},
      {"IfModifiedSinceGarbageIgnored", Line("If-Modified-Since", "not a date"), go},
      {"IfModifiedSinceEmptyIgnored", Line("If-Modified-Since", ""), go},
      {"IfModifiedSinceTrailingTextIgnored", Line("If-Modified-Since", same + " x"), go},
      {"IfModifiedSinceRfc850", Line("If-Modified-Since", "Thursday, 04-Mar-21 05:06:07 GMT"),
       not_modified},
      {"IfModifiedSinceAsctime", Line("If-Modified-Since", "Thu Mar  4 05:06:07 2021"),
       not_modified},
      {"IfModifiedSinceIgnoredWithIfNoneMatch",
       Line("If-None-Match", other) + Line("If-Modified-Since", newer), go},
      {"IfNoneMatchWinsOverOldIfModifiedSince",
       Line("If-None-Match", ours) + Line("If-Modified-Since", older), not_modified},
      {"IfModifiedSinceAfterPassingIfUnmodifiedSince",
       Line("If-Unmodified-Since", newer) + Line("If-Modified-Since", same), not_modified},
  };
}

class PreconditionTest : public ::testing::TestWithParam<PreconditionCase> {};

TEST_P(PreconditionTest, FollowsRfc9110Section13_2_2) {
  const PreconditionCase& c = GetParam();
  ParsedHead head(c.fields);
  ASSERT_TRUE(head.ok()) << head.text();
  EXPECT_STREQ(PreconditionName(EvaluatePreconditions(head.request(), kValidators)),
               PreconditionName(c.expected));
}

INSTANTIATE_TEST_SUITE_P(Table, PreconditionTest, ::testing::ValuesIn(PreconditionCases()),
                         CaseName());

// ---------------------------------------------------- IfRangeAllowsRange --

struct IfRangeCase {
  std::string name;
  std::string if_range;
  bool allows;
};

std::ostream& operator<<(std::ostream& os, const IfRangeCase& c) {
  return os << c.name << " If-Range='" << c.if_range << "'";
}

std::vector<IfRangeCase> IfRangeCases() {
  return {
      {"Absent", "", true},
      {"StrongEtagEqual", std::string(kEtag), true},
      {"StrongEtagEqualWithOws", "  " + std::string(kEtag) + "\t", true},
      {"StrongEtagOther", std::string(kOtherEtag), false},
      {"WeakEtagNeverMatches", Weak(kEtag), false},
      {"WeakOtherEtag", Weak(kOtherEtag), false},
      {"UnterminatedEtag", "\"1f-3e8-167a2b3c4d5e6f70", false},
      {"EtagList", std::string(kEtag) + ", " + std::string(kEtag), false},
      {"DateEqual", Date(kMtime), true},
      {"DateOlder", Date(kMtime - 1), false},
      {"DateNewer", Date(kMtime + 1), false},
      {"DateRfc850Equal", "Thursday, 04-Mar-21 05:06:07 GMT", true},
      {"DateAsctimeEqual", "Thu Mar  4 05:06:07 2021", true},
      {"Garbage", "yesterday", false},
      {"Star", "*", false},
      {"DateWithTrailingText", Date(kMtime) + " GMT", false},
  };
}

class IfRangeTest : public ::testing::TestWithParam<IfRangeCase> {};

TEST_P(IfRangeTest, FollowsRfc9110Section13_1_5) {
  const IfRangeCase& c = GetParam();
  EXPECT_EQ(IfRangeAllowsRange(c.if_range, kValidators), c.allows);
}

INSTANTIATE_TEST_SUITE_P(Table, IfRangeTest, ::testing::ValuesIn(IfRangeCases()), CaseName());

// --------------------------------------------------- EntityTagListMatches --

struct ListCase {
  std::string name;
  std::string list;
  std::string etag;
  bool strong;
  bool matches;
  bool malformed;
};

std::ostream& operator<<(std::ostream& os, const ListCase& c) {
  return os << c.name << " list='" << c.list << "' etag='" << c.etag << "' strong=" << c.strong;
}

std::vector<ListCase> ListCases() {
  const std::string a = "\"a\"";
  const std::string b = "\"b\"";
  return {
      {"StarStrong", "*", a, true, true, false},
      {"StarWeak", "*", a, false, true, false},
      {"StarWithOws", " * ", a, true, true, false},
      {"SameStrong", a, a, true, true, false},
      {"SameWeak", a, a, false, true, false},
      {"OtherStrong", b, a, true, false, false},
      {"OtherWeak", b, a, false, false, false},
      {"WeakInListStrong", "W/" + a, a, true, false, false},
      {"WeakInListWeak", "W/" + a, a, false, true, false},
      {"OurWeakStrong", a, "W/" + a, true, false, false},
      {"OurWeakWeak", a, "W/" + a, false, true, false},
      {"BothWeakStrong", "W/" + a, "W/" + a, true, false, false},
      {"BothWeakWeak", "W/" + a, "W/" + a, false, true, false},
      {"ListFirst", a + ", " + b, a, true, true, false},
      {"ListLast", b + ",\t" + a, a, true, true, false},
      {"ListNoSpaces", b + "," + a, a, true, true, false},
      {"ListEmptyElements", ", ," + b + ",," + a + ",", a, true, true, false},
      {"ListNone", b + ", \"c\"", a, true, false, false},
      {"EmptyTagMatchesEmpty", "\"\"", "\"\"", true, true, false},
      {"EmptyList", "", a, true, false, false},
      {"OnlyCommas", " , ,", a, true, false, false},
      {"Unquoted", "a", a, true, false, true},
      {"Unterminated", "\"a", a, true, false, true},
      {"MissingComma", b + " " + a, a, true, false, true},
      {"GarbageAfterMatch", a + " x", a, true, false, true},
      {"StarInsideList", "*, " + a, a, true, false, true},
      {"LowercaseWeakPrefix", "w/" + a, a, false, false, true},
      {"SpaceInsideTag", "\"a b\"", "\"a b\"", true, false, true},
      {"ControlInsideTag", "\"a\x01\"", "\"a\x01\"", true, false, true},
      {"CaseSensitive", "\"A\"", a, false, false, false},
      {"PrefixIsNotMatch", "\"ab\"", a, false, false, false},
  };
}

class EntityTagListTest : public ::testing::TestWithParam<ListCase> {};

TEST_P(EntityTagListTest, MatchesTable) {
  const ListCase& c = GetParam();
  bool malformed = !c.malformed;  // Must be overwritten.
  EXPECT_EQ(EntityTagListMatches(c.list, c.etag, c.strong, &malformed), c.matches);
  EXPECT_EQ(malformed, c.malformed);
}

INSTANTIATE_TEST_SUITE_P(Table, EntityTagListTest, ::testing::ValuesIn(ListCases()), CaseName());

// ------------------------------------------------------- NegotiateCoding --

struct CodingCase {
  std::string name;
  std::string accept_encoding;
  bool present;
  std::vector<Coding> order;  // Always ends with kIdentity.
};

std::ostream& operator<<(std::ostream& os, const CodingCase& c) {
  return os << c.name << " Accept-Encoding='" << c.accept_encoding << "' present=" << c.present;
}

std::string CodingNames(const std::vector<Coding>& order) {
  std::string text;
  for (Coding c : order) {
    if (!text.empty()) text += ",";
    text += c == Coding::kIdentity ? std::string("identity") : std::string(CodingToken(c));
  }
  return text;
}

std::vector<CodingCase> CodingCases() {
  const Coding br = Coding::kBrotli;
  const Coding zs = Coding::kZstd;
  const Coding gz = Coding::kGzip;
  const Coding id = Coding::kIdentity;
  return {
      {"Absent", "", false, {id}},
      {"AbsentIgnoresValue", "gzip, br", false, {id}},
      {"PresentButEmpty", "", true, {id}},
      {"Gzip", "gzip", true, {gz, id}},
      {"Br", "br", true, {br, id}},
      {"Zstd", "zstd", true, {zs, id}},
      {"GzipAndBrTieBrFirst", "gzip, br", true, {br, gz, id}},
      {"BrowserTieBrZstdGzip", "gzip, deflate, br, zstd", true, {br, zs, gz, id}},
      {"ZstdAndGzipTieZstdFirst", "gzip, zstd", true, {zs, gz, id}},
      {"ZstdHigherQThanBr", "br;q=0.8, zstd", true, {zs, br, id}},
      {"GzipHighestQ", "zstd;q=0.2, gzip;q=0.9, br;q=0.5", true, {gz, br, zs, id}},
      {"ZstdQZero", "zstd;q=0, br, gzip", true, {br, gz, id}},
      {"ZstdUpperCase", "ZSTD;Q=0.5, Gzip;q=0.4", true, {zs, gz, id}},
      {"ZstPrefixNotZstd", "zst, zstandard", true, {id}},
      {"BrLowerQ", "br;q=0.5, gzip", true, {gz, br, id}},
      {"BrLowQGzipHighQ", "br;q=0.1, gzip;q=0.9", true, {gz, br, id}},
      {"EqualQTieBrFirst", "gzip;q=0.8, br;q=0.8", true, {br, gz, id}},
      {"GzipQZero", "gzip;q=0", true, {id}},
      {"GzipQZeroPointZero", "gzip;q=0.000", true, {id}},
      {"BrQZeroGzip", "br;q=0, gzip", true, {gz, id}},
      {"Star", "*", true, {br, zs, gz, id}},
      {"StarQZero", "*;q=0", true, {id}},
      {"StarQZeroButGzip", "gzip, *;q=0", true, {gz, id}},
      {"StarQZeroButZstd", "zstd;q=0.1, *;q=0", true, {zs, id}},
      // "*" covers identity too: gzip at 0.5 ranks below it.
      {"StarCoversUnlisted", "gzip;q=0.5, *", true, {br, zs, id}},
      {"StarCoversUnlistedNotIdentity", "gzip;q=0.5, *, identity;q=0.1", true, {br, zs, gz, id}},
      {"StarDoesNotOverrideListed", "*, gzip;q=0", true, {br, zs, id}},
      {"IdentityQZeroStillIdentity", "identity;q=0", true, {id}},
      {"IdentityOnly", "identity", true, {id}},
      {"IdentityPreferred", "identity, gzip;q=0.5", true, {id}},
      {"IdentityTiesGzip", "gzip, identity", true, {gz, id}},
      {"IdentityBetween", "br, identity;q=0.5, gzip;q=0.4", true, {br, id}},
      {"IdentityRefusedStillLast", "identity;q=0, gzip", true, {gz, id}},
      {"IdentityUnnamedRanksLast", "gzip;q=0.001", true, {gz, id}},
      {"XGzip", "x-gzip", true, {gz, id}},
      {"Deflate", "deflate", true, {id}},
      {"Compress", "compress", true, {id}},
      {"InvalidQAboveOne", "gzip;q=2", true, {id}},
      {"InvalidQOnePointFive", "gzip;q=1.5", true, {id}},
      {"InvalidQTooManyDigits", "gzip;q=0.0001", true, {id}},
      {"InvalidQLetters", "br;q=abc, gzip", true, {gz, id}},
      {"InvalidQIgnoresElementNotField", "zstd;q=x, br;q=0.3", true, {br, id}},
      {"InvalidQOnIdentityIgnored", "identity;q=9, gzip;q=0.5", true, {gz, id}},
      {"InvalidQNegative", "gzip;q=-1", true, {id}},
      {"InvalidQEmpty", "gzip;q=", true, {id}},
      {"OtherParameterIgnoresElement", "zstd;level=3", true, {id}},
      {"QOneExact", "br;q=1.000, gzip;q=1", true, {br, gz, id}},
      {"SmallestQ", "gzip;q=0.001", true, {gz, id}},
      {"UpperCase", "GZIP", true, {gz, id}},
      {"UpperCaseBrAndQ", "BR;Q=0.9, Gzip;q=0.2", true, {br, gz, id}},
      {"OwsAroundParams", "gzip ; q=0.3 ,  br ;q=0.4", true, {br, gz, id}},
      {"EmptyElements", ",,gzip,,", true, {gz, id}},
      {"BrPrefixNotBr", "brotli, gzipped", true, {id}},
  };
}

class NegotiateCodingTest : public ::testing::TestWithParam<CodingCase> {};

TEST_P(NegotiateCodingTest, MatchesTable) {
  const CodingCase& c = GetParam();
  const CodingChoice choice = NegotiateCoding(c.accept_encoding, c.present);
  ASSERT_GE(choice.count, 1);
  ASSERT_LE(choice.count, kCodingCount);
  const std::vector<Coding> actual(choice.order, choice.order + choice.count);
  EXPECT_EQ(CodingNames(actual), CodingNames(c.order));
  EXPECT_EQ(actual.back(), Coding::kIdentity);
}

INSTANTIATE_TEST_SUITE_P(Table, NegotiateCodingTest, ::testing::ValuesIn(CodingCases()),
                         CaseName());

// The real parser's view of Accept-Encoding drives negotiation as the
// server does it (field present or not).
TEST(NegotiateCodingFromRequestTest, UsesParsedField) {
  ParsedHead with(Line("Accept-Encoding", "  gzip;q=0.5, br;q=0.4  "));
  ASSERT_TRUE(with.ok());
  const Request& r = with.request();
  CodingChoice choice =
      NegotiateCoding(r.field(Field::kAcceptEncoding), r.has(Field::kAcceptEncoding));
  EXPECT_EQ(CodingNames({choice.order, choice.order + choice.count}), "gzip,br,identity");

  ParsedHead without("");
  ASSERT_TRUE(without.ok());
  const Request& r2 = without.request();
  choice = NegotiateCoding(r2.field(Field::kAcceptEncoding), r2.has(Field::kAcceptEncoding));
  EXPECT_EQ(CodingNames({choice.order, choice.order + choice.count}), "identity");
}

}  // namespace
}  // namespace sluice
