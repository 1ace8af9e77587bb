// Fuzzes ResolveTarget: a target that resolves gives a relative path that
// cannot name anything above the root (no leading '/', no empty, "." or ".."
// segments, no NUL), and encoding that path back and resolving it again gives
// the same path, the same trailing slash and the same dot-segment verdict.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sluice/http/path.h"

namespace {

using sluice::PathError;
using sluice::ResolvedPath;

[[noreturn]] void Fail(const char* what, std::string_view target, std::string_view relative) {
  std::fprintf(stderr, "path_fuzz: %s (target '%.*s', relative '%.*s')\n", what,
               static_cast<int>(target.size()), target.data(), static_cast<int>(relative.size()),
               relative.data());
  std::abort();
}

void CheckRelative(std::string_view target, std::string_view rel) {
  if (rel.empty()) return;  // The root itself.
  if (rel.front() == '/') Fail("leading '/'", target, rel);
  if (rel.find('\0') != std::string_view::npos) Fail("NUL in the path", target, rel);
  size_t start = 0;
  while (true) {
    const size_t slash = rel.find('/', start);
    const std::string_view seg =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty()) Fail("empty segment", target, rel);
    if (seg == "." || seg == "..") Fail("dot segment", target, rel);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

bool HasDotStart(std::string_view rel) {
  if (rel.empty()) return false;
  if (rel.front() == '.') return true;
  return rel.find("/.") != std::string_view::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The parser refuses an empty request-target, so ResolveTarget never sees
  // one (it would read target.front() of an empty view).
  if (size == 0) return 0;
  const std::string copy(reinterpret_cast<const char*>(data), size);
  const std::string_view target = copy;
  ResolvedPath out;
  const PathError err = sluice::ResolveTarget(target, &out);
  if (err != PathError::kOk) return 0;
  CheckRelative(target, out.relative);
  if (out.has_dot_segment != HasDotStart(out.relative)) {
    Fail("has_dot_segment disagrees with the path", target, out.relative);
  }
  if (out.has_query && target.find('?') == std::string_view::npos) {
    Fail("a query without '?'", target, out.relative);
  }

  // Round trip through EncodePath (as a Location header would).
  std::string again = "/" + sluice::EncodePath(out.relative);
  if (out.trailing_slash && !out.relative.empty()) again.push_back('/');
  ResolvedPath back;
  if (sluice::ResolveTarget(again, &back) != PathError::kOk) {
    Fail("the encoded path does not resolve", again, out.relative);
  }
  if (back.relative != out.relative) Fail("round trip changed the path", again, back.relative);
  if (!out.relative.empty() && back.trailing_slash != out.trailing_slash) {
    Fail("round trip changed the trailing slash", again, back.relative);
  }
  if (back.has_dot_segment != out.has_dot_segment) {
    Fail("round trip changed the dot-segment verdict", again, back.relative);
  }
  return 0;
}
