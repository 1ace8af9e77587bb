// Virtual hosts and their per-path rules (issue 12), as the server uses
// them: the configuration's sites (server/config_file.h parses and validates
// them), an index from Host to site, and the rules that fit one request.
// Built once per configuration generation off the data path; immutable
// afterwards, so every worker reads it without synchronisation. Selecting a
// site and matching rules allocate nothing.
//
// Rule semantics: every rule of a site whose `match` (and `methods`, when
// given) fits the request applies, in file order. Header edits accumulate in
// that order (http/header_edits.h); for the other keys (cors, redirect,
// spa_fallback, clean_urls, listing, each error page) the last matching rule
// that sets the key wins, so specific rules go after general ones, as in CSS.
#ifndef SLUICE_SERVE_SITES_H_
#define SLUICE_SERVE_SITES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sluice/base/unique_fd.h"
#include "sluice/http/cors.h"
#include "sluice/http/header_edits.h"
#include "sluice/http/path_glob.h"

namespace sluice {

inline constexpr size_t kRulesPerSiteMax = 256;
inline constexpr size_t kHostBytesMax = 253;  // RFC 1035 §2.3.4.

struct RedirectRule {
  // "/path" or "http(s)://...". When the rule's match ends in "/**" and `to`
  // ends in '/', the part of the path below the match's prefix is appended:
  // match "/old/**", to "/new/" sends /old/a/b.html to /new/a/b.html.
  std::string to;
  int status = 301;
  bool keep_query = false;
};

// Clean URLs: /about served from /about.html; kRedirect also sends requests
// for /about.html to /about (and /dir/index.html to /dir/).
enum class CleanUrls : uint8_t { kOff, kOn, kRedirect };

struct RuleConfig {
  explicit RuleConfig(PathGlob glob) : match(std::move(glob)) {}

  PathGlob match;
  std::vector<std::string> methods;  // Empty: any method.
  HeaderEdits headers;
  std::optional<CorsPolicy> cors;
  std::optional<RedirectRule> redirect;
  // The file answering navigations to missing paths ("/index.html" for
  // `true`); "" for `false` (turns off what an earlier rule turned on).
  std::optional<std::string> spa_fallback;
  std::vector<std::pair<int, std::string>> error_pages;  // Status → "/file".
  std::optional<CleanUrls> clean_urls;
  std::optional<bool> listing;
};

struct SiteConfig {
  std::vector<std::string> hosts;  // Lower-case, no port: "example.com", "*.example.com".
  std::string root;                // "": the top-level `root`.
  bool is_default = false;
  std::vector<RuleConfig> rules;
  // Set when a generation is built: index into ServeGeneration::roots.
  size_t root_index = 0;
};

// "Example.COM:8080" → "example.com", "[::1]:80" → "[::1]"; "" when the value
// cannot be a host name. Writes into `buf` (kHostBytesMax + 3 bytes at
// least), allocating nothing.
std::string_view NormaliseHost(std::string_view host, char* buf, size_t buf_size);
std::string NormaliseHost(std::string_view host);

// Host → site.
class SiteIndex {
 public:
  SiteIndex() = default;
  // `sites` must have unique host names (the loader refuses duplicates).
  explicit SiteIndex(const std::vector<SiteConfig>& sites);
  // The site for a Host field's value: case-insensitive, port and a trailing
  // dot ignored; an exact name first, then the wildcard with the longest
  // suffix ("*.example.com" matches "a.example.com" and "a.b.example.com",
  // not "example.com"), else the default site (the one marked, or the
  // first). Undefined for an index of no sites.
  size_t Select(std::string_view host_header) const;

 private:
  absl::flat_hash_map<std::string, size_t> exact_;
  absl::flat_hash_map<std::string, size_t> wildcard_;  // "example.com" for "*.example.com".
  size_t default_ = 0;
};

// The rules of one site that fit one request, and what they decide.
struct RuleMatch {
  void Clear() { *this = RuleMatch(); }
  bool matched(size_t i) const { return (bits[i / 64] >> (i % 64)) & 1; }

  uint64_t bits[kRulesPerSiteMax / 64] = {};
  size_t header_rules = 0;  // Matching rules with header edits.
  const CorsPolicy* cors = nullptr;
  const RedirectRule* redirect = nullptr;
  const PathGlob* redirect_match = nullptr;
  const std::string* spa_fallback = nullptr;  // Null or "": off.
  CleanUrls clean_urls = CleanUrls::kOff;
  std::optional<bool> listing;  // Unset: --directory_listing decides.
  bool any = false;             // Some rule matched.
};

// Fills *out with the rules of `site` that fit `path` (decoded, normalised)
// and `method`.
void MatchRules(const SiteConfig& site, std::string_view path, std::string_view method,
                RuleMatch* out);
// The matching rules' header edits in file order into out[0..n), n returned
// (out has room for kRulesPerSiteMax).
size_t CollectHeaderEdits(const SiteConfig& site, const RuleMatch& m, const HeaderEdits** out);
// The error page the matching rules name for `status`, or null.
const std::string* ErrorPageFor(const SiteConfig& site, const RuleMatch& m, int status);
// The Location of a redirect rule for `path` (and `query`, without '?').
std::string RedirectTarget(const RedirectRule& r, const PathGlob& match, std::string_view path,
                           std::string_view query);

// One configuration generation: what requests are answered by. Built by the
// server (at start-up and on each SIGHUP), immutable, shared by the workers;
// a request keeps the generation it started with.
struct ServeGeneration {
  uint64_t id = 1;
  std::vector<SiteConfig> sites;  // Never empty: one site without hosts or rules when no file.
  SiteIndex index;
  // Distinct document roots, absolute (symlinks kept), and each one opened
  // (O_DIRECTORY) by the server; SiteConfig::root_index points here.
  std::vector<std::string> roots;
  std::vector<UniqueFd> root_fds;
  // Settings a reload may change, besides the sites.
  std::string cache_control;
  bool precompressed = true;
  size_t max_ranges = 16;
  bool directory_listing = false;  // --directory_listing.
  bool any_listing = false;        // Some rule turns listings on.

  const SiteConfig& Select(std::string_view host) const {
    return sites.size() == 1 ? sites[0] : sites[index.Select(host)];
  }
};

}  // namespace sluice

#endif  // SLUICE_SERVE_SITES_H_
