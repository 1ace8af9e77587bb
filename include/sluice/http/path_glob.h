// A compiled glob over request paths, for per-path rules. Compiled once at
// configuration load; matching is const and allocation-free, so any thread
// may share one PathGlob.
//
// Syntax (case-sensitive, like the paths it matches; no escapes):
//   ?      one byte other than '/'
//   *      zero or more bytes other than '/'
//   **     a whole segment only: "/assets/**" at the end matches every path
//          below /assets/ ("/assets/" itself included, "/assets" not);
//          "/**/x.js" in the middle matches zero or more whole segments
//          ("/x.js", "/a/x.js", "/a/b/x.js")
//   other  itself; '[', ']', '{', '}' and '\' are reserved and refused
// A pattern starting with '/' is matched against the whole path. One without
// a leading '/' ("*.html", "robots.txt") is matched against the last segment
// only (the basename: "" for a path ending in '/'), must not contain '/' and
// cannot use '**'.
//
// Paths given to Matches() are the decoded, normalised request path starting
// with '/' (no query, no dot-segments, no empty segments); the patterns refuse
// "//", "." and ".." segments because such paths never reach them.
//
// Matching simulates the pattern's automaton over the path, one pass, every
// live position at once: at most (tokens + 1) steps per path byte, never
// backtracking, so a hostile path cannot make a pattern slow.
#ifndef SLUICE_HTTP_PATH_GLOB_H_
#define SLUICE_HTTP_PATH_GLOB_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

class PathGlob {
 public:
  static constexpr size_t kPatternBytesMax = 256;

  // InvalidArgument, naming what is wrong, for a pattern outside the syntax.
  static absl::StatusOr<PathGlob> Compile(std::string_view pattern);

  bool Matches(std::string_view path) const;
  // The same, adding to *steps the automaton steps taken (for tests that
  // bound the work on pathological inputs).
  bool Matches(std::string_view path, uint64_t* steps) const;

  const std::string& pattern() const { return pattern_; }
  // True for patterns starting with '/', false for basename patterns.
  bool anchored() const { return anchored_; }

 private:
  enum class Kind : uint8_t {
    kLiteral,   // c_ exactly.
    kAnyByte,   // '?': one byte, not '/'.
    kStar,      // '*': zero or more bytes, not '/'.
    kGlobStar,  // Trailing "**": zero or more bytes, '/' included.
    // "**/" inside a pattern is "" or any bytes ending in '/': two tokens, an
    // entry that may skip the pair or enter it, and the bytes up to a '/'.
    kSegmentsEntry,  // No byte: epsilon to the next token or past it.
    kSegments,       // Any byte stays; '/' may also leave.
  };
  struct Token {
    Kind kind;
    char c;
  };

  // What most rules look like, matched with one comparison.
  enum class Shape : uint8_t {
    kLiteral,         // No wildcard: equality.
    kPrefixGlobStar,  // Literal bytes, then a trailing "**": a prefix test.
    kStarSuffix,      // Basename "*" then literal bytes ("*.html"): a suffix test.
    kGeneral,         // The automaton.
  };

  PathGlob() = default;
  void Tokenize();
  // The automaton over what follows the literal prefix: a 64-bit set of
  // live tokens when there are fewer than 64, else arrays.
  bool MatchSmall(std::string_view path, uint64_t* steps) const;
  bool MatchLarge(std::string_view path, uint64_t* steps) const;

  std::string pattern_;
  bool anchored_ = false;
  Shape shape_ = Shape::kGeneral;
  size_t prefix_len_ = 0;      // Leading literal tokens = leading pattern bytes.
  std::vector<Token> tokens_;  // At most kPatternBytesMax.
};

}  // namespace sluice

#endif  // SLUICE_HTTP_PATH_GLOB_H_
