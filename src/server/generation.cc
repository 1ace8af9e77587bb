#include "sluice/server/generation.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/base/unique_fd.h"
#include "sluice/serve/document_root.h"

namespace sluice {
namespace {

absl::StatusOr<UniqueFd> OpenRoot(const std::string& root) {
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) return UniqueFd(fd);
  const int err = errno;
  if (err == ENOTDIR) {
    return absl::InvalidArgumentError(
        absl::StrCat("document root '", root, "' is not a directory"));
  }
  return absl::NotFoundError(
      absl::StrCat("cannot open document root '", root, "': ", strerror(err)));
}

std::string Absolute(const std::string& path) {
  std::string out = path;
  if (char* cwd = getcwd(nullptr, 0)) {
    out = AbsoluteRootPath(path, cwd);
    free(cwd);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<ServeGeneration>> BuildGeneration(const ServerConfig& config,
                                                                 std::vector<SiteConfig> sites,
                                                                 uint64_t id) {
  auto gen = std::make_shared<ServeGeneration>();
  gen->id = id;
  gen->cache_control = config.cache_control;
  gen->precompressed = config.precompressed;
  gen->max_ranges = config.max_ranges;
  gen->directory_listing = config.directory_listing;
  if (sites.empty()) sites.emplace_back();  // Every host, the top-level root.
  for (SiteConfig& site : sites) {
    const std::string& given = site.root.empty() ? config.root : site.root;
    const std::string path = Absolute(given);
    auto known = std::find(gen->roots.begin(), gen->roots.end(), path);
    if (known == gen->roots.end()) {
      absl::StatusOr<UniqueFd> fd = OpenRoot(given);
      if (!fd.ok()) return fd.status();
      gen->roots.push_back(path);
      gen->root_fds.push_back(std::move(*fd));
      known = gen->roots.end() - 1;
    }
    site.root_index = static_cast<size_t>(known - gen->roots.begin());
    for (const RuleConfig& rule : site.rules) {
      gen->any_listing = gen->any_listing || rule.listing.value_or(false);
    }
  }
  gen->sites = std::move(sites);
  gen->index = SiteIndex(gen->sites);
  return gen;
}

}  // namespace sluice
