// The configuration file (issue 12): a TOML file whose top-level keys are the
// command-line flags and whose [[site]] tables describe virtual hosts and
// their per-path rules. Loaded and validated completely, off the data path,
// into an immutable ConfigFile value; any thread may read a loaded one.
//
// Status: parsed and validated only. main.cc does not read the file yet, and
// no worker acts on sites or rules; the wiring (--config, --check-config,
// SIGHUP reload) comes next. docs/sluice.example.toml documents every key.
//
// Rule semantics, fixed here so the wiring has one meaning to implement:
// every rule of a site whose `match` (and `methods`, when given) fits the
// request applies, in file order. Header edits accumulate in that order
// (a later `set` of a name replaces an earlier one); for the other keys
// (cors, redirect, spa_fallback, clean_urls, listing, each error page) the
// last matching rule that sets the key wins, so specific rules go after
// general ones, as in CSS.
//
// Errors are InvalidArgument with "FILE:LINE:COL: what is wrong" (the
// position of the offending key or value), or "FILE: what is wrong" when the
// file itself cannot be read. Nothing throws: toml++ is compiled without
// exceptions (TOML_EXCEPTIONS=0, header-only, in config_file.cc alone).
#ifndef SLUICE_SERVER_CONFIG_FILE_H_
#define SLUICE_SERVER_CONFIG_FILE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sluice/http/cors.h"
#include "sluice/http/path_glob.h"
#include "sluice/serve/sites.h"

namespace sluice {

// Limits on what a file may hold; past one, loading fails naming it.
struct ConfigLimits {
  static constexpr size_t kFileBytesMax = 1 << 20;
  static constexpr size_t kSitesMax = 256;
  static constexpr size_t kHostsPerSiteMax = 64;
  static constexpr size_t kHostBytesMax = sluice::kHostBytesMax;
  static constexpr size_t kRulesPerSiteMax = sluice::kRulesPerSiteMax;
  static constexpr size_t kMethodsPerRuleMax = 16;
  static constexpr size_t kHeaderEditsPerRuleMax = 64;  // set + append + remove.
  static constexpr size_t kHeaderNameBytesMax = 128;
  static constexpr size_t kHeaderValueBytesMax = 4096;
  static constexpr size_t kErrorPagesPerRuleMax = 32;
  static constexpr size_t kPathBytesMax = 1024;    // root, redirect target, file names.
  static constexpr size_t kStringBytesMax = 4096;  // Any other string.
};

enum class FlagType : uint8_t { kString, kInt, kInt64, kBool, kDuration };

struct FlagKey {
  std::string_view name;
  FlagType type;
};

// Every command-line flag that may appear as a top-level key, with its type
// (kept in step with src/server/main.cc by config_file_test).
std::span<const FlagKey> ConfigFlagKeys();

// A top-level key. Only its type is checked here; ranges and meanings are
// checked where the flags are (main.cc), after the command line overrides.
struct FlagSetting {
  std::string name;
  std::variant<std::string, int64_t, bool, absl::Duration> value;
  std::string text;  // As a flag would spell it: "abc", "42", "true", "10s".
};

class ConfigFile {
 public:
  std::string path;
  std::vector<FlagSetting> flags;  // Sorted by name (a TOML table has no order).
  std::vector<SiteConfig> sites;   // In file order; may be empty.

  // The site for a Host field's value: case-insensitive, port and a trailing
  // dot ignored; an exact name first, then the wildcard with the longest
  // suffix ("*.example.com" matches "a.example.com" and "a.b.example.com",
  // not "example.com"), else the default site (the one marked, or the
  // first). nullptr only when the file has no sites.
  const SiteConfig* SelectSite(std::string_view host_header) const;

 private:
  friend absl::StatusOr<ConfigFile> ParseConfigText(std::string_view text,
                                                    std::string_view file_name);
  SiteIndex index_;
};

// Reads and validates FILE (at most ConfigLimits::kFileBytesMax bytes).
absl::StatusOr<ConfigFile> LoadConfigFile(const std::string& file);
// The same for text already in memory; `file_name` prefixes the errors.
absl::StatusOr<ConfigFile> ParseConfigText(std::string_view text, std::string_view file_name);

}  // namespace sluice

#endif  // SLUICE_SERVER_CONFIG_FILE_H_
