#include "sluice/io/page_cache_mounts.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

namespace sluice {
namespace {

// File systems whose splice_read is the page cache's own (or, for overlay,
// that of the local file system beneath), with nothing to revalidate.
constexpr std::string_view kLocal[] = {"ext2", "ext3",  "ext4",   "xfs",   "btrfs",
                                       "f2fs", "tmpfs", "ramfs",  "erofs", "squashfs",
                                       "vfat", "exfat", "overlay"};

// Written once by LoadLocalPageCacheMounts() before the workers start.
const absl::flat_hash_set<uint32_t>* g_local = nullptr;

}  // namespace

absl::flat_hash_set<uint32_t> LocalPageCacheMounts(std::string_view mountinfo) {
  absl::flat_hash_set<uint32_t> local;
  while (!mountinfo.empty()) {
    const size_t eol = std::min(mountinfo.find('\n'), mountinfo.size());
    const std::string_view line = mountinfo.substr(0, eol);
    mountinfo.remove_prefix(std::min(eol + 1, mountinfo.size()));
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the
    // mount id first; the optional fields end at " - ", then the type.
    const size_t dash = line.find(" - ");
    const size_t id_end = line.find(' ');
    if (dash == std::string_view::npos || id_end == 0 || id_end > dash) continue;
    uint32_t id = 0;
    bool digits = true;
    for (char c : line.substr(0, id_end)) {
      digits = digits && c >= '0' && c <= '9' && id < 100000000;
      id = id * 10 + static_cast<uint32_t>(c - '0');
    }
    const std::string_view rest = line.substr(dash + 3);
    const std::string_view fs = rest.substr(0, rest.find(' '));
    if (!digits || fs.empty()) continue;
    for (std::string_view known : kLocal) {
      if (fs == known) local.insert(id);
    }
  }
  return local;
}

void LoadLocalPageCacheMounts() {
  std::ifstream in("/proc/self/mountinfo");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  delete g_local;
  g_local = new absl::flat_hash_set<uint32_t>(LocalPageCacheMounts(text));
}

bool IsLocalPageCacheMount(uint32_t mnt_id) {
  return g_local != nullptr && g_local->contains(mnt_id);
}

}  // namespace sluice
