#include "sluice/server/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <limits>

// Header-only, without exceptions: the build defines TOML_HEADER_ONLY=1 and
// TOML_EXCEPTIONS=0 for this file alone, so parse() returns a parse_result
// and no toml++ symbol is shared with any other translation unit.
#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sluice/base/unique_fd.h"
#include "sluice/http/field_syntax.h"

namespace sluice {
namespace {

constexpr FlagKey kFlagKeys[] = {
    {"root", FlagType::kString},
    {"listen", FlagType::kString},
    {"threads", FlagType::kInt},
    {"multishot_recv", FlagType::kBool},
    {"sqpoll", FlagType::kBool},
    {"sqpoll_idle", FlagType::kDuration},
    {"backlog", FlagType::kInt},
    {"defer_accept", FlagType::kDuration},
    {"drain_timeout", FlagType::kDuration},
    {"drain_delay", FlagType::kDuration},
    {"health_path", FlagType::kString},
    {"ready_path", FlagType::kString},
    {"log_health_checks", FlagType::kBool},
    {"header_timeout", FlagType::kDuration},
    {"keepalive_timeout", FlagType::kDuration},
    {"send_timeout", FlagType::kDuration},
    {"max_connections", FlagType::kInt},
    {"file_cache_entries", FlagType::kInt64},
    {"file_cache_bytes", FlagType::kInt64},
    {"file_cache_valid", FlagType::kDuration},
    {"small_file_bytes", FlagType::kInt64},
    {"metrics_path", FlagType::kString},
    {"metrics_allow", FlagType::kString},
    {"metrics_listen", FlagType::kString},
    {"trusted_proxies", FlagType::kString},
    {"forwarded_sources", FlagType::kString},
    {"proxy_protocol", FlagType::kBool},
    {"max_connections_per_ip", FlagType::kInt},
    {"access_log", FlagType::kString},
    {"access_log_format", FlagType::kString},
    {"log_format", FlagType::kString},
    {"user", FlagType::kString},
    {"group", FlagType::kString},
    {"max_request_line", FlagType::kInt},
    {"max_header_bytes", FlagType::kInt},
    {"max_headers", FlagType::kInt},
    {"max_ranges", FlagType::kInt},
    {"cache_control", FlagType::kString},
    {"precompressed", FlagType::kBool},
    {"directory_listing", FlagType::kBool},
    {"directory_listing_entries_max", FlagType::kInt64},
    {"directory_listing_cache_bytes", FlagType::kInt64},
    {"blocking_pool_threads", FlagType::kInt},
    {"blocking_pool_queue", FlagType::kInt},
    {"mime_types", FlagType::kString},
};

// Fields whose value the server computes from the file and the connection;
// a rule changing them would break the message's framing or encoding.
constexpr std::string_view kServerOwnedFields[] = {
    "connection", "content-encoding", "content-length",    "content-range", "keep-alive",
    "te",         "trailer",          "transfer-encoding", "upgrade",
};

std::string Quoted(std::string_view s) { return absl::StrCat("\"", std::string(s), "\""); }

std::string Join(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out.append(", ");
    out.append(n);
  }
  return out;
}

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

}  // namespace

std::span<const FlagKey> ConfigFlagKeys() { return kFlagKeys; }

const SiteConfig* ConfigFile::SelectSite(std::string_view host_header) const {
  return sites.empty() ? nullptr : &sites[index_.Select(host_header)];
}

namespace {

// Walks the parsed document; every error names FILE:LINE:COL.
class Loader {
 public:
  explicit Loader(std::string_view file) : file_(file) {}

  absl::Status Error(const toml::source_region& at, std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", at.begin.line, ":", at.begin.column, ": ", std::string(what)));
  }

  absl::Status Root(const toml::table& root, ConfigFile* out);

 private:
  using Keys = std::initializer_list<std::string_view>;
  absl::Status CheckKeys(const toml::table& t, std::string_view table_name, Keys allowed) const;
  absl::Status Flag(const toml::key& key, const toml::node& value, FlagType type,
                    ConfigFile* out) const;
  absl::Status String(const toml::node& n, std::string_view name, size_t max,
                      std::string* out) const;
  absl::Status Bool(const toml::node& n, std::string_view name, bool* out) const;
  absl::Status Strings(const toml::node& n, std::string_view name, size_t items_max,
                       std::vector<std::string>* out) const;
  const toml::table* Table(const toml::node& n, std::string_view name, absl::Status* st) const;
  absl::Status FilePath(const toml::node& n, std::string_view name, std::string* out) const;
  absl::Status Sites(const toml::node& node, ConfigFile* out);
  absl::Status Site(const toml::table& t, SiteConfig* site);
  absl::Status Hosts(const toml::node& n, uint32_t site_line, SiteConfig* site);
  absl::Status Rules(const toml::node& n, SiteConfig* site) const;
  absl::Status Rule(const toml::table& t, std::vector<RuleConfig>* rules) const;
  absl::Status RuleActions(const toml::table& t, RuleConfig* rule) const;
  absl::Status Methods(const toml::node& n, RuleConfig* rule) const;
  absl::Status Headers(const toml::node& n, HeaderEdits* out) const;
  absl::Status HeaderMap(const toml::node& n, std::string_view name,
                         std::vector<HeaderField>* out) const;
  absl::Status HeaderName(const toml::source_region& at, std::string_view name) const;
  absl::Status Cors(const toml::node& n, RuleConfig* rule) const;
  absl::Status Redirect(const toml::node& n, RuleConfig* rule) const;
  absl::Status SpaFallback(const toml::node& n, RuleConfig* rule) const;
  absl::Status ErrorPages(const toml::node& n, RuleConfig* rule) const;

  std::string file_;
  absl::flat_hash_map<std::string, uint32_t> host_lines_;  // Host → line of its site.
  std::optional<toml::source_region> default_at_;
};

absl::Status Loader::CheckKeys(const toml::table& t, std::string_view table_name,
                               Keys allowed) const {
  for (auto&& [key, value] : t) {
    (void)value;
    if (std::find(allowed.begin(), allowed.end(), key.str()) == allowed.end()) {
      return Error(key.source(),
                   absl::StrCat("unknown key ", Quoted(key.str()), " in ", std::string(table_name),
                                " (allowed: ", Join(allowed), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status Loader::String(const toml::node& n, std::string_view name, size_t max,
                            std::string* out) const {
  const toml::value<std::string>* s = n.as_string();
  if (s == nullptr) {
    return Error(n.source(), absl::StrCat(std::string(name), " must be a string, not ",
                                          std::string(TypeName(n))));
  }
  if (s->get().size() > max) {
    return Error(n.source(), absl::StrCat(std::string(name), " is longer than ", max, " bytes"));
  }
  if (s->get().find('\0') != std::string::npos) {
    return Error(n.source(), absl::StrCat(std::string(name), " must not contain NUL"));
  }
  *out = s->get();
  return absl::OkStatus();
}

absl::Status Loader::Bool(const toml::node& n, std::string_view name, bool* out) const {
  const toml::value<bool>* b = n.as_boolean();
  if (b == nullptr) {
    return Error(n.source(), absl::StrCat(std::string(name), " must be true or false, not ",
                                          std::string(TypeName(n))));
  }
  *out = b->get();
  return absl::OkStatus();
}

absl::Status Loader::Strings(const toml::node& n, std::string_view name, size_t items_max,
                             std::vector<std::string>* out) const {
  const toml::array* a = n.as_array();
  if (a == nullptr) {
    return Error(n.source(), absl::StrCat(std::string(name), " must be an array of strings, not ",
                                          std::string(TypeName(n))));
  }
  if (a->size() > items_max) {
    return Error(n.source(),
                 absl::StrCat(std::string(name), " lists more than ", items_max, " entries"));
  }
  out->clear();
  for (const toml::node& item : *a) {
    std::string s;
    if (absl::Status st = String(item, name, ConfigLimits::kStringBytesMax, &s); !st.ok()) {
      return st;
    }
    out->push_back(std::move(s));
  }
  return absl::OkStatus();
}

const toml::table* Loader::Table(const toml::node& n, std::string_view name,
                                 absl::Status* st) const {
  const toml::table* t = n.as_table();
  if (t == nullptr) {
    *st = Error(n.source(), absl::StrCat(std::string(name), " must be a table, not ",
                                         std::string(TypeName(n))));
  }
  return t;
}

// A file below the site's root, named as a request path would be.
absl::Status Loader::FilePath(const toml::node& n, std::string_view name, std::string* out) const {
  if (absl::Status st = String(n, name, ConfigLimits::kPathBytesMax, out); !st.ok()) return st;
  const bool bad_byte = std::any_of(out->begin(), out->end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '?' || c == '#';
  });
  if (out->empty() || (*out)[0] != '/' || bad_byte || out->find("/../") != std::string::npos ||
      out->ends_with("/..") || out->back() == '/') {
    return Error(n.source(), absl::StrCat(std::string(name),
                                          " must name a file below the site's root, starting "
                                          "with '/' (as \"/404.html\"), without '..', '?' or '#'"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::Status Loader::Root(const toml::table& root, ConfigFile* out) {
  for (auto&& [key, value] : root) {
    if (key.str() == "site") {
      if (absl::Status st = Sites(value, out); !st.ok()) return st;
      continue;
    }
    const FlagKey* flag = nullptr;
    for (const FlagKey& k : kFlagKeys) {
      if (k.name == key.str()) flag = &k;
    }
    if (flag == nullptr) {
      return Error(key.source(),
                   absl::StrCat("unknown key ", Quoted(key.str()),
                                ": top-level keys are the command-line flags (sluice --help), "
                                "sites go in [[site]] tables"));
    }
    if (absl::Status st = Flag(key, value, flag->type, out); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status Loader::Flag(const toml::key& key, const toml::node& value, FlagType type,
                          ConfigFile* out) const {
  FlagSetting setting{std::string(key.str()), std::string(), std::string()};
  const std::string name(key.str());
  if (type == FlagType::kString) {
    std::string s;
    if (absl::Status st = String(value, name, ConfigLimits::kStringBytesMax, &s); !st.ok()) {
      return st;
    }
    setting.text = s;
    setting.value = std::move(s);
  } else if (type == FlagType::kBool) {
    bool b = false;
    if (absl::Status st = Bool(value, name, &b); !st.ok()) return st;
    setting.text = b ? "true" : "false";
    setting.value = b;
  } else if (type == FlagType::kDuration) {
    absl::Duration d;
    const toml::value<std::string>* s = value.as_string();
    if (s == nullptr || !absl::ParseDuration(s->get(), &d) || d < absl::ZeroDuration()) {
      return Error(value.source(), absl::StrCat(name,
                                                " must be a duration string such as \"10s\", "
                                                "\"250ms\" or \"1h30m\""));
    }
    setting.text = s->get();
    setting.value = d;
  } else {
    const toml::value<int64_t>* i = value.as_integer();
    const int64_t lo = type == FlagType::kInt ? std::numeric_limits<int>::min() : INT64_MIN;
    const int64_t hi = type == FlagType::kInt ? std::numeric_limits<int>::max() : INT64_MAX;
    if (i == nullptr) {
      return Error(value.source(),
                   absl::StrCat(name, " must be an integer, not ", std::string(TypeName(value))));
    }
    if (i->get() < lo || i->get() > hi) {
      return Error(value.source(), absl::StrCat(name, " is out of range (", lo, "..", hi, ")"));
    }
    setting.text = absl::StrCat(i->get());
    setting.value = i->get();
  }
  out->flags.push_back(std::move(setting));
  return absl::OkStatus();
}

absl::Status Loader::Sites(const toml::node& node, ConfigFile* out) {
  const toml::array* sites = node.as_array();
  if (sites == nullptr || !sites->is_array_of_tables()) {
    return Error(node.source(), "site must be an array of tables: write each as [[site]]");
  }
  if (sites->size() > ConfigLimits::kSitesMax) {
    return Error(node.source(), absl::StrCat("more than ", ConfigLimits::kSitesMax, " sites"));
  }
  for (const toml::node& n : *sites) {
    SiteConfig site;
    if (absl::Status st = Site(*n.as_table(), &site); !st.ok()) return st;
    if (site.hosts.empty() && !site.is_default && !out->sites.empty()) {
      return Error(n.source(),
                   "a site without hosts can only answer unknown hosts: make it the first "
                   "site or mark it default = true");
    }
    out->sites.push_back(std::move(site));
  }
  return absl::OkStatus();
}

absl::Status Loader::Site(const toml::table& t, SiteConfig* site) {
  if (absl::Status st = CheckKeys(t, "[[site]]", {"hosts", "root", "default", "rule"}); !st.ok()) {
    return st;
  }
  absl::Status st;
  if (const toml::node* n = t.get("hosts"); n != nullptr)
    st = Hosts(*n, t.source().begin.line, site);
  if (const toml::node* n = t.get("root"); n != nullptr && st.ok()) {
    st = String(*n, "root", ConfigLimits::kPathBytesMax, &site->root);
    if (st.ok() && site->root.empty()) st = Error(n->source(), "root must not be empty");
  }
  if (const toml::node* n = t.get("default"); n != nullptr && st.ok()) {
    st = Bool(*n, "default", &site->is_default);
    if (st.ok() && site->is_default && default_at_.has_value()) {
      st = Error(n->source(), absl::StrCat("default = true is already set by the site at line ",
                                           default_at_->begin.line,
                                           ": at most one site is "
                                           "the default"));
    }
    if (site->is_default) default_at_ = n->source();
  }
  if (const toml::node* n = t.get("rule"); n != nullptr && st.ok()) st = Rules(*n, site);
  return st;
}

absl::Status Loader::Hosts(const toml::node& n, uint32_t site_line, SiteConfig* site) {
  std::vector<std::string> raw;
  if (absl::Status st = Strings(n, "hosts", ConfigLimits::kHostsPerSiteMax, &raw); !st.ok()) {
    return st;
  }
  for (size_t i = 0; i < raw.size(); ++i) {
    const toml::node& item = *n.as_array()->get(i);
    const bool wildcard = raw[i].starts_with("*.");
    std::string host = NormaliseHost(wildcard ? raw[i].substr(2) : raw[i]);
    if (host.empty() || (wildcard && host.front() == '[')) {
      return Error(item.source(),
                   absl::StrCat("host ", Quoted(raw[i]),
                                " must be a host name (letters, digits, '-', '_', '.'), "
                                "\"*.\" and a name, or an [IPv6] literal; a port is ignored"));
    }
    if (wildcard) host = "*." + host;
    if (std::find(site->hosts.begin(), site->hosts.end(), host) != site->hosts.end()) {
      return Error(item.source(), absl::StrCat("host ", Quoted(raw[i]), " is listed twice"));
    }
    if (auto [it, added] = host_lines_.try_emplace(host, site_line); !added) {
      return Error(item.source(),
                   absl::StrCat("host ", Quoted(raw[i]), " is already served by the site at line ",
                                it->second));
    }
    site->hosts.push_back(std::move(host));
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::Status Loader::Rules(const toml::node& n, SiteConfig* site) const {
  const toml::array* rules = n.as_array();
  if (rules == nullptr || !rules->is_array_of_tables()) {
    return Error(n.source(), "rule must be an array of tables: write each as [[site.rule]]");
  }
  if (rules->size() > ConfigLimits::kRulesPerSiteMax) {
    return Error(n.source(),
                 absl::StrCat("more than ", ConfigLimits::kRulesPerSiteMax, " rules in a site"));
  }
  for (const toml::node& r : *rules) {
    if (absl::Status st = Rule(*r.as_table(), &site->rules); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status Loader::Rule(const toml::table& t, std::vector<RuleConfig>* rules) const {
  if (absl::Status st = CheckKeys(t, "[[site.rule]]",
                                  {"match", "methods", "headers", "cors", "redirect",
                                   "spa_fallback", "error_pages", "clean_urls", "listing"});
      !st.ok()) {
    return st;
  }
  const toml::node* match = t.get("match");
  if (match == nullptr) {
    return Error(t.source(), "a rule needs match = \"GLOB\" (as \"/assets/**\" or \"*.html\")");
  }
  std::string pattern;
  if (absl::Status st = String(*match, "match", PathGlob::kPatternBytesMax * 2, &pattern);
      !st.ok()) {
    return st;
  }
  absl::StatusOr<PathGlob> glob = PathGlob::Compile(pattern);
  if (!glob.ok()) return Error(match->source(), std::string(glob.status().message()));
  RuleConfig rule(*std::move(glob));
  if (const toml::node* n = t.get("methods"); n != nullptr) {
    if (absl::Status st = Methods(*n, &rule); !st.ok()) return st;
  }
  if (absl::Status st = RuleActions(t, &rule); !st.ok()) return st;
  if (rule.headers.empty() && !rule.cors && !rule.redirect && !rule.spa_fallback &&
      rule.error_pages.empty() && !rule.clean_urls && !rule.listing) {
    return Error(t.source(),
                 "a rule does nothing without at least one of headers, cors, redirect, "
                 "spa_fallback, error_pages, clean_urls, listing");
  }
  rules->push_back(std::move(rule));
  return absl::OkStatus();
}

absl::Status Loader::RuleActions(const toml::table& t, RuleConfig* rule) const {
  absl::Status st;
  if (const toml::node* n = t.get("headers"); n != nullptr) st = Headers(*n, &rule->headers);
  if (const toml::node* n = t.get("cors"); n != nullptr && st.ok()) st = Cors(*n, rule);
  if (const toml::node* n = t.get("redirect"); n != nullptr && st.ok()) st = Redirect(*n, rule);
  if (const toml::node* n = t.get("spa_fallback"); n != nullptr && st.ok()) {
    st = SpaFallback(*n, rule);
  }
  if (const toml::node* n = t.get("error_pages"); n != nullptr && st.ok()) {
    st = ErrorPages(*n, rule);
  }
  if (const toml::node* n = t.get("clean_urls"); n != nullptr && st.ok()) {
    if (n->is_string() && n->value<std::string>() == "redirect") {
      rule->clean_urls = CleanUrls::kRedirect;
    } else if (const toml::value<bool>* b = n->as_boolean(); b != nullptr) {
      rule->clean_urls = b->get() ? CleanUrls::kOn : CleanUrls::kOff;
    } else {
      st = Error(n->source(), "clean_urls must be true, false or \"redirect\"");
    }
  }
  if (const toml::node* n = t.get("listing"); n != nullptr && st.ok()) {
    bool b = false;
    st = Bool(*n, "listing", &b);
    rule->listing = b;
  }
  return st;
}

absl::Status Loader::Methods(const toml::node& n, RuleConfig* rule) const {
  if (absl::Status st = Strings(n, "methods", ConfigLimits::kMethodsPerRuleMax, &rule->methods);
      !st.ok()) {
    return st;
  }
  for (const std::string& m : rule->methods) {
    if (!IsHttpToken(m)) {
      return Error(n.source(), absl::StrCat("methods: ", Quoted(m),
                                            " is not a method name (an HTTP token, as \"GET\")"));
    }
  }
  if (rule->methods.empty()) {
    return Error(n.source(), "methods must list at least one method, or be left out for any");
  }
  return absl::OkStatus();
}

absl::Status Loader::HeaderName(const toml::source_region& at, std::string_view name) const {
  if (!IsHttpToken(name) || name.size() > ConfigLimits::kHeaderNameBytesMax) {
    return Error(at, absl::StrCat("header name ", Quoted(name),
                                  " is not an HTTP token (RFC 9110 §5.6.2) of at most ",
                                  ConfigLimits::kHeaderNameBytesMax, " bytes"));
  }
  const std::string lower = AsciiLower(name);
  for (std::string_view owned : kServerOwnedFields) {
    if (lower == owned) {
      return Error(at, absl::StrCat("header ", Quoted(name),
                                    " is set by the server from the file and connection; a rule "
                                    "cannot change it"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::Status Loader::Headers(const toml::node& n, HeaderEdits* out) const {
  absl::Status st;
  const toml::table* t = Table(n, "headers", &st);
  if (t == nullptr) return st;
  if (st = CheckKeys(*t, "headers", {"set", "append", "remove"}); !st.ok()) return st;
  if (const toml::node* set = t->get("set"); set != nullptr) {
    if (st = HeaderMap(*set, "headers.set", &out->set); !st.ok()) return st;
  }
  if (const toml::node* append = t->get("append"); append != nullptr) {
    if (st = HeaderMap(*append, "headers.append", &out->append); !st.ok()) return st;
  }
  if (const toml::node* remove = t->get("remove"); remove != nullptr) {
    std::vector<std::string> names;
    st = Strings(*remove, "headers.remove", ConfigLimits::kHeaderEditsPerRuleMax, &names);
    if (!st.ok()) return st;
    for (const std::string& name : names) {
      if (st = HeaderName(remove->source(), name); !st.ok()) return st;
      std::string lower = AsciiLower(name);
      if (std::find(out->remove.begin(), out->remove.end(), lower) != out->remove.end()) {
        return Error(remove->source(),
                     absl::StrCat("headers.remove lists ", Quoted(name), " twice"));
      }
      out->remove.push_back(std::move(lower));
    }
  }
  if (out->set.size() + out->append.size() + out->remove.size() >
      ConfigLimits::kHeaderEditsPerRuleMax) {
    return Error(n.source(), absl::StrCat("more than ", ConfigLimits::kHeaderEditsPerRuleMax,
                                          " header edits in one rule"));
  }
  return absl::OkStatus();
}

absl::Status Loader::HeaderMap(const toml::node& n, std::string_view name,
                               std::vector<HeaderField>* out) const {
  absl::Status st;
  const toml::table* t = Table(n, name, &st);
  if (t == nullptr) return st;
  if (t->size() > ConfigLimits::kHeaderEditsPerRuleMax) {
    return Error(n.source(), absl::StrCat(std::string(name), " has more than ",
                                          ConfigLimits::kHeaderEditsPerRuleMax, " fields"));
  }
  for (auto&& [key, value] : *t) {
    if (st = HeaderName(key.source(), key.str()); !st.ok()) return st;
    std::string v;
    const std::string what = absl::StrCat("header ", std::string(key.str()));
    if (st = String(value, what, ConfigLimits::kHeaderValueBytesMax, &v); !st.ok()) return st;
    if (!IsHttpFieldValue(v)) {
      return Error(value.source(),
                   absl::StrCat(what,
                                ": the value must not contain CR, LF, NUL or other control "
                                "characters, nor start or end with a space or tab"));
    }
    for (const HeaderField& f : *out) {
      if (EqualsIgnoreCase(f.name, key.str())) {
        return Error(key.source(), absl::StrCat(std::string(name), " names ", Quoted(key.str()),
                                                " twice (field names are case-insensitive)"));
      }
    }
    out->push_back({std::string(key.str()), std::move(v)});
  }
  return absl::OkStatus();
}

absl::Status Loader::Cors(const toml::node& n, RuleConfig* rule) const {
  absl::Status st;
  const toml::table* t = Table(n, "cors", &st);
  if (t == nullptr) return st;
  st = CheckKeys(*t, "cors", {"origins", "methods", "headers", "expose_headers", "max_age"});
  if (!st.ok()) return st;
  CorsSpec spec;
  const toml::node* origins = t->get("origins");
  if (origins == nullptr) {
    return Error(n.source(), "cors needs origins = [\"https://...\"] (or [\"*\"])");
  }
  constexpr size_t kMax = CorsPolicy::kOriginsMax + 1;  // Let CorsPolicy say what is too many.
  if (st = Strings(*origins, "cors.origins", kMax, &spec.origins); !st.ok()) return st;
  for (auto [key, field] :
       {std::pair{"methods", &spec.methods}, std::pair{"headers", &spec.headers},
        std::pair{"expose_headers", &spec.expose_headers}}) {
    if (const toml::node* list = t->get(key); list != nullptr) {
      if (st = Strings(*list, absl::StrCat("cors.", key), kMax, field); !st.ok()) return st;
    }
  }
  if (const toml::node* age = t->get("max_age"); age != nullptr) {
    absl::Duration d;
    const toml::value<std::string>* s = age->as_string();
    if (s == nullptr || !absl::ParseDuration(s->get(), &d) ||
        d % absl::Seconds(1) != absl::ZeroDuration()) {
      return Error(age->source(), "cors.max_age must be a duration in whole seconds, as \"10m\"");
    }
    spec.max_age_seconds = absl::ToInt64Seconds(d);
  }
  absl::StatusOr<CorsPolicy> policy = CorsPolicy::Create(spec);
  if (!policy.ok()) return Error(n.source(), std::string(policy.status().message()));
  rule->cors = *std::move(policy);
  return absl::OkStatus();
}

absl::Status Loader::Redirect(const toml::node& n, RuleConfig* rule) const {
  absl::Status st;
  const toml::table* t = Table(n, "redirect", &st);
  if (t == nullptr) return st;
  if (st = CheckKeys(*t, "redirect", {"to", "status", "keep_query"}); !st.ok()) return st;
  RedirectRule r;
  const toml::node* to = t->get("to");
  if (to == nullptr) return Error(n.source(), "redirect needs to = \"/new/path\" or a URL");
  if (st = String(*to, "redirect.to", ConfigLimits::kPathBytesMax, &r.to); !st.ok()) return st;
  const bool bad_byte = std::any_of(r.to.begin(), r.to.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
  });
  const bool local = r.to.starts_with('/') && !r.to.starts_with("//");
  if (bad_byte || !(local || r.to.starts_with("https://") || r.to.starts_with("http://"))) {
    return Error(to->source(),
                 "redirect.to must be a path starting with one '/' or an http(s):// URL, "
                 "without spaces or control characters (percent-encode them)");
  }
  if (const toml::node* status = t->get("status"); status != nullptr) {
    const std::optional<int64_t> code = status->value<int64_t>();
    if (!status->is_integer() || !code.has_value() ||
        (*code != 301 && *code != 302 && *code != 307 && *code != 308)) {
      return Error(status->source(), "redirect.status must be 301, 302, 307 or 308");
    }
    r.status = static_cast<int>(*code);
  }
  if (const toml::node* keep = t->get("keep_query"); keep != nullptr) {
    if (st = Bool(*keep, "redirect.keep_query", &r.keep_query); !st.ok()) return st;
  }
  rule->redirect = std::move(r);
  return absl::OkStatus();
}

absl::Status Loader::SpaFallback(const toml::node& n, RuleConfig* rule) const {
  if (const toml::value<bool>* b = n.as_boolean(); b != nullptr) {
    rule->spa_fallback = b->get() ? "/index.html" : "";
    return absl::OkStatus();
  }
  if (!n.is_string()) {
    return Error(n.source(), "spa_fallback must be true, false or a file such as \"/app.html\"");
  }
  std::string file;
  if (absl::Status st = FilePath(n, "spa_fallback", &file); !st.ok()) return st;
  rule->spa_fallback = std::move(file);
  return absl::OkStatus();
}

absl::Status Loader::ErrorPages(const toml::node& n, RuleConfig* rule) const {
  absl::Status st;
  const toml::table* t = Table(n, "error_pages", &st);
  if (t == nullptr) return st;
  if (t->size() > ConfigLimits::kErrorPagesPerRuleMax) {
    return Error(n.source(), absl::StrCat("error_pages has more than ",
                                          ConfigLimits::kErrorPagesPerRuleMax, " entries"));
  }
  for (auto&& [key, value] : *t) {
    const std::string_view k = key.str();
    const bool digits = k.size() == 3 && std::all_of(k.begin(), k.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    const int status = digits ? (k[0] - '0') * 100 + (k[1] - '0') * 10 + (k[2] - '0') : 0;
    if (status < 400 || status > 599) {
      return Error(key.source(), absl::StrCat("error_pages key ", Quoted(k),
                                              " must be an error status from 400 to 599"));
    }
    std::string file;
    if (st = FilePath(value, absl::StrCat("error_pages.", std::string(k)), &file); !st.ok()) {
      return st;
    }
    rule->error_pages.emplace_back(status, std::move(file));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ConfigFile> ParseConfigText(std::string_view text, std::string_view file_name) {
  const std::string file(file_name);
  if (text.size() > ConfigLimits::kFileBytesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": larger than ", ConfigLimits::kFileBytesMax, " bytes"));
  }
  toml::parse_result parsed = toml::parse(text, file_name);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return absl::InvalidArgumentError(absl::StrCat(file, ":", e.source().begin.line, ":",
                                                   e.source().begin.column, ": ",
                                                   std::string(e.description())));
  }
  ConfigFile config;
  config.path = file;
  Loader loader(file_name);
  if (absl::Status st = loader.Root(parsed.table(), &config); !st.ok()) return st;
  // The loader refused duplicate host names, naming both places.
  config.index_ = SiteIndex(config.sites);
  return config;
}

absl::StatusOr<ConfigFile> LoadConfigFile(const std::string& file) {
  UniqueFd fd(open(file.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": cannot read: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a regular file"));
  }
  // One byte more than allowed, so that a file that grew since fstat is caught too.
  std::string text(ConfigLimits::kFileBytesMax + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": cannot read: ", strerror(errno)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return ParseConfigText(text, file);
}

}  // namespace sluice
