// Unit tests for request-target resolution and path encoding.
#include "sluice/http/path.h"

#include <gtest/gtest.h>

#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

using namespace std::string_view_literals;

struct CaseName {
  template <typename T>
  std::string operator()(const testing::TestParamInfo<T>& param_info) const {
    return param_info.param.name;
  }
};

struct ResolveCase {
  const char* name;
  std::string_view target;
  PathError error;
  // Checked only when error == kOk.
  std::string_view relative = "";
  bool trailing_slash = false;
  bool has_dot_segment = false;
  std::string_view query = "";
  bool has_query = false;
};

// Keeps gtest from dumping the struct's bytes when a case fails.
void PrintTo(const ResolveCase& c, std::ostream* os) {
  *os << testing::PrintToString(std::string(c.target));
}

constexpr PathError kOk = PathError::kOk;
constexpr PathError kBad = PathError::kBadTarget;
constexpr PathError kAbove = PathError::kAboveRoot;
constexpr PathError kNotAPath = PathError::kNotAPath;

const ResolveCase kResolveCases[] = {
    // Plain origin-form.
    {"Root", "/", kOk, "", true},
    {"File", "/a", kOk, "a"},
    {"Nested", "/a/b", kOk, "a/b"},
    {"NestedTrailingSlash", "/a/b/", kOk, "a/b", true},
    {"EmptySegment", "/a//b", kOk, "a/b"},
    {"ManySlashes", "///a///b///", kOk, "a/b", true},
    {"UnreservedChars", "/A-z_0.9~", kOk, "A-z_0.9~"},
    // Dot segments.
    {"LeadingDot", "/./a", kOk, "a"},
    {"DotAndDotDot", "/a/./b/../c", kOk, "a/c"},
    {"DotDotToRoot", "/a/..", kOk, "", true},
    {"DotDotToRootSlash", "/a/../", kOk, "", true},
    {"TrailingDot", "/a/.", kOk, "a", true},
    {"TrailingDotDot", "/a/b/..", kOk, "a", true},
    {"DotOnly", "/.", kOk, "", true},
    {"DotDotAfterEmptySegments", "/a//..//b", kOk, "b"},
    {"ThreeDotsIsAName", "/...", kOk, "...", false, true},
    {"DotDotSuffixIsAName", "/a../b", kOk, "a../b"},
    {"DotDotRoot", "/..", kAbove},
    {"DotDotRootSlash", "/../", kAbove},
    {"ClimbTwice", "/a/../..", kAbove},
    {"ClimbDeep", "/a/b/../../../etc/passwd", kAbove},
    {"EncodedDotDot", "/%2e%2e/x", kAbove},
    {"EncodedDotDotUpper", "/%2E%2E/x", kAbove},
    {"EncodedMixedDotDot", "/.%2e/x", kAbove},
    {"EncodedSlashDotDot", "/a%2f..%2f..%2fx", kAbove},
    {"EncodedDotDotInside", "/a/%2e%2e/b", kOk, "b"},
    {"EncodedTrailingDot", "/a/%2e", kOk, "a", true},
    {"EncodedTrailingDotDot", "/a/b/%2e%2e", kOk, "a", true},
    // Decoding happens exactly once.
    {"DoubleEncodedDotDot", "/%252e%252e/x", kOk, "%2e%2e/x"},
    {"DoubleEncodedPercent", "/%2525", kOk, "%25"},
    {"EncodedSlash", "/a%2Fb", kOk, "a/b"},
    {"EncodedSlashLower", "/a%2fb", kOk, "a/b"},
    {"EncodedSpace", "/a%20b", kOk, "a b"},
    {"EncodedUtf8", "/caf%C3%A9", kOk, "caf\xc3\xa9"},
    {"EncodedQuestionMark", "/a%3Fb?c", kOk, "a?b", false, false, "c", true},
    {"EncodedHash", "/a%23b", kOk, "a#b"},
    {"EncodedTrailingSlash", "/a%2f", kOk, "a", true},
    // Bad escapes and fragments.
    {"EncodedNul", "/%00", kBad},
    {"EncodedNulInside", "/a%00b", kBad},
    {"BadHex", "/%zz", kBad},
    {"BadHexLow", "/%4g", kBad},
    {"LonePercent", "/%", kBad},
    {"TruncatedEscape", "/%4", kBad},
    {"TruncatedEscapeAfterName", "/abc%2", kBad},
    {"EscapeAtEnd", "/abc%41", kOk, "abcA"},
    {"Fragment", "/a#frag", kBad},
    {"FragmentAfterQuery", "/a?x#frag", kBad},
    // Query.
    {"Query", "/a?x=1&y", kOk, "a", false, false, "x=1&y", true},
    {"EmptyQuery", "/a?", kOk, "a", false, false, "", true},
    {"QueryOnRoot", "/?q", kOk, "", true, false, "q", true},
    {"QueryNotDecoded", "/a?%zz/../..", kOk, "a", false, false, "%zz/../..", true},
    {"QueryAfterTrailingSlash", "/d/?v=2", kOk, "d", true, false, "v=2", true},
    {"SecondQuestionMarkInQuery", "/a?b?c", kOk, "a", false, false, "b?c", true},
    // absolute-form.
    {"AbsoluteForm", "http://host/x/y?q", kOk, "x/y", false, false, "q", true},
    {"AbsoluteFormPort", "http://host:8080/x", kOk, "x"},
    {"AbsoluteFormHttps", "HTTPS://h/", kOk, "", true},
    {"AbsoluteFormMixedCaseScheme", "HtTp://h/a", kOk, "a"},
    {"AbsoluteFormNoPath", "http://h", kOk, "", true},
    {"AbsoluteFormNoPathQuery", "http://h?q=1", kOk, "", true, false, "q=1", true},
    {"AbsoluteFormNoPathQueryWithSlash", "http://h?a=/b", kOk, "", true, false, "a=/b", true},
    {"AbsoluteFormFragmentInAuthority", "http://h#/x", kBad},
    {"AbsoluteFormEmptyAuthority", "http:///x", kBad},
    {"AbsoluteFormClimb", "http://h/../x", kAbove},
    {"AbsoluteFormOtherScheme", "ftp://h/x", kBad},
    {"RelativeReference", "a/b", kBad},
    // No path at all.
    {"Asterisk", "*", kNotAPath},
    {"AuthorityForm", "example.com:443", kNotAPath},
    // Dot segments that survive normalisation.
    {"GitConfig", "/.git/config", kOk, ".git/config", false, true},
    {"DotEnv", "/a/.env", kOk, "a/.env", false, true},
    {"WellKnown", "/.well-known/x", kOk, ".well-known/x", false, true},
    {"DotfileAfterClimb", "/a/../.b", kOk, ".b", false, true},
    {"EncodedDotfile", "/a/%2Ehtaccess", kOk, "a/.htaccess", false, true},
    {"EncodedSlashDotfile", "/a%2f.env", kOk, "a/.env", false, true},
    {"DotfileRemovedByDotDot", "/.git/../a", kOk, "a"},
    {"DotInsideName", "/a.b/c.d", kOk, "a.b/c.d"},
};

class ResolveTargetTest : public testing::TestWithParam<ResolveCase> {};

TEST_P(ResolveTargetTest, Table) {
  const ResolveCase& c = GetParam();
  ResolvedPath out;
  ASSERT_EQ(ResolveTarget(c.target, &out), c.error);
  if (c.error != kOk) return;
  EXPECT_EQ(out.relative, c.relative);
  EXPECT_EQ(out.trailing_slash, c.trailing_slash);
  EXPECT_EQ(out.has_dot_segment, c.has_dot_segment);
  EXPECT_EQ(out.query, c.query);
  EXPECT_EQ(out.has_query, c.has_query);
}

INSTANTIATE_TEST_SUITE_P(Targets, ResolveTargetTest, testing::ValuesIn(kResolveCases), CaseName());

TEST(ResolveTargetMiscTest, QueryPointsIntoTarget) {
  const std::string target = "/a?x=1";
  ResolvedPath out;
  ASSERT_EQ(ResolveTarget(target, &out), kOk);
  EXPECT_EQ(out.query.data(), target.data() + 3);
}

TEST(ResolveTargetMiscTest, OutputIsResetBetweenCalls) {
  ResolvedPath out;
  ASSERT_EQ(ResolveTarget("/.d/x/?q", &out), kOk);
  EXPECT_TRUE(out.has_query);
  EXPECT_TRUE(out.trailing_slash);
  EXPECT_TRUE(out.has_dot_segment);
  ASSERT_EQ(ResolveTarget("/b", &out), kOk);
  EXPECT_EQ(out.relative, "b");
  EXPECT_FALSE(out.has_query);
  EXPECT_EQ(out.query, "");
  EXPECT_FALSE(out.trailing_slash);
  EXPECT_FALSE(out.has_dot_segment);
}

// Checks the invariants path.h promises for every kOk result.
void ExpectSafeRelative(const std::string& rel) {
  EXPECT_EQ(rel.find('\0'), std::string::npos);
  if (rel.empty()) return;
  EXPECT_NE(rel.front(), '/');
  size_t i = 0;
  while (true) {
    const size_t j = rel.find('/', i);
    const std::string_view seg(rel.data() + i, (j == std::string::npos ? rel.size() : j) - i);
    EXPECT_FALSE(seg.empty());
    EXPECT_NE(seg, ".");
    EXPECT_NE(seg, "..");
    if (j == std::string::npos) break;
    i = j + 1;
  }
}

// Random targets from pieces that exercise decoding and normalisation.
TEST(ResolveTargetPropertyTest, RandomTargetsStayBelowRootAndAreIdempotent) {
  const std::string_view kPieces[] = {"/", ".", "..", "%2e", "%2E", "%2f", "%2F", "a",
                                      "b", "%", "?",  "%00", "%41", "2e",  "/.",  "/.."};
  std::mt19937 rng(20240607);
  std::uniform_int_distribution<size_t> piece(0, std::size(kPieces) - 1);
  std::uniform_int_distribution<int> length(0, 12);
  int ok = 0;
  int above = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    std::string target = "/";
    const int n = length(rng);
    for (int k = 0; k < n; ++k) target += kPieces[piece(rng)];
    SCOPED_TRACE(target);
    ResolvedPath out;
    const PathError err = ResolveTarget(target, &out);
    ASSERT_NE(err, PathError::kNotAPath);
    if (err == PathError::kAboveRoot) ++above;
    if (err != kOk) continue;
    ++ok;
    ExpectSafeRelative(out.relative);
    const bool dot_segment =
        !out.relative.empty() &&
        (out.relative.front() == '.' || out.relative.find("/.") != std::string::npos);
    EXPECT_EQ(out.has_dot_segment, dot_segment) << out.relative;
    // None of the pieces decodes to '%', so re-resolving is the identity.
    ResolvedPath again;
    ASSERT_EQ(ResolveTarget("/" + out.relative, &again), kOk) << out.relative;
    EXPECT_EQ(again.relative, out.relative);
    // Through EncodePath, as a redirect's Location would carry it.
    ResolvedPath encoded;
    ASSERT_EQ(ResolveTarget("/" + EncodePath(out.relative), &encoded), kOk);
    EXPECT_EQ(encoded.relative, out.relative);
    if (testing::Test::HasFailure()) break;
  }
  // The generator must reach both outcomes to mean anything.
  EXPECT_GT(ok, 500);
  EXPECT_GT(above, 100);
}

// Every byte except NUL survives EncodePath → ResolveTarget.
TEST(ResolveTargetPropertyTest, EncodePathRoundTripsAllBytes) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(1, 255);
  std::uniform_int_distribution<int> length(1, 20);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string name;
    const int n = length(rng);
    for (int k = 0; k < n; ++k) {
      const char c = static_cast<char>(byte(rng));
      if (c != '/') name.push_back(c);
    }
    if (name.empty() || name == "." || name == "..") continue;
    const std::string rel = "d/" + name;
    SCOPED_TRACE(testing::PrintToString(rel));
    const std::string encoded = EncodePath(rel);
    for (unsigned char c : encoded) {
      ASSERT_TRUE(c > 0x20 && c < 0x7f && c != '?' && c != '#') << encoded;
    }
    ResolvedPath out;
    ASSERT_EQ(ResolveTarget("/" + encoded, &out), kOk) << encoded;
    EXPECT_EQ(out.relative, rel);
  }
}

TEST(EncodePathTest, Table) {
  struct Case {
    std::string_view in;
    std::string_view out;
  };
  const Case kCases[] = {
      {"", ""},
      {"a/b/c", "a/b/c"},
      {"/", "/"},
      {"AZaz09-._~", "AZaz09-._~"},
      {"a b", "a%20b"},
      {"100%", "100%25"},
      {"%2e", "%252e"},
      {"a?b", "a%3Fb"},
      {"a#b", "a%23b"},
      {"caf\xc3\xa9", "caf%C3%A9"},
      {"\xff", "%FF"},
      {"\x01\x1f\x7f", "%01%1F%7F"},
      {"tab\there", "tab%09here"},
      {"q\"uote", "q%22uote"},
      {"<>", "%3C%3E"},
      {"back\\slash", "back%5Cslash"},
      {"new\nline\r", "new%0Aline%0D"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(testing::PrintToString(std::string(c.in)));
    EXPECT_EQ(EncodePath(c.in), c.out);
  }
}

TEST(EncodePathTest, NulIsEncoded) { EXPECT_EQ(EncodePath("a\0b"sv), "a%00b"); }

TEST(ResolveTargetTest, AbsoluteFormKeepsItsAuthorityForSiteSelection) {
  ResolvedPath r;
  ASSERT_EQ(ResolveTarget("http://user@A.test:8080/x?q", &r), PathError::kOk);
  EXPECT_EQ(r.authority, "A.test:8080");
  EXPECT_EQ(r.relative, "x");
  ASSERT_EQ(ResolveTarget("https://b.test", &r), PathError::kOk);
  EXPECT_EQ(r.authority, "b.test");
  ASSERT_EQ(ResolveTarget("/y", &r), PathError::kOk);
  EXPECT_EQ(r.authority, "");
}

}  // namespace
}  // namespace sluice
