// Unit tests for PathGlob: syntax, matching, and a bound on the work a
// pathological pattern and path can cause.
#include "sluice/http/path_glob.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {
namespace {

struct MatchCase {
  std::string_view pattern;
  std::string_view path;
  bool matches;
};

class PathGlobMatchTest : public testing::TestWithParam<MatchCase> {};

TEST_P(PathGlobMatchTest, Matches) {
  const MatchCase& c = GetParam();
  absl::StatusOr<PathGlob> glob = PathGlob::Compile(c.pattern);
  ASSERT_TRUE(glob.ok()) << glob.status();
  EXPECT_EQ(glob->Matches(c.path), c.matches) << c.pattern << " vs " << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PathGlobMatchTest,
    testing::Values(
        // Literals, anchored.
        MatchCase{"/", "/", true}, MatchCase{"/", "/a", false}, MatchCase{"/about", "/about", true},
        MatchCase{"/about", "/about/", false}, MatchCase{"/about", "/About", false},
        MatchCase{"/dir/", "/dir/", true},
        // '*' stays within a segment.
        MatchCase{"/*", "/a.html", true}, MatchCase{"/*", "/", true},
        MatchCase{"/*", "/a/b", false}, MatchCase{"/*.css", "/site.css", true},
        MatchCase{"/*.css", "/css/site.css", false}, MatchCase{"/a*b", "/ab", true},
        MatchCase{"/a*b", "/axxb", true}, MatchCase{"/a*b", "/ax/b", false},
        MatchCase{"/*/*.js", "/js/app.js", true}, MatchCase{"/*/*.js", "/app.js", false},
        // '?' is one byte, never '/'.
        MatchCase{"/?.txt", "/a.txt", true}, MatchCase{"/?.txt", "/ab.txt", false},
        MatchCase{"/a?b", "/a/b", false}, MatchCase{"/?", "/", false},
        // Trailing '**': everything below, the directory slash included.
        MatchCase{"/assets/**", "/assets/", true}, MatchCase{"/assets/**", "/assets/a.js", true},
        MatchCase{"/assets/**", "/assets/x/y/z.png", true},
        MatchCase{"/assets/**", "/assets", false}, MatchCase{"/assets/**", "/assetsx/a", false},
        MatchCase{"/**", "/", true}, MatchCase{"/**", "/any/thing", true},
        // '**/' in the middle: zero or more whole segments.
        MatchCase{"/**/x.js", "/x.js", true}, MatchCase{"/**/x.js", "/a/x.js", true},
        MatchCase{"/**/x.js", "/a/b/c/x.js", true}, MatchCase{"/**/x.js", "/ax.js", false},
        MatchCase{"/**/x.js", "/a/bx.js", false}, MatchCase{"/a/**/b", "/a/b", true},
        MatchCase{"/a/**/b", "/a/x/y/b", true}, MatchCase{"/a/**/b", "/a/xb", false},
        MatchCase{"/**/*.map", "/js/app.js.map", true}, MatchCase{"/**/**", "/a/b", true},
        // Basename patterns match the last segment only.
        MatchCase{"*.html", "/index.html", true}, MatchCase{"*.html", "/a/b/c.html", true},
        MatchCase{"*.html", "/a.html/b", false}, MatchCase{"*.html", "/x.htm", false},
        MatchCase{"robots.txt", "/robots.txt", true},
        MatchCase{"robots.txt", "/a/robots.txt", true},
        MatchCase{"robots.txt", "/robots.txt.bak", false}, MatchCase{"*", "/dir/", true},
        MatchCase{"?*", "/dir/", false}, MatchCase{"*.min.*", "/js/app.min.js", true},
        // Bytes beyond ASCII are literals.
        MatchCase{"/caf\xc3\xa9/*", "/caf\xc3\xa9/menu", true}));

struct ErrorCase {
  std::string pattern;
  std::string_view message;  // A substring of the error.
};

class PathGlobErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(PathGlobErrorTest, Refused) {
  absl::StatusOr<PathGlob> glob = PathGlob::Compile(GetParam().pattern);
  ASSERT_FALSE(glob.ok()) << GetParam().pattern;
  EXPECT_EQ(glob.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(glob.status().message()).find(GetParam().message), std::string::npos)
      << glob.status();
}

INSTANTIATE_TEST_SUITE_P(
    Table, PathGlobErrorTest,
    testing::Values(ErrorCase{"", "must not be empty"},
                    ErrorCase{"/" + std::string(256, 'a'), "limited to 256 bytes"},
                    ErrorCase{"/a\nb", "control characters"},
                    ErrorCase{std::string("/a\0b", 4), "control characters"},
                    ErrorCase{"/[ab]", "'[' is reserved"}, ErrorCase{"/a{b,c}", "'{' is reserved"},
                    ErrorCase{"/a\\*", "'\\' is reserved"},
                    ErrorCase{"/a//b", "empty segment ('//')"},
                    ErrorCase{"/a/../b", "'.' and '..' segments"},
                    ErrorCase{"/./b", "'.' and '..' segments"},
                    ErrorCase{"/a**", "'**' must be a whole segment"},
                    ErrorCase{"/**.js", "'**' must be a whole segment"},
                    ErrorCase{"/***", "'**' must be a whole segment"},
                    ErrorCase{"a/b.html", "cannot contain '/'"},
                    ErrorCase{"**", "needs a pattern starting with '/'"},
                    ErrorCase{"..", "'.' and '..' segments"}));

TEST(PathGlobTest, LongestPatternIsAccepted) {
  EXPECT_TRUE(PathGlob::Compile("/" + std::string(255, 'a')).ok());
}

TEST(PathGlobTest, ReportsItsPatternAndAnchoring) {
  absl::StatusOr<PathGlob> anchored = PathGlob::Compile("/a/*");
  absl::StatusOr<PathGlob> basename = PathGlob::Compile("*.html");
  ASSERT_TRUE(anchored.ok() && basename.ok());
  EXPECT_EQ(anchored->pattern(), "/a/*");
  EXPECT_TRUE(anchored->anchored());
  EXPECT_FALSE(basename->anchored());
}

// A backtracking matcher takes time exponential in the number of stars for
// "/*a*a*a...*b" against "/aaaa...": each star may end at any position. The
// automaton visits each (path byte, token) pair at most once: the steps are
// bounded by (path bytes) * (tokens), whatever the input.
struct WorstCase {
  std::string pattern;
  std::string path;
};

class PathGlobWorkTest : public testing::TestWithParam<WorstCase> {};

TEST_P(PathGlobWorkTest, StepsStayWithinBytesTimesTokens) {
  const WorstCase& c = GetParam();
  absl::StatusOr<PathGlob> glob = PathGlob::Compile(c.pattern);
  ASSERT_TRUE(glob.ok()) << glob.status();
  uint64_t steps = 0;
  EXPECT_FALSE(glob->Matches(c.path, &steps));
  const uint64_t bound = (c.path.size() + 1) * (c.pattern.size() + 1);
  EXPECT_LE(steps, bound) << c.pattern;
  EXPECT_GT(steps, c.path.size()) << "the counter must count";
}

std::string Repeat(std::string_view unit, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.append(unit);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PathGlobWorkTest,
    testing::Values(WorstCase{"/" + Repeat("*a", 40) + "b", "/" + std::string(8000, 'a')},
                    WorstCase{"/" + Repeat("?*", 60) + "z", "/" + std::string(8000, 'y')},
                    WorstCase{Repeat("/**", 40) + "/z", Repeat("/a", 4000)},
                    WorstCase{"*" + Repeat("a*", 80) + "b", "/" + std::string(8000, 'a')},
                    // Fewer than 64 tokens: the 64-bit automaton.
                    WorstCase{"/" + Repeat("*a", 20) + "b", "/" + std::string(8000, 'a')},
                    WorstCase{Repeat("/**", 20) + "/z", Repeat("/a", 4000)}));

// The syntax of path_glob.h, the slow way: backtracking over the pattern.
bool Reference(std::string_view p, std::string_view s) {
  if (p.empty()) return s.empty();
  if (p.starts_with("**")) {
    if (p.size() == 2) return true;  // Trailing "**": anything, '/' included.
    // "**/": zero or more whole segments, each ending in '/'.
    std::string_view rest = p.substr(3);
    if (Reference(rest, s)) return true;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '/' && Reference(rest, s.substr(i + 1))) return true;
    }
    return false;
  }
  if (p[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i) {
      if (Reference(p.substr(1), s.substr(i))) return true;
      if (i < s.size() && s[i] == '/') break;
    }
    return false;
  }
  if (s.empty()) return false;
  if (p[0] == '?') return s[0] != '/' && Reference(p.substr(1), s.substr(1));
  return p[0] == s[0] && Reference(p.substr(1), s.substr(1));
}

TEST(PathGlobTest, EveryShapeAgreesWithABacktrackingReference) {
  const std::vector<std::string> patterns = {"/**",       "/assets/**", "/a/*/c",   "*.html",
                                             "*",         "/a?c/**",    "/**/x.js", "/a/**/b/**",
                                             "a*b",       "*.tar.gz",   "/a/b",     "index.html",
                                             "/*/old/**", "/a/*.css",   "/?\?\?/**"};
  const std::vector<std::string> paths = {"/",           "/a",
                                          "/a/",         "/assets",
                                          "/assets/",    "/assets/x/y.js",
                                          "/abc/c",      "/a/b/c",
                                          "/a/b",        "/x.js",
                                          "/a/x.js",     "/a/b/x.js",
                                          "/index.html", "/d/index.html",
                                          "/x.html",     "/.html",
                                          "/f.tar.gz",   "/a/q/b/z",
                                          "/axb",        "/ab",
                                          "/abc/",       "/a/s.css",
                                          "/a/t/s.css",  "/q/old/z"};
  for (const std::string& pattern : patterns) {
    absl::StatusOr<PathGlob> glob = PathGlob::Compile(pattern);
    ASSERT_TRUE(glob.ok()) << pattern;
    for (const std::string& path : paths) {
      std::string_view subject = path;
      if (pattern[0] != '/') subject.remove_prefix(path.rfind('/') + 1);  // Basename patterns.
      EXPECT_EQ(glob->Matches(path), Reference(pattern, subject)) << pattern << " on " << path;
    }
  }
}

}  // namespace
}  // namespace sluice
