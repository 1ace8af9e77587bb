// Which mounts a splice from up-to-date cached pages cannot block on.
#include "sluice/io/page_cache_mounts.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr std::string_view kMountinfo =
    "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "23 22 0:21 / /proc rw,nosuid - proc proc rw\n"
    "24 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=4k\n"
    "25 22 0:22 / /run rw,nosuid,nodev shared:5 master:3 - tmpfs tmpfs rw\n"
    "30 22 0:40 / /var/lib/docker/x rw - overlay overlay rw,lowerdir=/a,upperdir=/b\n"
    "31 22 0:41 / /srv/nfs rw,relatime - nfs4 server:/export rw,vers=4.2\n"
    "32 22 0:42 / /srv/fuse rw,nosuid - fuse.slowfs slowfs rw,user_id=0\n"
    "33 22 0:43 / /srv/cifs rw - cifs //host/share rw\n"
    "34 22 8:3 / /data rw,noatime - xfs /dev/sda3 rw\n"
    "35 22 0:44 / /mnt/btr rw - btrfs /dev/sdb rw\n"
    "not a mount line\n"
    "x 22 8:3 / /bad rw - ext4 /dev/sda4 rw\n"
    "36 22 8:3 / /short - \n";

TEST(PageCacheMountsTest, LocalFileSystemsOnly) {
  const absl::flat_hash_set<uint32_t> local = LocalPageCacheMounts(kMountinfo);
  for (uint32_t id : {22u, 25u, 30u, 34u, 35u}) EXPECT_TRUE(local.contains(id)) << id;
  for (uint32_t id : {23u, 24u, 31u, 32u, 33u, 36u}) EXPECT_FALSE(local.contains(id)) << id;
  EXPECT_EQ(local.size(), 5u);
}

TEST(PageCacheMountsTest, NothingKnownBeforeLoading) {
  // The process-wide set is empty until LoadLocalPageCacheMounts(): every
  // file then takes the ring's SPLICE, which is always safe.
  EXPECT_FALSE(IsLocalPageCacheMount(22));
  LoadLocalPageCacheMounts();
  EXPECT_FALSE(IsLocalPageCacheMount(0));
}

}  // namespace
}  // namespace sluice
