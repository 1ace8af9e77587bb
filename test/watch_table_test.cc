// WatchTable: the bookkeeping between inotify watch descriptors and the
// directory keys they stand for, with a fake kernel.

#include "sluice/io/watch_table.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// A fake inotify: one descriptor per directory "inode"; names map to inodes
// and can be renamed, as in a filesystem.
class FakeInotify {
 public:
  std::map<std::string, int> inode_of;  // key → inode (absent: ENOENT).
  std::map<int, int> wd_of_inode;
  std::set<int> live_wds;
  std::vector<int> removed;
  int next_wd = 1;

  int Add(const std::string& key) {
    auto it = inode_of.find(key);
    if (it == inode_of.end()) return -2;  // -ENOENT
    auto w = wd_of_inode.find(it->second);
    if (w != wd_of_inode.end() && live_wds.contains(w->second)) return w->second;
    const int wd = next_wd++;
    wd_of_inode[it->second] = wd;
    live_wds.insert(wd);
    return wd;
  }
  void Remove(int wd) {
    removed.push_back(wd);
    live_wds.erase(wd);
  }
};

class WatchTableTest : public ::testing::Test {
 protected:
  FakeInotify k_;
  WatchTable t_{[this](const std::string& key) { return k_.Add(key); },
                [this](int wd) { k_.Remove(wd); }};
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(KeyIsAtOrBelowTest, Table) {
  struct Case {
    const char* key;
    const char* dir;
    bool want;
  } cases[] = {
      {"a", "", true},           {"", "", true},
      {"css", "css", true},      {"css/x", "css", true},
      {"css.old", "css", false}, {"cs", "css", false},
      {"a/b/c", "a/b", true},    {"a/bc", "a/b", false},
      {"b/a", "a", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(KeyIsAtOrBelow(c.key, c.dir), c.want) << c.key << " under " << c.dir;
  }
}

TEST_F(WatchTableTest, HoldsAreCountedAndTheLastReleaseRemovesTheWatch) {
  k_.inode_of = {{"", 1}, {"css", 2}};
  const int root = t_.Acquire("");
  const int css = t_.Acquire("css");
  EXPECT_EQ(t_.Acquire("css"), css);
  EXPECT_NE(root, css);
  EXPECT_EQ(t_.watch_count(), 2u);
  t_.Release("css");
  EXPECT_TRUE(k_.removed.empty());
  t_.Release("css");
  EXPECT_EQ(k_.removed, std::vector<int>{css});
  EXPECT_EQ(t_.WatchOf("css"), -1);
  EXPECT_EQ(t_.watch_count(), 1u);
  t_.Release("unknown");  // Harmless.
}

TEST_F(WatchTableTest, OneDirectoryUnderTwoNamesKeepsBothKeys) {
  k_.inode_of = {{"a", 7}, {"b", 7}};  // b is a symlink to a.
  const int wa = t_.Acquire("a");
  const int wb = t_.Acquire("b");
  ASSERT_EQ(wa, wb);
  EXPECT_EQ(Sorted(t_.KeysOf(wa)), (std::vector<std::string>{"a", "b"}));
  t_.Release("a");
  EXPECT_TRUE(k_.removed.empty()) << "still needed for b";
  EXPECT_EQ(t_.KeysOf(wa), std::vector<std::string>{"b"});
  t_.Release("b");
  EXPECT_EQ(k_.removed, std::vector<int>{wa});
}

TEST_F(WatchTableTest, ForgetAfterDirectoryRenameWatchesTheNewDirectory) {
  k_.inode_of = {{"", 1}, {"css", 2}, {"css/img", 3}};
  const int old_css = t_.Acquire("css");
  t_.Acquire("css/img");
  // mv css css.old && mv css.new css
  k_.inode_of = {{"", 1}, {"css", 9}, {"css.old", 2}};
  t_.Forget("css");
  EXPECT_EQ(t_.WatchOf("css"), -1);
  EXPECT_EQ(t_.WatchOf("css/img"), -1);
  EXPECT_TRUE(t_.KeysOf(old_css).empty());
  const int new_css = t_.Acquire("css");  // Re-watched: the new directory.
  EXPECT_NE(new_css, old_css);
  EXPECT_EQ(t_.KeysOf(new_css), std::vector<std::string>{"css"});
  // Two holds on css now (one before, one after): both releases are needed.
  t_.Release("css");
  EXPECT_GE(t_.WatchOf("css"), 0);
  t_.Release("css");
  EXPECT_EQ(t_.WatchOf("css"), -1);
}

TEST_F(WatchTableTest, ForgetStrictlyBelowKeepsTheDirectoryAndRootPathKeys) {
  k_.inode_of = {{"", 1}, {"a", 2}, {std::string("\0/srv", 5), 4}};
  const int root = t_.Acquire("");
  t_.Acquire("a");
  const int srv = t_.Acquire(std::string("\0/srv", 5));
  t_.Forget("", /*strictly_below=*/true);
  EXPECT_EQ(t_.WatchOf(""), root);
  EXPECT_EQ(t_.WatchOf("a"), -1);
  EXPECT_EQ(t_.WatchOf(std::string("\0/srv", 5)), srv);
}

TEST_F(WatchTableTest, ResetDropsEverythingAndVoidsOldHolds) {
  k_.inode_of = {{"", 1}, {"a", 2}};
  t_.Acquire("");
  t_.Acquire("a");
  const uint64_t before = t_.generation();
  t_.Reset();
  EXPECT_NE(t_.generation(), before);
  EXPECT_EQ(k_.removed.size(), 2u);
  EXPECT_EQ(t_.watch_count(), 0u);
  EXPECT_EQ(t_.key_count(), 0u);
  t_.Release("a");  // A hold from before: no-op.
  EXPECT_EQ(k_.removed.size(), 2u);
}

TEST_F(WatchTableTest, RefusedWatchIsRetriedAndGoneWatchIsUnbound) {
  EXPECT_EQ(t_.Acquire("missing"), -2);
  k_.inode_of["missing"] = 5;
  const int wd = t_.Acquire("missing");
  EXPECT_GE(wd, 0);
  t_.OnWatchGone(wd);  // IN_IGNORED: the kernel dropped it.
  EXPECT_EQ(t_.WatchOf("missing"), -1);
  EXPECT_TRUE(k_.removed.empty()) << "the kernel removed it, not us";
}

TEST_F(WatchTableTest, WatchCountIsBoundedByHeldDirectories) {
  for (int i = 0; i < 100; ++i) k_.inode_of["d" + std::to_string(i)] = 100 + i;
  for (int i = 0; i < 100; ++i) t_.Acquire("d" + std::to_string(i));
  EXPECT_EQ(t_.watch_count(), 100u);
  for (int i = 0; i < 100; ++i) t_.Release("d" + std::to_string(i));
  EXPECT_EQ(t_.watch_count(), 0u);
  EXPECT_EQ(k_.live_wds.size(), 0u);
}

}  // namespace
}  // namespace sluice
