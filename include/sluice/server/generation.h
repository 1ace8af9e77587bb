// Builds a configuration generation (serve/sites.h) from the settings and
// the configuration file's sites: every site's document root made absolute
// and opened, the Host index, the settings a reload may change. Runs on the
// main thread, at start-up and on SIGHUP; plain blocking syscalls.
#ifndef SLUICE_SERVER_GENERATION_H_
#define SLUICE_SERVER_GENERATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/serve/config.h"
#include "sluice/serve/sites.h"

namespace sluice {

// `sites` empty: one site for every host, serving `config.root`, no rules.
// A site's root "" is config.root; relative roots are taken from the
// current directory, as --root is. NotFound / InvalidArgument naming the
// root that cannot be opened or is not a directory.
absl::StatusOr<std::shared_ptr<ServeGeneration>> BuildGeneration(const ServerConfig& config,
                                                                 std::vector<SiteConfig> sites,
                                                                 uint64_t id);

}  // namespace sluice

#endif  // SLUICE_SERVER_GENERATION_H_
