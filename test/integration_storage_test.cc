// Slow and failing storage: the real binary serving a FUSE mount
// (test/support/slowfs.py) whose open, getattr and read stall or fail on
// command, and an ordinary directory whose files change under a download.
//
// What must hold whatever the storage does: a response carries only its own
// file's bytes, a descriptor the kernel opened is closed even when the
// client's deadline passed first, a stalled file never holds up other clients
// of the same worker, a read error after the head ends the connection early
// (and before the head is a 500), and the worker goes on serving.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/slow_fs.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

using std::chrono::seconds;

// How long a stalled operation sleeps in the FS, and how long after its end
// the server gets to act on the completion.
constexpr int kStallSeconds = 4;
constexpr Millis kStallWait{(kStallSeconds + 4) * 1000};
constexpr Millis kSettle{300};
constexpr std::size_t kBigBytes = 256 * 1024;  // Spliced (> 64 KiB).
constexpr std::size_t kSmallBytes = 4 * 1024;  // Read into memory (<= 16 KiB).

// Descriptors of a process, by kind.
struct FdCensus {
  int total = 0;
  int pipes = 0;
  std::vector<std::string> under_mount;  // Targets inside the FUSE mount.

  int non_pipes() const { return total - pipes; }
};

FdCensus TakeCensus(pid_t pid, const std::string& mount_path) {
  FdCensus census;
  for (const std::string& target : OpenDescriptors(pid)) {
    ++census.total;
    if (target.rfind("pipe:", 0) == 0) ++census.pipes;
    if (!mount_path.empty() && target.rfind(mount_path + "/", 0) == 0) {
      census.under_mount.push_back(target);
    }
  }
  return census;
}

std::string Join(const std::vector<std::string>& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
  return text;
}

std::string Rule(const std::string& file, const std::string& op, const std::string& fields) {
  return "\"" + file + "\": {\"" + op + "\": {" + fields + "}}";
}

class StorageTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_.running()) {
      EXPECT_TRUE(server_.Stop());
      EXPECT_TRUE(server_.ExitedWithCode(0)) << "server " << server_.DescribeExit();
    }
  }

  // Mounts the FS with the files every FUSE test uses.
  void MountFiles() {
    SLUICE_MOUNT_SLOWFS_OR_SKIP(fs_);
    ASSERT_TRUE(fs_.WriteFile("stall.bin", stall_));
    ASSERT_TRUE(fs_.WriteFile("other.bin", other_));
    ASSERT_TRUE(fs_.WriteFile("slowopen.bin", PseudoRandomBytes(kSmallBytes, 3)));
    ASSERT_TRUE(fs_.WriteFile("bad.bin", bad_));
    ASSERT_TRUE(fs_.WriteFile("badsmall.txt", PseudoRandomBytes(kSmallBytes, 5)));
    ASSERT_TRUE(fs_.WriteFile("badstat.txt", PseudoRandomBytes(kSmallBytes, 6)));
    ASSERT_TRUE(fs_.WriteFile("normal.txt", normal_));
  }

  void StartServer(const std::string& root, std::vector<std::string> flags) {
    flags.push_back("--root=" + root);
    flags.push_back("--threads=1");
    // The FUSE mount (no allow_other) is reachable only by root, who
    // mounted it: this server must stay root rather than drop to nobody.
    flags.push_back("--user=root");
    SLUICE_START_OR_SKIP(server_, flags);
  }

  // Mount, then a one-worker server without the open-file cache and with
  // 1 s deadlines, so that every stall outlives a deadline.
  void MountAndStart() {
    MountFiles();
    if (IsSkipped() || HasFatalFailure()) return;
    StartServer(fs_.mount_path(),
                {"--file_cache_entries=0", "--header_timeout=1s", "--send_timeout=1s"});
  }

  std::optional<HttpResponse> Get(const std::string& target, std::string* error) {
    return FetchOnce(server_.host(), server_.port(), MakeRequest("GET", target), error);
  }

  nlohmann::json Metrics() {
    std::string error;
    const std::optional<HttpResponse> r = Get("/metrics", &error);
    if (!r) return nlohmann::json();
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  // GET `target` on a new connection: 200 with exactly `content`.
  void ExpectFile(const std::string& target, const std::string& content) {
    std::string error;
    const std::optional<HttpResponse> r = Get(target, &error);
    ASSERT_TRUE(r) << target << ": " << error;
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_TRUE(BytesEqual(r->body, content)) << target;
  }

  // Sends GET `target` on `c` without reading the answer.
  void SendGet(HttpConnection* c, const std::string& target) {
    ASSERT_TRUE(c->Connect(server_.host(), server_.port())) << c->last_error();
    ASSERT_TRUE(c->Send(MakeRequest("GET", target))) << c->last_error();
  }

  // Whatever a timed-out client got: at most one head, then only a prefix of
  // its own file.
  void ExpectOnlyOwnBytes(HttpConnection* c, const std::string& content) {
    std::string raw;
    c->ReadToEof(&raw, Millis(3000));
    const std::size_t head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos) return;  // No head: nothing to check.
    const std::string body = raw.substr(head_end + 4);
    ASSERT_LE(body.size(), content.size());
    EXPECT_TRUE(BytesEqual(body, content.substr(0, body.size())))
        << "a timed-out client received bytes that are not its file's";
  }

  // The server's descriptors once it has finished with earlier clients: no
  // file of the mount open and the same count for 300 ms (at most 3 s).
  FdCensus SettledCensus() {
    FdCensus last = TakeCensus(server_.pid(), fs_.mount_path());
    auto stable_since = Clock::now();
    const auto deadline = stable_since + Millis(3000);
    while (Clock::now() < deadline) {
      std::this_thread::sleep_for(Millis(50));
      const FdCensus now = TakeCensus(server_.pid(), fs_.mount_path());
      if (now.total != last.total || !now.under_mount.empty()) stable_since = Clock::now();
      last = now;
      if (Clock::now() - stable_since >= Millis(300)) break;
    }
    return last;
  }

  // Waits (bounded) until the server holds no descriptor inside the mount
  // and exactly `baseline` descriptors; reports what is left otherwise.
  void ExpectDescriptorsBackTo(const FdCensus& baseline, int extra_pipes_allowed) {
    FdCensus now;
    const auto deadline = Clock::now() + Millis(3000);
    do {
      now = TakeCensus(server_.pid(), fs_.mount_path());
      if (now.under_mount.empty() && now.non_pipes() == baseline.non_pipes() &&
          now.pipes <= baseline.pipes + extra_pipes_allowed) {
        break;
      }
      std::this_thread::sleep_for(Millis(50));
    } while (Clock::now() < deadline);
    EXPECT_TRUE(now.under_mount.empty())
        << "descriptors of the storage left open: " << Join(now.under_mount);
    EXPECT_EQ(now.non_pipes(), baseline.non_pipes())
        << "all descriptors now: " << Join(OpenDescriptors(server_.pid()));
    EXPECT_LE(now.pipes, baseline.pipes + extra_pipes_allowed);
  }

  // A spliced file whose reads from 64 KiB on fail: the head is out, so the
  // client must see the connection end short of Content-Length.
  void ExpectReadErrorEndsBodyEarly() {
    HttpConnection c;
    SendGet(&c, "/bad.bin");
    const std::optional<HttpResponse> head = c.ReadResponseHead(Millis(5000));
    ASSERT_TRUE(head) << c.last_error();
    ASSERT_EQ(head->status, 200) << head->Describe();
    EXPECT_EQ(head->Header("Content-Length"), std::to_string(bad_.size()));
    std::string body;  // ReadToEof starts with what is already buffered.
    EXPECT_TRUE(c.ReadToEof(&body, Millis(5000))) << "no end of connection: " << c.last_error();
    EXPECT_LT(body.size(), bad_.size()) << "a read error was papered over";
    ASSERT_LE(body.size(), bad_.size());
    EXPECT_TRUE(BytesEqual(body, bad_.substr(0, body.size())));
    EXPECT_TRUE(fs_.WaitForLog("read bad.bin end delay=0,EIO", 1, Millis(1000))) << fs_.Log();
  }

  // statx and a small file's read fail before any head is sent: 500.
  void ExpectErrorsBeforeHeadAre500() {
    for (const std::string target : {"/badstat.txt", "/badsmall.txt"}) {
      std::string error;
      const std::optional<HttpResponse> r = Get(target, &error);
      ASSERT_TRUE(r) << target << ": " << error;
      EXPECT_TRUE(IsErrorResponse(*r, 500)) << target << ": " << r->Describe();
    }
    EXPECT_TRUE(fs_.WaitForLog("getattr badstat.txt end delay=0,EIO", 1, Millis(1000)));
    EXPECT_TRUE(fs_.WaitForLog("read badsmall.txt end delay=0,EIO", 1, Millis(1000)));
  }

  // Client 2 asks for normal.txt and other.bin while a stall is under way.
  void ExpectPromptAnswers() {
    for (const auto& [target, content] :
         {std::pair{"/normal.txt", &normal_}, std::pair{"/other.bin", &other_}}) {
      const auto start = Clock::now();
      ExpectFile(target, *content);
      const auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start);
      EXPECT_LT(elapsed.count(), 500)
          << target << " took " << elapsed.count() << " ms while another client's file stalled";
    }
  }

  static constexpr const char* kAllFaults =
      "{\"stall.bin\": {\"read\": {\"delay\": 4, \"times\": 1}},"
      " \"slowopen.bin\": {\"open\": {\"delay\": 4}},"
      " \"bad.bin\": {\"read\": {\"error\": \"EIO\", \"min_offset\": 65536}},"
      " \"badsmall.txt\": {\"read\": {\"error\": \"EIO\"}},"
      " \"badstat.txt\": {\"getattr\": {\"error\": \"EIO\", \"skip\": 1}}}";

  const std::string stall_ = PseudoRandomBytes(kBigBytes, 1);
  const std::string other_ = PseudoRandomBytes(kBigBytes, 2);
  const std::string bad_ = PseudoRandomBytes(kBigBytes, 4);
  const std::string normal_ = PseudoRandomBytes(kSmallBytes, 7);
  TestRoot root_;
  SlowFs fs_;  // Before server_: the server stops before the unmount.
  ServerProcess server_;
};

// (a) A read that completes after its client's deadline must not leave its
// bytes for the next response.
TEST_F(StorageTest, LateReadNeverReachesAnotherClient) {
  MountAndStart();
  if (IsSkipped() || HasFatalFailure()) return;
  ExpectFile("/other.bin", other_);  // Warm: a pipe in the pool.
  for (int round = 1; round <= 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ASSERT_TRUE(fs_.SetRules("{" + Rule("stall.bin", "read", "\"delay\": 4, \"times\": 1") + "}"));
    HttpConnection first;
    SendGet(&first, "/stall.bin");
    ASSERT_TRUE(fs_.WaitForLog("read stall.bin begin", round, Millis(3000))) << fs_.Log();
    ASSERT_TRUE(fs_.WaitForLog("read stall.bin end", round, kStallWait)) << fs_.Log();
    ExpectOnlyOwnBytes(&first, stall_);
    std::this_thread::sleep_for(kSettle);
    ExpectFile("/other.bin", other_);
  }
}

// (b) An OPENAT2 that returns a descriptor after the deadline: the
// descriptor must still be closed.
TEST_F(StorageTest, SlowOpenAfterTimeoutLeaksNoDescriptor) {
  MountAndStart();
  if (IsSkipped() || HasFatalFailure()) return;
  ExpectFile("/normal.txt", normal_);
  const FdCensus baseline = SettledCensus();
  ASSERT_TRUE(fs_.SetRules("{" + Rule("slowopen.bin", "open", "\"delay\": 4") + "}"));
  std::vector<HttpConnection> clients(3);
  for (HttpConnection& c : clients) SendGet(&c, "/slowopen.bin");
  ASSERT_TRUE(fs_.WaitForLog("open slowopen.bin end", 3, kStallWait)) << fs_.Log();
  for (HttpConnection& c : clients) c.Close();
  std::this_thread::sleep_for(kSettle);
  ExpectDescriptorsBackTo(baseline, /*extra_pipes_allowed=*/0);
  ExpectFile("/normal.txt", normal_);
}

// (c) One worker, one stalled read: other clients are answered at once.
TEST_F(StorageTest, StalledReadDoesNotDelayOtherClients) {
  MountFiles();
  if (IsSkipped() || HasFatalFailure()) return;
  StartServer(fs_.mount_path(), {"--file_cache_entries=0"});
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(fs_.SetRules("{" + Rule("stall.bin", "read", "\"delay\": 4, \"times\": 1") + "}"));
  HttpConnection first;
  SendGet(&first, "/stall.bin");
  ASSERT_TRUE(fs_.WaitForLog("read stall.bin begin", 1, Millis(3000))) << fs_.Log();
  ExpectPromptAnswers();
  // Within the default deadlines the stalled client gets its whole file.
  const std::optional<HttpResponse> r = first.ReadResponse("GET", kStallWait);
  ASSERT_TRUE(r) << first.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(BytesEqual(r->body, stall_));
}

// (d) A read error after the head: a short body, then the worker goes on.
TEST_F(StorageTest, ReadErrorMidBodyEndsConnectionEarly) {
  MountAndStart();
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(fs_.SetRules(
      "{" + Rule("bad.bin", "read", "\"error\": \"EIO\", \"min_offset\": 65536") + "}"));
  ExpectReadErrorEndsBodyEarly();
  ExpectFile("/other.bin", other_);
}

// (e) statx or a small file's read fails before the head: 500, and the
// worker goes on.
TEST_F(StorageTest, ErrorsBeforeHeadAre500) {
  MountAndStart();
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(fs_.SetRules("{" + Rule("badstat.txt", "getattr", "\"error\": \"EIO\", \"skip\": 1") +
                           ", " + Rule("badsmall.txt", "read", "\"error\": \"EIO\"") + "}"));
  ExpectErrorsBeforeHeadAre500();
  ExpectFile("/normal.txt", normal_);
  ExpectFile("/other.bin", other_);
}

// (f) Every fault above at once in one server; afterwards the server holds
// what it held before. Pipes may differ by what the pool keeps idle: two
// spliced responses overlap here, so up to two more pooled pipes.
TEST_F(StorageTest, AllFaultsInOneServerLeaveDescriptorsAsBefore) {
  MountAndStart();
  if (IsSkipped() || HasFatalFailure()) return;
  ExpectFile("/normal.txt", normal_);
  ExpectFile("/other.bin", other_);
  const FdCensus baseline = SettledCensus();
  ASSERT_TRUE(fs_.SetRules(kAllFaults));
  HttpConnection stalled;
  SendGet(&stalled, "/stall.bin");
  std::vector<HttpConnection> opening(3);
  for (HttpConnection& c : opening) SendGet(&c, "/slowopen.bin");
  ASSERT_TRUE(fs_.WaitForLog("read stall.bin begin", 1, Millis(3000))) << fs_.Log();
  ExpectPromptAnswers();
  ExpectReadErrorEndsBodyEarly();
  ExpectErrorsBeforeHeadAre500();
  ASSERT_TRUE(fs_.WaitForLog("read stall.bin end", 1, kStallWait)) << fs_.Log();
  ASSERT_TRUE(fs_.WaitForLog("open slowopen.bin end", 3, kStallWait)) << fs_.Log();
  ExpectOnlyOwnBytes(&stalled, stall_);
  for (HttpConnection& c : opening) c.Close();
  std::this_thread::sleep_for(kSettle);
  ExpectFile("/other.bin", other_);
  ExpectDescriptorsBackTo(baseline, /*extra_pipes_allowed=*/4);
}

// (g) On an ordinary directory with the open-file cache: a file that is
// truncated, or rewritten in place, while a slow client downloads it must not
// reach the client as a complete response of the announced length.
// (f) Directory listings read on the helper pool: a directory whose readdir
// stalls holds up neither the worker nor other clients; a full queue is a
// 503; a client that times out while its directory is read is closed, and
// the late result is freed without touching its connection.
class ListingStorageTest : public StorageTest {
 protected:
  void MountListed(std::vector<std::string> flags) {
    MountFiles();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(fs_.MakeDir("listed"));
    ASSERT_TRUE(fs_.WriteFile("listed/one.txt", "1"));
    ASSERT_TRUE(fs_.WriteFile("listed/two.txt", "22"));
    flags.push_back("--directory_listing");
    StartServer(fs_.mount_path(), flags);
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(fs_.SetRules("{" + Rule("listed", "readdir", "\"delay\": 3, \"times\": 1") + "}"));
  }
};

TEST_F(ListingStorageTest, SlowDirectoryDoesNotStallOtherClients) {
  MountListed({});
  if (IsSkipped() || HasFatalFailure()) return;
  HttpConnection first;
  SendGet(&first, "/listed/");
  ASSERT_TRUE(fs_.WaitForLog("readdir listed begin", 1, Millis(3000))) << fs_.Log();
  ExpectPromptAnswers();
  const std::optional<HttpResponse> r = first.ReadResponse("GET", kStallWait);
  ASSERT_TRUE(r) << first.last_error();
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_NE(r->body.find(">one.txt<"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find(">two.txt<"), std::string::npos) << r->body;
  EXPECT_EQ(Metrics()["totals"]["blocking_pool"]["queue_depth"], 0);
}

TEST_F(ListingStorageTest, FullQueueIs503WithRetryAfter) {
  MountListed({"--blocking_pool_queue=1"});
  if (IsSkipped() || HasFatalFailure()) return;
  HttpConnection first;
  SendGet(&first, "/listed/");
  ASSERT_TRUE(fs_.WaitForLog("readdir listed begin", 1, Millis(3000))) << fs_.Log();
  std::string error;
  const std::optional<HttpResponse> refused = Get("/listed/", &error);
  ASSERT_TRUE(refused) << error;
  EXPECT_EQ(refused->status, 503) << refused->Describe();
  EXPECT_EQ(refused->Header("Retry-After"), "1");
  const nlohmann::json m = Metrics();
  EXPECT_EQ(m["totals"]["blocking_pool"]["jobs_rejected_total"], 1) << m;
  EXPECT_EQ(m["totals"]["blocking_pool"]["queue_depth"], 1) << m;
  const std::optional<HttpResponse> r = first.ReadResponse("GET", kStallWait);
  ASSERT_TRUE(r) << first.last_error();
  EXPECT_EQ(r->status, 200) << r->Describe();
}

TEST_F(ListingStorageTest, TimeoutWhileListingClosesAndFreesTheLateResult) {
  MountListed({"--header_timeout=1s"});
  if (IsSkipped() || HasFatalFailure()) return;
  const FdCensus baseline = SettledCensus();
  HttpConnection first;
  SendGet(&first, "/listed/");
  ASSERT_TRUE(fs_.WaitForLog("readdir listed begin", 1, Millis(3000))) << fs_.Log();
  // Closed at the deadline, long before the directory is read.
  const auto start = Clock::now();
  std::string raw;
  EXPECT_TRUE(first.ReadToEof(&raw, Millis(2500))) << first.last_error();
  EXPECT_LT(std::chrono::duration_cast<Millis>(Clock::now() - start).count(), 2500);
  EXPECT_EQ(raw.find("one.txt"), std::string::npos);
  // The read ends; its result reaches nobody, and the worker goes on.
  ASSERT_TRUE(fs_.WaitForLog("readdir listed end", 1, kStallWait)) << fs_.Log();
  std::this_thread::sleep_for(kSettle);
  std::string error;
  const std::optional<HttpResponse> again = Get("/listed/", &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->status, 200) << again->Describe();
  EXPECT_NE(again->body.find(">two.txt<"), std::string::npos);
  const nlohmann::json m = Metrics();
  EXPECT_EQ(m["totals"]["blocking_pool"]["queue_depth"], 0) << m;
  EXPECT_GE(m["totals"]["connections"]["timeouts_total"].get<int>(), 1) << m;
  ExpectDescriptorsBackTo(baseline, 0);
}

class ChangedFileTest : public StorageTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ChangedFileTest, DownloadEndsEarlyWhenFileChanges) {
  const bool truncate = GetParam();
  constexpr std::size_t kFileBytes = 8 << 20;
  const std::string original = PseudoRandomBytes(kFileBytes, 8);
  ASSERT_TRUE(root_.ok());
  ASSERT_TRUE(root_.WriteFile("big.bin", original));
  StartServer(root_.path(), {});
  if (IsSkipped() || HasFatalFailure()) return;

  HttpConnection c;
  ASSERT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
  const int rcvbuf = 16 * 1024;
  ASSERT_EQ(setsockopt(c.fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/big.bin")));
  const std::optional<HttpResponse> head = c.ReadResponseHead();
  ASSERT_TRUE(head) << c.last_error();
  ASSERT_EQ(head->status, 200) << head->Describe();
  ASSERT_EQ(head->Header("Content-Length"), std::to_string(kFileBytes));
  std::string body;
  ASSERT_TRUE(c.ReadExactly(64 * 1024, &body)) << c.last_error();
  std::this_thread::sleep_for(Millis(300));  // The server fills every buffer it can.

  if (truncate) {
    ASSERT_EQ(truncate64(root_.Path("big.bin").c_str(), 0), 0);
  } else {
    // Same length, other bytes, written into the same inode.
    std::fstream f(root_.Path("big.bin"), std::ios::in | std::ios::out | std::ios::binary);
    const std::string changed = PseudoRandomBytes(kFileBytes, 9);
    f.write(changed.data(), static_cast<std::streamsize>(changed.size()));
    f.close();
    ASSERT_TRUE(f) << "rewriting big.bin failed";
  }

  // Read on until the announced length or the end of the connection.
  const auto deadline = Clock::now() + Millis(10000);
  while (body.size() < kFileBytes && Clock::now() < deadline) {
    if (c.ReadSome(kFileBytes - body.size(), &body, Millis(2000)) == 0) break;
  }
  EXPECT_LT(body.size(), kFileBytes)
      << "the client got a complete " << kFileBytes << "-byte response although the file "
      << (truncate ? "was truncated" : "was rewritten") << " during the download";
  EXPECT_TRUE(c.eof() || c.reset()) << "connection neither ended nor completed: " << c.last_error();
}

// (h) A chunk whose pages are all in the page cache and up to date is
// spliced into the pipe in place; one that is not (here: evicted with
// POSIX_FADV_DONTNEED) goes through the ring's SPLICE in io-wq, where a
// read may wait. Either way the bytes are the file's.
TEST_F(StorageTest, ResidentChunksSplicedInPlaceColdOnesThroughTheRing) {
  constexpr std::size_t kFileBytes = 3 << 20;
  const std::string content = PseudoRandomBytes(kFileBytes, 11);
  ASSERT_TRUE(root_.ok());
  ASSERT_TRUE(root_.WriteFile("cold.bin", content));
  {
    const int fd = open((root_.path() + "/cold.bin").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    const bool synced = fdatasync(fd) == 0;  // Only clean pages can be dropped.
    const int advised = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    void* map = mmap(nullptr, kFileBytes, PROT_READ, MAP_SHARED, fd, 0);
    std::vector<unsigned char> pages(kFileBytes / 4096);
    const bool probed = map != MAP_FAILED && mincore(map, kFileBytes, pages.data()) == 0;
    if (map != MAP_FAILED) munmap(map, kFileBytes);
    close(fd);
    ASSERT_TRUE(synced && advised == 0 && probed) << std::strerror(errno);
    int resident = 0;
    for (unsigned char p : pages) resident += p & 1;
    ASSERT_EQ(resident, 0) << "the file system kept the evicted pages: nothing here is cold";
  }
  StartServer(root_.path(), {});
  if (IsSkipped() || HasFatalFailure()) return;
  auto chunks = [this](const char* how) {
    const nlohmann::json m = Metrics();
    return m["totals"]["buffers"][std::string("file_chunks_") + how + "_total"].get<int64_t>();
  };
  ExpectFile("/cold.bin", content);
  const int64_t ring = chunks("ring");
  const int64_t in_place = chunks("inline");
  EXPECT_GE(ring, 1) << "a cold chunk was spliced in place, where its read would block";
  // Now every page is cached: no chunk needs io-wq.
  ExpectFile("/cold.bin", content);
  EXPECT_EQ(chunks("ring"), ring);
  EXPECT_GE(chunks("inline") - in_place, 3) << "cached chunks still went through io-wq";
}

INSTANTIATE_TEST_SUITE_P(Storage, ChangedFileTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "Truncated" : "RewrittenInPlace";
                         });

}  // namespace
}  // namespace sluice::test
