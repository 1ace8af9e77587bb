// Deploys seen by the real binary: the document root follows symlink swaps
// anywhere on its path, survives the deletion of the old release and the
// re-creation of the root, and the open-file cache never answers with the
// old bytes after a change has completed (write in place, rename over,
// directory rename, symlinked directories, the ConfigMap `..data` swap).
// Each check is the first request after the change: no retries, no sleeps.

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

namespace fs = std::filesystem;

class DeployRootTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(base_.ok()); }

  void StartServer(const std::string& root, int threads = 1, std::vector<std::string> extra = {}) {
    std::vector<std::string> flags = {"--root=" + root, "--threads=" + std::to_string(threads)};
    flags.insert(flags.end(), extra.begin(), extra.end());
    SLUICE_START_OR_SKIP(server_, flags);
  }

  // Status and body of GET `target` on a new connection.
  std::pair<int, std::string> Get(const std::string& target) {
    std::string error;
    std::optional<HttpResponse> r =
        FetchOnce(server_.host(), server_.port(), MakeRequest("GET", target), &error);
    if (!r) {
      ADD_FAILURE() << "GET " << target << ": " << error;
      return {0, ""};
    }
    return {r->status, r->body};
  }

  // The value of the Prometheus counter `name` (one series), or -1.
  int64_t Counter(const std::string& name) {
    const auto [status, body] = Get("/metrics?format=prometheus");
    std::smatch m;
    if (status != 200 || !std::regex_search(body, m, std::regex(name + "\\{[^}]*\\} (\\d+)"))) {
      ADD_FAILURE() << name << " is not in /metrics: " << body;
      return -1;
    }
    return std::stoll(m[1].str());
  }

  // Writes `content` into the existing file in place (same inode).
  static void OverwriteInPlace(const std::string& path, const std::string& content) {
    const int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
  }

  // `ln -s target tmp && mv -T tmp link`: an atomic symlink swap.
  void SwapSymlink(const std::string& link, const std::string& target) {
    const std::string tmp = link + ".swap-tmp";
    ASSERT_EQ(symlink(target.c_str(), tmp.c_str()), 0) << tmp;
    ASSERT_EQ(rename(tmp.c_str(), link.c_str()), 0) << link;
  }

  void WriteRelease(const std::string& dir, const std::string& tag) {
    ASSERT_TRUE(base_.WriteFile(dir + "/small.txt", "small " + tag + "\n"));
    ASSERT_TRUE(base_.WriteFile(dir + "/other.txt", "other " + tag + "\n"));
    // Larger than the small-file limit: served by splicing a descriptor.
    ASSERT_TRUE(base_.WriteFile(dir + "/big.bin", std::string(100 * 1024, tag[0])));
    ASSERT_TRUE(base_.WriteFile(dir + "/index.html", "index " + tag + "\n"));
  }

  void ExpectRelease(const std::string& tag) {
    EXPECT_EQ(Get("/small.txt"), std::make_pair(200, "small " + tag + "\n"));
    EXPECT_EQ(Get("/other.txt"), std::make_pair(200, "other " + tag + "\n"));
    const auto [status, body] = Get("/big.bin");
    EXPECT_EQ(status, 200);
    EXPECT_TRUE(BytesEqual(body, std::string(100 * 1024, tag[0])));
    EXPECT_EQ(Get("/"), std::make_pair(200, "index " + tag + "\n"));
  }

  static constexpr int64_t kNoQueueLimit = -2;
  int64_t ChangeBehindQueuedEvents(int queue_events, const std::function<void()>& flood);

  TestRoot base_{"sluice-deploy-"};
  ServerProcess server_;
};

TEST_F(DeployRootTest, SymlinkSwapTakesEffectForTheNextRequest) {
  WriteRelease("releases/1/public", "1");
  WriteRelease("releases/2/public", "2");
  ASSERT_TRUE(base_.Symlink("releases/1", "current"));
  StartServer(base_.Path("current/public"));
  // Cached (small.txt, big.bin and / twice); other.txt is not asked for yet.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Get("/small.txt"), std::make_pair(200, std::string("small 1\n")));
    EXPECT_EQ(Get("/big.bin").first, 200);
    EXPECT_EQ(Get("/"), std::make_pair(200, std::string("index 1\n")));
  }
  SwapSymlink(base_.Path("current"), "releases/2");
  ExpectRelease("2");
  // The old release goes: nothing may still depend on it.
  fs::remove_all(base_.Path("releases/1"));
  ExpectRelease("2");
  // And back again, to a release created after start-up.
  WriteRelease("releases/3/public", "3");
  SwapSymlink(base_.Path("current"), "releases/3");
  ExpectRelease("3");
}

TEST_F(DeployRootTest, EveryWorkerFollowsTheSwap) {
  WriteRelease("releases/1/public", "1");
  WriteRelease("releases/2/public", "2");
  ASSERT_TRUE(base_.Symlink("releases/1", "current"));
  StartServer(base_.Path("current/public"), /*threads=*/2);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(Get("/small.txt").second, "small 1\n");
  SwapSymlink(base_.Path("current"), "releases/2");
  fs::remove_all(base_.Path("releases/1"));
  // New connections land on either worker: every one must answer release 2.
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(Get("/small.txt"), std::make_pair(200, std::string("small 2\n")));
}

TEST_F(DeployRootTest, SwapOfASymlinkHigherOnThePath) {
  // root = BASE/site/app/public with site -> sites/a, then sites/b.
  WriteRelease("sites/a/app/public", "a");
  WriteRelease("sites/b/app/public", "b");
  ASSERT_TRUE(base_.Symlink("sites/a", "site"));
  StartServer(base_.Path("site/app/public"));
  ExpectRelease("a");
  ExpectRelease("a");
  SwapSymlink(base_.Path("site"), "sites/b");
  ExpectRelease("b");
  // A symlink inside another symlink's target: sites/b/app -> ../c/app.
  WriteRelease("sites/c/app/public", "c");
  ASSERT_TRUE(base_.Symlink("../c/app", "sites/b/app.new"));
  ASSERT_EQ(rename(base_.Path("sites/b/app.new").c_str(), base_.Path("sites/b/app").c_str()), -1)
      << "rename of a symlink over a directory must fail (EISDIR)";
  fs::remove_all(base_.Path("sites/b/app"));
  ASSERT_EQ(rename(base_.Path("sites/b/app.new").c_str(), base_.Path("sites/b/app").c_str()), 0);
  ExpectRelease("c");
}

TEST_F(DeployRootTest, RootDeletedAndRecreated) {
  WriteRelease("www", "1");
  StartServer(base_.Path("www"));
  ExpectRelease("1");
  ExpectRelease("1");
  fs::remove_all(base_.Path("www"));
  EXPECT_EQ(Get("/small.txt").first, 404);
  EXPECT_EQ(Get("/small.txt").first, 404);
  WriteRelease("www", "2");
  ExpectRelease("2");
}

TEST_F(DeployRootTest, DirectoryRenameThenEditInside) {
  ASSERT_TRUE(base_.WriteFile("www/css/site.css", "old css\n"));
  ASSERT_TRUE(base_.WriteFile("www/css.new/site.css", "new css\n"));
  StartServer(base_.Path("www"));
  EXPECT_EQ(Get("/css/site.css").second, "old css\n");
  EXPECT_EQ(Get("/css/site.css").second, "old css\n");
  // mv css css.old && mv css.new css
  ASSERT_EQ(rename(base_.Path("www/css").c_str(), base_.Path("www/css.old").c_str()), 0);
  ASSERT_EQ(rename(base_.Path("www/css.new").c_str(), base_.Path("www/css").c_str()), 0);
  EXPECT_EQ(Get("/css/site.css"), std::make_pair(200, std::string("new css\n")));
  EXPECT_EQ(Get("/css/site.css").second, "new css\n");
  // The watch for "css" must now be the new directory's, not css.old's.
  OverwriteInPlace(base_.Path("www/css/site.css"), "edited css\n");
  EXPECT_EQ(Get("/css/site.css"), std::make_pair(200, std::string("edited css\n")));
  OverwriteInPlace(base_.Path("www/css.old/site.css"), "the old one\n");
  EXPECT_EQ(Get("/css/site.css"), std::make_pair(200, std::string("edited css\n")));
}

TEST_F(DeployRootTest, ConfigMapDataSwap) {
  // Kubernetes' atomic writer: dir/..2026_x/FILE, dir/..data -> ..2026_x,
  // dir/FILE -> ..data/FILE; an update writes ..2026_y and renames a new
  // ..data link over the old one.
  ASSERT_TRUE(base_.WriteFile("www/..2026_01/config.json", "{\"v\":1}\n"));
  ASSERT_TRUE(base_.WriteFile("www/..2026_01/conf.d/extra.txt", "extra 1\n"));
  ASSERT_TRUE(base_.Symlink("..2026_01", "www/..data"));
  ASSERT_TRUE(base_.Symlink("..data/config.json", "www/config.json"));
  ASSERT_TRUE(base_.Symlink("..data/conf.d", "www/conf.d"));
  StartServer(base_.Path("www"));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Get("/config.json"), std::make_pair(200, std::string("{\"v\":1}\n")));
    EXPECT_EQ(Get("/conf.d/extra.txt"), std::make_pair(200, std::string("extra 1\n")));
  }
  ASSERT_TRUE(base_.WriteFile("www/..2026_02/config.json", "{\"v\":2}\n"));
  ASSERT_TRUE(base_.WriteFile("www/..2026_02/conf.d/extra.txt", "extra 2\n"));
  SwapSymlink(base_.Path("www/..data"), "..2026_02");
  fs::remove_all(base_.Path("www/..2026_01"));
  EXPECT_EQ(Get("/config.json"), std::make_pair(200, std::string("{\"v\":2}\n")));
  EXPECT_EQ(Get("/conf.d/extra.txt"), std::make_pair(200, std::string("extra 2\n")));
  // And an edit inside the new target, seen through the symlinked directory.
  OverwriteInPlace(base_.Path("www/..2026_02/conf.d/extra.txt"), "extra 2b\n");
  EXPECT_EQ(Get("/conf.d/extra.txt"), std::make_pair(200, std::string("extra 2b\n")));
}

TEST_F(DeployRootTest, CachedSmallFileWrittenInPlaceOrRenamedOver) {
  ASSERT_TRUE(base_.WriteFile("www/a.txt", "version 1\n"));
  ASSERT_TRUE(base_.WriteFile("www/shared/assets/app.css", "app 1\n"));
  ASSERT_TRUE(base_.Symlink("shared/assets", "www/assets"));
  StartServer(base_.Path("www"));
  for (int round = 2; round <= 4; ++round) {
    EXPECT_EQ(Get("/a.txt").second, "version " + std::to_string(round - 1) + "\n");
    EXPECT_EQ(Get("/a.txt").second, "version " + std::to_string(round - 1) + "\n");
    const std::string next = "version " + std::to_string(round) + "\n";
    if (round % 2 == 0) {
      OverwriteInPlace(base_.Path("www/a.txt"), next);  // Same size: only the bytes differ.
    } else {
      ASSERT_TRUE(base_.WriteFile("www/.a.txt.tmp", next));
      ASSERT_EQ(rename(base_.Path("www/.a.txt.tmp").c_str(), base_.Path("www/a.txt").c_str()), 0);
    }
    EXPECT_EQ(Get("/a.txt"), std::make_pair(200, next));
  }
  // A symlinked directory's target is watched: edits inside are seen.
  EXPECT_EQ(Get("/assets/app.css").second, "app 1\n");
  EXPECT_EQ(Get("/assets/app.css").second, "app 1\n");
  OverwriteInPlace(base_.Path("www/shared/assets/app.css"), "app 2\n");
  EXPECT_EQ(Get("/assets/app.css"), std::make_pair(200, std::string("app 2\n")));
}

// A file written in place and then requested: the change completed before
// the request was sent, so the response must be the new file, whole. The
// events of the write (IN_MODIFY, IN_CLOSE_WRITE) and the request reach
// the worker together; were the events applied only after the new load had
// begun, they would mark it changed and cut a response whose bytes were
// right. Spliced (larger than the small-file limit) so it is sent in
// several turns while anything still to be applied can arrive.
TEST_F(DeployRootTest, SplicedFileWrittenInPlaceBeforeItsRequestIsSentWhole) {
  constexpr size_t kSize = 2 << 20;
  ASSERT_TRUE(base_.WriteFile("www/big.bin", PseudoRandomBytes(kSize, 0)));
  StartServer(base_.Path("www"));
  for (int round = 1; round <= 150; ++round) {
    const std::string content = PseudoRandomBytes(kSize, round);
    OverwriteInPlace(base_.Path("www/big.bin"), content);
    const auto [status, body] = Get("/big.bin");
    ASSERT_EQ(status, 200) << "round " << round;
    ASSERT_TRUE(BytesEqual(body, content)) << "round " << round;
  }
}

TEST_F(DeployRootTest, ExpiryAfterFileCacheValidIsCounted) {
  ASSERT_TRUE(base_.WriteFile("www/a.txt", "a\n"));
  StartServer(base_.Path("www"), 1, {"--file_cache_valid=1s"});
  EXPECT_EQ(Get("/a.txt").second, "a\n");
  EXPECT_EQ(Get("/a.txt").second, "a\n");  // A hit.
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(Get("/a.txt").second, "a\n");  // Expired: loaded afresh.
  EXPECT_EQ(Counter("sluice_file_cache_expired_total"), 1);
}

// /proc/sys/fs/inotify/max_queued_events set for the lifetime of this
// object, then restored. The kernel reads it when an inotify instance is
// created, so only a server started meanwhile gets the small queue.
class InotifyQueueLimit {
 public:
  explicit InotifyQueueLimit(int events) {
    std::FILE* f = std::fopen(kPath, "r");
    if (f == nullptr) return;
    if (std::fscanf(f, "%d", &saved_) != 1) saved_ = -1;
    std::fclose(f);
    if (saved_ > 0) ok_ = Write(events);
  }
  ~InotifyQueueLimit() { Restore(); }
  bool ok() const { return ok_; }
  void Restore() {
    if (ok_) Write(saved_);
    ok_ = false;
  }

 private:
  static constexpr const char* kPath = "/proc/sys/fs/inotify/max_queued_events";
  static bool Write(int value) {
    std::FILE* f = std::fopen(kPath, "w");
    if (f == nullptr) return false;
    const bool written = std::fprintf(f, "%d\n", value) > 0;
    return std::fclose(f) == 0 && written;
  }
  int saved_ = -1;
  bool ok_ = false;
};

// a.txt is cached as "version 1" by a server whose inotify queue holds
// `queue_events`; with the server stopped (SIGSTOP, so nothing reads the
// queue), `flood` queues events, then a.txt is written in place. After
// SIGCONT the next GET must get "version 2". Returns events_lost_total, or
// kNoQueueLimit when the queue limit cannot be set.
int64_t DeployRootTest::ChangeBehindQueuedEvents(int queue_events,
                                                 const std::function<void()>& flood) {
  EXPECT_TRUE(base_.WriteFile("www/a.txt", "version 1\n"));
  {
    InotifyQueueLimit limit(queue_events);
    if (!limit.ok()) return kNoQueueLimit;
    StartServer(base_.Path("www"));
  }
  EXPECT_EQ(Get("/a.txt").second, "version 1\n");
  EXPECT_EQ(Get("/a.txt").second, "version 1\n");  // Cached now.
  EXPECT_EQ(kill(server_.pid(), SIGSTOP), 0);
  flood();
  OverwriteInPlace(base_.Path("www/a.txt"), "version 2\n");
  EXPECT_EQ(kill(server_.pid(), SIGCONT), 0);
  EXPECT_EQ(Get("/a.txt"), std::make_pair(200, std::string("version 2\n")));
  EXPECT_EQ(Get("/a.txt"), std::make_pair(200, std::string("version 2\n")));
  return Counter("sluice_file_cache_events_lost_total");
}

// inotify's queue overflows (IN_Q_OVERFLOW): the events that were lost may
// have said a cached file changed, so the cache must drop everything and the
// next request read the file afresh. The overflow is counted.
TEST_F(DeployRootTest, InotifyQueueOverflowDropsTheCache) {
  ASSERT_TRUE(base_.WriteFile("www/n1.txt", "n1"));
  ASSERT_TRUE(base_.WriteFile("www/n2.txt", "n2"));
  // Far more events than a 16-event queue holds, then the change itself,
  // whose event is among those lost. Writes to two other files: events that
  // concern only those names (a name created or renamed would drop every
  // entry of the directory by itself), alternating so that the kernel
  // cannot merge them.
  const int64_t lost = ChangeBehindQueuedEvents(16, [this] {
    for (int i = 0; i < 200; ++i) {
      OverwriteInPlace(base_.Path(i % 2 == 0 ? "www/n1.txt" : "www/n2.txt"), std::to_string(i));
    }
  });
  if (lost == kNoQueueLimit) GTEST_SKIP() << "cannot set fs.inotify.max_queued_events (needs root)";
  if (IsSkipped()) return;
  EXPECT_GE(lost, 1) << "the queue never overflowed: the test proved nothing";
}

// More events queued than one wake-up reads (64 reads of 16 KiB), none
// lost: the worker applies them over several wake-ups, and until the last
// is applied the cache is bypassed, so a change queued behind the flood is
// still seen by the next request.
TEST_F(DeployRootTest, InotifyFloodReadOverSeveralWakeUpsKeepsTheCacheTrue) {
  // Long names make long events: 16 bytes and the name padded, 272 here.
  const std::string n1 = "www/" + std::string(240, '1');
  const std::string n2 = "www/" + std::string(240, '2');
  ASSERT_TRUE(base_.WriteFile(n1, "n1"));
  ASSERT_TRUE(base_.WriteFile(n2, "n2"));
  // Two events per write (IN_MODIFY, IN_CLOSE_WRITE), alternating files so
  // that none is merged: 12,000 events, 3.1 MiB to read (3 wake-ups).
  const int64_t lost = ChangeBehindQueuedEvents(100000, [&] {
    for (int i = 0; i < 6000; ++i) OverwriteInPlace(base_.Path(i % 2 == 0 ? n1 : n2), "x");
  });
  if (lost == kNoQueueLimit) GTEST_SKIP() << "cannot set fs.inotify.max_queued_events (needs root)";
  if (IsSkipped()) return;
  EXPECT_EQ(lost, 0) << "the queue overflowed: the flood was not read whole";
}

}  // namespace
}  // namespace sluice::test
