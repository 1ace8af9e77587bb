#include "sluice/http/path.h"

#include <cstddef>

namespace sluice {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != prefix[i]) return false;
  }
  return true;
}

// absolute-form (RFC 9112 §3.2.2): the server must accept it; the authority
// replaces Host in choosing the site (§3.2.2) but is never part of a
// filesystem path. Leaves `*target` as the origin-form path (and
// a query that followed an empty path in `out`).
PathError StripAbsoluteForm(std::string_view* target, ResolvedPath* out) {
  size_t scheme_len = 0;
  if (StartsWithIgnoreCase(*target, "http://")) {
    scheme_len = 7;
  } else if (StartsWithIgnoreCase(*target, "https://")) {
    scheme_len = 8;
  } else {
    return target->find('/') == std::string_view::npos ? PathError::kNotAPath
                                                       : PathError::kBadTarget;
  }
  // The authority ends at the first '/' or '?' (RFC 3986 §3.2).
  const size_t end = target->find_first_of("/?", scheme_len);
  if (end == scheme_len) return PathError::kBadTarget;  // Empty authority.
  out->authority = target->substr(
      scheme_len, end == std::string_view::npos ? std::string_view::npos : end - scheme_len);
  // userinfo@host: only the host names the site.
  if (const size_t at = out->authority.rfind('@'); at != std::string_view::npos) {
    out->authority.remove_prefix(at + 1);
  }
  if (end == std::string_view::npos) {
    *target = "/";
  } else if ((*target)[end] == '?') {
    // "http://h?q": an empty path with a query; the path is "/".
    out->query = target->substr(end + 1);
    out->has_query = true;
    *target = "/";
  } else {
    *target = target->substr(end);
  }
  return PathError::kOk;
}

// Percent-decoding (RFC 3986 §2.1), once; a decoded NUL is refused.
bool PercentDecode(std::string_view path, std::string* decoded) {
  decoded->reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size()) return false;
      const int hi = HexValue(path[i + 1]);
      const int lo = HexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return false;
      i += 2;
    }
    decoded->push_back(c);
  }
  return true;
}

// Splits the decoded path on '/' and removes dot segments (RFC 3986 §5.2.4),
// refusing any ".." that would climb above the root.
PathError Normalise(const std::string& decoded, ResolvedPath* out) {
  std::string& rel = out->relative;
  rel.reserve(decoded.size());
  size_t i = 0;
  while (i < decoded.size()) {
    size_t j = decoded.find('/', i);
    if (j == std::string::npos) j = decoded.size();
    const std::string_view seg(decoded.data() + i, j - i);
    if (seg.empty() || seg == ".") {
      // Skip.
    } else if (seg == "..") {
      if (rel.empty()) return PathError::kAboveRoot;
      const size_t cut = rel.rfind('/');
      rel.resize(cut == std::string::npos ? 0 : cut);
    } else {
      if (!rel.empty()) rel.push_back('/');
      rel.append(seg);
    }
    i = j + 1;
  }
  // Recompute after normalisation: a dot segment removed by ".." does not count.
  out->has_dot_segment =
      !rel.empty() && (rel.front() == '.' || rel.find("/.") != std::string::npos);
  const char last = decoded.empty() ? '/' : decoded.back();
  const bool ends_with_dot = decoded.size() >= 2 && decoded.ends_with("/.");
  const bool ends_with_dotdot = decoded.ends_with("/..");
  out->trailing_slash = last == '/' || ends_with_dot || ends_with_dotdot;
  return PathError::kOk;
}

}  // namespace

PathError ResolveTarget(std::string_view target, ResolvedPath* out) {
  // Reset field by field: `relative` keeps its capacity between requests.
  out->relative.clear();
  out->trailing_slash = false;
  out->has_dot_segment = false;
  out->query = {};
  out->has_query = false;
  out->authority = {};
  if (target.empty()) return PathError::kBadTarget;
  if (target == "*") return PathError::kNotAPath;
  // Raw controls (NUL included) never belong in a target (RFC 3986 §2); the
  // parser refuses them already, but this function promises it on its own.
  for (unsigned char c : target) {
    if (c < 0x21 || c == 0x7f) return PathError::kBadTarget;
  }
  if (target.find('#') != std::string_view::npos) return PathError::kBadTarget;
  if (target.front() != '/') {
    if (PathError e = StripAbsoluteForm(&target, out); e != PathError::kOk) return e;
  }
  std::string_view path = target;
  if (const size_t q = target.find('?'); q != std::string_view::npos && !out->has_query) {
    path = target.substr(0, q);
    out->query = target.substr(q + 1);
    out->has_query = true;
  }
  std::string decoded;
  if (!PercentDecode(path, &decoded)) return PathError::kBadTarget;
  return Normalise(decoded, out);
}

std::string EncodePath(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (unsigned char c : path) {
    const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '/' || c == '-' || c == '.' || c == '_' || c == '~' || c == '!' ||
                      c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
                      c == '+' || c == ',' || c == ';' || c == '=' || c == ':' || c == '@';
    if (safe) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace sluice
