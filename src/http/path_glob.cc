#include "sluice/http/path_glob.h"

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
  literal_only_ = true;
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
      literal_only_ = false;
    } else if (c == '*') {
      tokens_.push_back({Kind::kStar, 0});
      literal_only_ = false;
    } else if (c == '?') {
      tokens_.push_back({Kind::kAnyByte, 0});
      literal_only_ = false;
    } else {
      tokens_.push_back({Kind::kLiteral, c});
    }
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
  if (literal_only_) {
    ++*steps;
    return path == pattern_;
  }
  // live[i]: the automaton may be before token i; live[m]: accepted so far.
  // Epsilon moves only go forward (every wildcard may match ""), so one
  // forward sweep closes a set.
  const size_t m = tokens_.size();
  std::array<bool, kPatternBytesMax + 1> live{};
  std::array<bool, kPatternBytesMax + 1> next{};
  auto close = [&](std::array<bool, kPatternBytesMax + 1>& set) {
    for (size_t i = 0; i < m; ++i) {
      if (!set[i]) continue;
      const Kind kind = tokens_[i].kind;
      if (kind == Kind::kStar || kind == Kind::kGlobStar) set[i + 1] = true;
      if (kind == Kind::kSegmentsEntry) set[i + 1] = set[i + 2] = true;
    }
  };
  live[0] = true;
  close(live);
  for (const char c : path) {
    next.fill(false);
    bool any = false;
    for (size_t i = 0; i < m; ++i) {
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
