// Which mounts a splice from the page cache can never block on. A splice of
// pages that mincore() found up to date still calls the file system's
// splice_read, and some revalidate there first: NFS and CIFS may send a
// GETATTR over the network, FUSE-based and other remote file systems may ask
// their daemon. Local page-cache file systems (ext4, xfs, btrfs, tmpfs,
// overlay on those...) read straight from the page cache. Mounts are named by
// the id statx() returns as stx_mnt_id (STATX_MNT_ID), which is the first
// field of /proc/self/mountinfo.
#ifndef SLUICE_IO_PAGE_CACHE_MOUNTS_H_
#define SLUICE_IO_PAGE_CACHE_MOUNTS_H_

#include <cstdint>
#include <string_view>

#include "absl/container/flat_hash_set.h"

namespace sluice {

// The ids of the mounts in `mountinfo` (the text of /proc/self/mountinfo)
// whose file system type is on the local list. Malformed lines are skipped.
absl::flat_hash_set<uint32_t> LocalPageCacheMounts(std::string_view mountinfo);

// Reads /proc/self/mountinfo into the process-wide set. Called once at
// start-up, before any worker thread exists; mounts made later are unknown.
void LoadLocalPageCacheMounts();

// True when `mnt_id` was a local page-cache mount at start-up.
bool IsLocalPageCacheMount(uint32_t mnt_id);

}  // namespace sluice

#endif  // SLUICE_IO_PAGE_CACHE_MOUNTS_H_
