// The server: validates the configuration, opens the document root and the
// listening sockets, runs one Worker thread per --threads, and turns
// SIGINT/SIGTERM into a graceful drain. Runs on the main thread.
#ifndef SLUICE_SERVER_SERVER_H_
#define SLUICE_SERVER_SERVER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sluice/serve/config.h"
#include "sluice/serve/sites.h"

namespace sluice {

inline constexpr char kVersion[] = "0.1.0";

// What a reload reads (main.cc: the configuration file under the command
// line's flags): the settings, the sites, and the settings that changed but
// take a restart to apply (their running values stay).
struct LoadedConfig {
  ServerConfig config;
  std::vector<SiteConfig> sites;
  std::vector<std::string> restart_needed;  // Flag names.
};
// Null: there is no configuration file, and SIGHUP only says so.
using ConfigLoader = std::function<absl::StatusOr<LoadedConfig>()>;

// Blocks until the server has stopped. kUnavailable: io_uring was refused
// (the message says why); kInvalidArgument / kNotFound / kAlreadyExists:
// configuration problems found before anything was served. `sites`: the
// configuration file's (empty: one site for every host). On SIGHUP,
// `reload` is called; what it returns replaces the sites, their rules and
// roots, and the settings a reload may change (--root, --cache_control,
// --precompressed, --max_ranges), in every worker at its next safe point.
absl::Status RunServer(const ServerConfig& config, std::vector<SiteConfig> sites = {},
                       ConfigLoader reload = nullptr);

// What a start checks of the settings short of binding and opening (thread
// and backlog limits, the listen addresses' syntax): --check-config.
absl::Status CheckSettings(const ServerConfig& config);

// CPUs this process may run on, in order.
int AvailableCpuCount();

}  // namespace sluice

#endif  // SLUICE_SERVER_SERVER_H_
