#include "sluice/serve/sites.h"

#include <algorithm>

#include "absl/strings/string_view.h"
#include "sluice/base/check.h"
#include "sluice/http/path.h"

namespace sluice {
namespace {

bool IsHostLabelByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Lower-case dot-separated labels, or a bracketed IPv6 literal.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > kHostBytesMax) return false;
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') return false;
    return std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.';
    });
  }
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (!IsHostLabelByte(c) || ++label > 63) {
      return false;
    }
  }
  return label > 0;
}

bool MethodFits(const RuleConfig& rule, std::string_view method) {
  if (rule.methods.empty()) return true;
  // HEAD is GET without the body (RFC 9110 §9.3.2): a GET rule covers it.
  for (const std::string& m : rule.methods) {
    if (m == method || (method == "HEAD" && m == "GET")) return true;
  }
  return false;
}

}  // namespace

std::string_view NormaliseHost(std::string_view host, char* buf, size_t buf_size) {
  // Longest acceptable value: a name, ':' and a 5-digit port.
  if (host.size() > kHostBytesMax + 6 || host.size() > buf_size) return {};
  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  }
  std::string_view h(buf, host.size());
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return {};
    const std::string_view after = h.substr(close + 1);
    if (!after.empty() && (after[0] != ':' || after.size() == 1)) return {};
    h = h.substr(0, close + 1);
  } else if (const size_t colon = h.find(':'); colon != std::string_view::npos) {
    const std::string_view port = h.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return {};
    }
    h = h.substr(0, colon);
  }
  if (!h.empty() && h.back() == '.' && h.front() != '[') h.remove_suffix(1);
  return IsHostName(h) ? h : std::string_view();
}

std::string NormaliseHost(std::string_view host) {
  char buf[kHostBytesMax + 8];
  return std::string(NormaliseHost(host, buf, sizeof(buf)));
}

SiteIndex::SiteIndex(const std::vector<SiteConfig>& sites) {
  for (size_t i = 0; i < sites.size(); ++i) {
    const SiteConfig& site = sites[i];
    if (site.is_default) default_ = i;
    for (const std::string& host : site.hosts) {
      if (host.starts_with("*.")) {
        wildcard_.emplace(host.substr(2), i);
      } else {
        exact_.emplace(host, i);
      }
    }
  }
}

size_t SiteIndex::Select(std::string_view host_header) const {
  char buf[kHostBytesMax + 8];
  const std::string_view host = NormaliseHost(host_header, buf, sizeof(buf));
  if (!host.empty()) {
    // absl's string hash is transparent: an absl::string_view (not always
    // std::string_view in Debian's build) finds a std::string.
    if (auto it = exact_.find(absl::string_view(host.data(), host.size())); it != exact_.end()) {
      return it->second;
    }
    // Leftmost dot first: the longest suffix wins.
    for (size_t dot = host.find('.'); dot != std::string_view::npos;
         dot = host.find('.', dot + 1)) {
      const std::string_view suffix = host.substr(dot + 1);
      if (auto it = wildcard_.find(absl::string_view(suffix.data(), suffix.size()));
          it != wildcard_.end()) {
        return it->second;
      }
    }
  }
  return default_;
}

void MatchRules(const SiteConfig& site, std::string_view path, std::string_view method,
                RuleMatch* out) {
  out->Clear();
  SLUICE_CHECK(site.rules.size() <= kRulesPerSiteMax, "the loader bounds rules per site");
  for (size_t i = 0; i < site.rules.size(); ++i) {
    const RuleConfig& rule = site.rules[i];
    if (!MethodFits(rule, method) || !rule.match.Matches(path)) continue;
    out->bits[i / 64] |= uint64_t{1} << (i % 64);
    out->any = true;
    if (!rule.headers.empty()) ++out->header_rules;
    if (rule.cors.has_value()) out->cors = &*rule.cors;
    if (rule.redirect.has_value()) {
      out->redirect = &*rule.redirect;
      out->redirect_match = &rule.match;
    }
    if (rule.spa_fallback.has_value()) out->spa_fallback = &*rule.spa_fallback;
    if (rule.clean_urls.has_value()) out->clean_urls = *rule.clean_urls;
    if (rule.listing.has_value()) out->listing = rule.listing;
  }
}

size_t CollectHeaderEdits(const SiteConfig& site, const RuleMatch& m, const HeaderEdits** out) {
  size_t n = 0;
  for (size_t i = 0; i < site.rules.size() && n < m.header_rules; ++i) {
    if (m.matched(i) && !site.rules[i].headers.empty()) out[n++] = &site.rules[i].headers;
  }
  return n;
}

const std::string* ErrorPageFor(const SiteConfig& site, const RuleMatch& m, int status) {
  for (size_t i = site.rules.size(); i-- > 0;) {
    if (!m.matched(i)) continue;
    for (const auto& [code, file] : site.rules[i].error_pages) {
      if (code == status) return &file;
    }
  }
  return nullptr;
}

std::string RedirectTarget(const RedirectRule& r, const PathGlob& match, std::string_view path,
                           std::string_view query) {
  std::string location = r.to;
  const std::string& pattern = match.pattern();
  if (pattern.size() >= 3 && pattern.ends_with("/**") && r.to.ends_with('/')) {
    // The literal prefix up to the "/**" (the glob may have wildcards before
    // it; then its prefix is what the path has up to the same depth).
    const std::string_view prefix(pattern.data(), pattern.size() - 2);  // Keeps the '/'.
    size_t depth = static_cast<size_t>(std::count(prefix.begin(), prefix.end(), '/'));
    size_t at = 0;
    while (depth > 0 && at < path.size()) {
      if (path[at++] == '/') --depth;
    }
    if (depth == 0) location.append(EncodePath(path.substr(at)));
  }
  if (r.keep_query && !query.empty()) location.append("?").append(query);
  return location;
}

}  // namespace sluice
