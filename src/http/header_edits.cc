#include "sluice/http/header_edits.h"

#include <algorithm>

#include "sluice/base/check.h"
#include "sluice/http/field_syntax.h"

namespace sluice {
namespace {

constexpr std::string_view kNotModifiedSkips[] = {"content-type", "content-language",
                                                  "content-disposition", "last-modified"};

void AppendLine(std::string* out, std::string_view name, std::string_view value) {
  out->append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

bool SkippedOnNotModified(std::string_view name) {
  return std::any_of(std::begin(kNotModifiedSkips), std::end(kNotModifiedSkips),
                     [&](std::string_view s) { return EqualsIgnoreCase(s, name); });
}

bool SkippedOnErrorPage(std::string_view name) {
  return EqualsIgnoreCase(name, "cache-control") || EqualsIgnoreCase(name, "expires");
}

bool Skipped(HeadKind kind, std::string_view name) {
  switch (kind) {
    case HeadKind::kNotModified:
      return SkippedOnNotModified(name);
    case HeadKind::kErrorPage:
      return SkippedOnErrorPage(name);
    case HeadKind::kNormal:
      break;
  }
  return false;
}

void RewriteHead(std::string_view head, std::span<const HeaderEdits* const> edits,
                 std::span<const HeaderField> extra, HeadKind kind, std::string* out) {
  SLUICE_CHECK(head.size() >= 4 && head.substr(head.size() - 4) == "\r\n\r\n",
               "a head to rewrite ends with an empty line");
  out->clear();
  const size_t status_end = head.find("\r\n");
  out->append(head.substr(0, status_end + 2));
  // A field survives unless a remove or set of its name comes in a later
  // rule. The server's own fields come before every rule; within one rule
  // remove goes first, then set, then append.
  auto overridden = [&](std::string_view name, size_t from_rule) {
    for (size_t r = from_rule; r < edits.size(); ++r) {
      const HeaderEdits& e = *edits[r];
      for (const std::string& n : e.remove) {
        if (EqualsIgnoreCase(n, name)) return true;
      }
      for (const HeaderField& f : e.set) {
        if (!Skipped(kind, f.name) && EqualsIgnoreCase(f.name, name)) {
          return true;
        }
      }
    }
    return false;
  };
  std::string_view rest = head.substr(status_end + 2, head.size() - status_end - 4);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (!overridden(name, 0)) out->append(line).append("\r\n");
  }
  for (size_t r = 0; r < edits.size(); ++r) {
    const HeaderEdits& e = *edits[r];
    for (size_t i = 0; i < e.set.size(); ++i) {
      const HeaderField& f = e.set[i];
      if (Skipped(kind, f.name)) continue;
      // Two sets of one name in a rule are a duplicate key the loader refuses.
      if (!overridden(f.name, r + 1)) AppendLine(out, f.name, f.value);
    }
    for (const HeaderField& f : e.append) {
      if (Skipped(kind, f.name)) continue;
      if (!overridden(f.name, r + 1)) AppendLine(out, f.name, f.value);
    }
  }
  for (const HeaderField& f : extra) AppendLine(out, f.name, f.value);
  out->append("\r\n");
}

}  // namespace sluice
