#include "sluice/http/path_glob.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace {

absl::Status Invalid(std::string_view pattern, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("path pattern \"", std::string(pattern), "\": ", std::string(what)));
}

absl::Status CheckBytes(std::string_view pattern) {
  if (pattern.empty()) return absl::InvalidArgumentError("a path pattern must not be empty");
  if (pattern.size() > PathGlob::kPatternBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("a path pattern is limited to ", PathGlob::kPatternBytesMax, " bytes"));
  }
  for (unsigned char c : pattern) {
    if (c < 0x20 || c == 0x7f) return Invalid(pattern, "control characters are not allowed");
    if (c == '[' || c == ']' || c == '{' || c == '}' || c == '\\') {
      return Invalid(pattern, absl::StrCat("'", std::string(1, static_cast<char>(c)),
                                           "' is reserved; only '*', '**' and '?' are special"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSegment(std::string_view pattern, std::string_view segment, bool last) {
  if (segment.empty() && !last) return Invalid(pattern, "empty segment ('//') never matches");
  if (segment == "." || segment == "..") {
    return Invalid(pattern, "'.' and '..' segments never match: paths are normalised first");
  }
  if (segment != "**" && segment.find("**") != std::string_view::npos) {
    return Invalid(pattern,
                   "'**' must be a whole segment (as in /assets/** or /**/x.js); use '*' "
                   "within a segment");
  }
  return absl::OkStatus();
}

absl::Status CheckAnchored(std::string_view pattern) {
  std::string_view rest = pattern.substr(1);
  while (true) {
    const size_t slash = rest.find('/');
    const bool last = slash == std::string_view::npos;
    if (absl::Status st = CheckSegment(pattern, rest.substr(0, slash), last); !st.ok()) return st;
    if (last) return absl::OkStatus();
    rest.remove_prefix(slash + 1);
  }
}

absl::Status CheckBasename(std::string_view pattern) {
  if (pattern.find('/') != std::string_view::npos) {
    return Invalid(pattern,
                   "a pattern without a leading '/' matches the last path segment and cannot "
                   "contain '/'; start it with '/' to match from the root");
  }
  if (pattern.find("**") != std::string_view::npos) {
    return Invalid(pattern, "'**' crosses segments: it needs a pattern starting with '/'");
  }
  return CheckSegment(pattern, pattern, /*last=*/true);
}

}  // namespace

absl::StatusOr<PathGlob> PathGlob::Compile(std::string_view pattern) {
  if (absl::Status st = CheckBytes(pattern); !st.ok()) return st;
  PathGlob glob;
  glob.pattern_ = std::string(pattern);
  glob.anchored_ = pattern.front() == '/';
  absl::Status st = glob.anchored_ ? CheckAnchored(pattern) : CheckBasename(pattern);
  if (!st.ok()) return st;
  glob.Tokenize();
  return glob;
}

void PathGlob::Tokenize() {
  bool literal_only = true;
  const std::string_view p = pattern_;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '*' && i + 1 < p.size() && p[i + 1] == '*') {
      // CheckSegment made "**" a whole segment: followed by '/' or the end.
      const bool at_end = i + 2 == p.size();
      if (at_end) {
        tokens_.push_back({Kind::kGlobStar, 0});
      } else {
        tokens_.push_back({Kind::kSegmentsEntry, 0});
        tokens_.push_back({Kind::kSegments, 0});
      }
      i += at_end ? 1 : 2;  // "**/" consumes its slash.
      literal_only = false;
    } else if (c == '*') {
      tokens_.push_back({Kind::kStar, 0});
      literal_only = false;
    } else if (c == '?') {
      tokens_.push_back({Kind::kAnyByte, 0});
      literal_only = false;
    } else {
      tokens_.push_back({Kind::kLiteral, c});
    }
  }
  // The leading literal tokens (one per pattern byte) are compared as bytes.
  prefix_len_ = 0;
  while (prefix_len_ < tokens_.size() && tokens_[prefix_len_].kind == Kind::kLiteral) {
    ++prefix_len_;
  }
  // Shapes most rules have, matched without the automaton.
  const bool rest_literal = tokens_.size() >= 2 && tokens_[0].kind == Kind::kStar &&
                            std::all_of(tokens_.begin() + 1, tokens_.end(),
                                        [](const Token& t) { return t.kind == Kind::kLiteral; });
  if (literal_only) {
    shape_ = Shape::kLiteral;
  } else if (prefix_len_ + 1 == tokens_.size() && tokens_.back().kind == Kind::kGlobStar) {
    shape_ = Shape::kPrefixGlobStar;
  } else if (!anchored_ && rest_literal) {
    shape_ = Shape::kStarSuffix;
  } else {
    shape_ = Shape::kGeneral;
  }
}

bool PathGlob::Matches(std::string_view path) const {
  uint64_t steps = 0;
  return Matches(path, &steps);
}

bool PathGlob::Matches(std::string_view path, uint64_t* steps) const {
  if (!anchored_) {
    const size_t slash = path.rfind('/');
    if (slash != std::string_view::npos) path.remove_prefix(slash + 1);
  }
  switch (shape_) {
    case Shape::kLiteral:
      ++*steps;
      return path == pattern_;
    case Shape::kPrefixGlobStar:  // "/assets/**": the bytes before "**".
      ++*steps;
      return path.size() >= prefix_len_ &&
             path.compare(0, prefix_len_, pattern_, 0, prefix_len_) == 0;
    case Shape::kStarSuffix:  // "*.html" on the last segment.
      ++*steps;
      return path.size() >= pattern_.size() - 1 &&
             path.ends_with(std::string_view(pattern_).substr(1));
    case Shape::kGeneral:
      break;
  }
  // The literal bytes before the first wildcard are compared at once; the
  // automaton runs from there.
  if (path.size() < prefix_len_ || path.compare(0, prefix_len_, pattern_, 0, prefix_len_) != 0) {
    ++*steps;
    return false;
  }
  path.remove_prefix(prefix_len_);
  return tokens_.size() < 64 ? MatchSmall(path, steps) : MatchLarge(path, steps);
}

// live bit i: the automaton may be before token i; bit m: accepted so far.
// Epsilon moves only go forward (every wildcard may match ""), so one forward
// sweep closes a set. Tokens before prefix_len_ were matched already.
bool PathGlob::MatchSmall(std::string_view path, uint64_t* steps) const {
  const size_t m = tokens_.size();
  auto close = [&](uint64_t set) {
    for (size_t i = prefix_len_; i < m; ++i) {
      if (!(set >> i & 1)) continue;
      const Kind kind = tokens_[i].kind;
      if (kind == Kind::kStar || kind == Kind::kGlobStar) set |= uint64_t{2} << i;
      if (kind == Kind::kSegmentsEntry) set |= uint64_t{6} << i;
    }
    return set;
  };
  uint64_t live = close(uint64_t{1} << prefix_len_);
  for (const char c : path) {
    uint64_t next = 0;
    for (uint64_t rest = live & ((uint64_t{1} << m) - 1); rest != 0; rest &= rest - 1) {
      const size_t i = static_cast<size_t>(__builtin_ctzll(rest));
      const Token& t = tokens_[i];
      if (t.kind == Kind::kSegmentsEntry) continue;
      ++*steps;
      switch (t.kind) {
        case Kind::kLiteral:
          if (c == t.c) next |= uint64_t{2} << i;
          break;
        case Kind::kAnyByte:
          if (c != '/') next |= uint64_t{2} << i;
          break;
        case Kind::kStar:
          if (c != '/') next |= uint64_t{1} << i;
          break;
        case Kind::kGlobStar:
          next |= uint64_t{1} << i;
          break;
        case Kind::kSegments:
          next |= uint64_t{1} << i;
          if (c == '/') next |= uint64_t{2} << i;
          break;
        case Kind::kSegmentsEntry:
          break;
      }
    }
    if (next == 0) return false;
    live = close(next);
  }
  return live >> m & 1;
}

bool PathGlob::MatchLarge(std::string_view path, uint64_t* steps) const {
  const size_t m = tokens_.size();
  std::array<bool, kPatternBytesMax + 1> live{};
  std::array<bool, kPatternBytesMax + 1> next{};
  auto close = [&](std::array<bool, kPatternBytesMax + 1>& set) {
    for (size_t i = prefix_len_; i < m; ++i) {
      if (!set[i]) continue;
      const Kind kind = tokens_[i].kind;
      if (kind == Kind::kStar || kind == Kind::kGlobStar) set[i + 1] = true;
      if (kind == Kind::kSegmentsEntry) set[i + 1] = set[i + 2] = true;
    }
  };
  live[prefix_len_] = true;
  close(live);
  for (const char c : path) {
    std::fill(next.begin(), next.begin() + static_cast<std::ptrdiff_t>(m + 1), false);
    bool any = false;
    for (size_t i = prefix_len_; i < m; ++i) {
      if (!live[i] || tokens_[i].kind == Kind::kSegmentsEntry) continue;
      ++*steps;
      const Token& t = tokens_[i];
      switch (t.kind) {
        case Kind::kLiteral:
          if (c == t.c) next[i + 1] = any = true;
          break;
        case Kind::kAnyByte:
          if (c != '/') next[i + 1] = any = true;
          break;
        case Kind::kStar:
          if (c != '/') next[i] = any = true;
          break;
        case Kind::kGlobStar:
          next[i] = any = true;
          break;
        case Kind::kSegments:
          next[i] = any = true;
          if (c == '/') next[i + 1] = true;
          break;
        case Kind::kSegmentsEntry:
          break;
      }
    }
    if (!any) return false;
    close(next);
    std::swap(live, next);
  }
  return live[m];
}

}  // namespace sluice
