// Bulk transfers and load: large and sparse files, many concurrent
// connections on several threads, aborted downloads, and curl as a real client.

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok());
    ASSERT_TRUE(root_.WriteFile("index.html", "<!doctype html><p>transfer</p>\n"));
  }

  void StartServer(std::vector<std::string> extra_flags = {}) {
    extra_flags.push_back("--root=" + root_.path());
    SLUICE_START_OR_SKIP(server_, extra_flags);
  }

  void TearDown() override {
    if (server_.running()) {
      EXPECT_TRUE(server_.Stop());
      EXPECT_TRUE(server_.ExitedWithCode(0)) << "server " << server_.DescribeExit();
    }
  }

  std::string Url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(server_.port()) + target;
  }

  // Runs curl (never reading ~/.curlrc, never using a proxy) with a timeout.
  ProcessResult Curl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-q",         "--noproxy", "*",
                                     "-sS",           "--max-time", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, std::chrono::seconds(30));
  }

  TestRoot root_;
  ServerProcess server_;
};

TEST_F(TransferTest, LargeFileIsByteExact) {
  const std::string big = PseudoRandomBytes(64 << 20, 0x5eed);
  ASSERT_TRUE(root_.WriteFile("big.bin", big));
  StartServer({"--threads=2"});
  if (IsSkipped() || HasFatalFailure()) return;
  HttpConnection c;
  ASSERT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/big.bin")));
  const std::optional<HttpResponse> r = c.ReadResponse("GET", Millis(40000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(big.size()));
  EXPECT_EQ(Fnv1a64(r->body), Fnv1a64(big));
  EXPECT_TRUE(BytesEqual(r->body, big));
  // The connection is still usable afterwards.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/index.html")));
  const std::optional<HttpResponse> next = c.ReadResponse();
  ASSERT_TRUE(next) << c.last_error();
  EXPECT_EQ(next->status, 200);
}

TEST_F(TransferTest, SparseFileLargerThan4GiB) {
  constexpr std::uint64_t kSize = (std::uint64_t{4} << 30) + 4096;  // 4294971392
  const std::string tail = PseudoRandomBytes(4096, 0x4a11);
  ASSERT_TRUE(root_.WriteSparseFile("sparse.bin", kSize, tail));
  StartServer({"--threads=2"});
  if (IsSkipped() || HasFatalFailure()) return;
  const auto start = Clock::now();
  HttpConnection c;
  ASSERT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/sparse.bin", "Connection: close\r\n")));
  const std::optional<HttpResponse> head = c.ReadResponseHead();
  ASSERT_TRUE(head) << c.last_error();
  ASSERT_EQ(head->status, 200) << head->Describe();
  ASSERT_EQ(head->Header("Content-Length"), "4294971392") << head->Describe();
  std::string last;
  ASSERT_TRUE(c.DiscardExactly(kSize, 4096, &last, Millis(60000))) << c.last_error();
  EXPECT_TRUE(BytesEqual(last, tail));
  EXPECT_TRUE(c.WaitForClose()) << c.last_error();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
}

TEST_F(TransferTest, ManyConnectionsOnSeveralThreads) {
  // Files of assorted sizes, including an empty one.
  const std::vector<std::size_t> sizes = {0, 1, 100, 1500, 4096, 16385, 65536, 131072};
  std::vector<std::string> contents;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    contents.push_back(PseudoRandomBytes(sizes[i], 1000 + i));
    ASSERT_TRUE(root_.WriteFile("f" + std::to_string(i) + ".bin", contents.back()));
  }
  StartServer({"--threads=2", "--backlog=1024"});
  if (IsSkipped() || HasFatalFailure()) return;

  constexpr int kClientThreads = 4;
  constexpr int kConnectionsPerThread = 50;  // 200 connections in total.
  constexpr int kRequestsPerConnection = 10;
  std::atomic<int> ok_responses{0};
  std::mutex errors_mutex;
  std::vector<std::string> errors;
  auto report = [&](std::string message) {
    std::lock_guard<std::mutex> lock(errors_mutex);
    if (errors.size() < 10) errors.push_back(std::move(message));
  };
  const std::string host = server_.host();
  const std::uint16_t port = server_.port();

  auto client = [&](int thread_index) {
    std::vector<HttpConnection> connections(kConnectionsPerThread);
    for (int i = 0; i < kConnectionsPerThread; ++i) {
      if (!connections[i].Connect(host, port, Millis(20000))) {
        report("connect: " + connections[i].last_error());
        return;
      }
    }
    for (int round = 0; round < kRequestsPerConnection; ++round) {
      const bool last_round = round + 1 == kRequestsPerConnection;
      // Send one request on every connection, then collect the responses, so
      // that all connections are in flight at the same time.
      for (int i = 0; i < kConnectionsPerThread; ++i) {
        const std::size_t file = (thread_index * 7 + i * 3 + round) % sizes.size();
        if (!connections[i].Send(MakeRequest("GET", "/f" + std::to_string(file) + ".bin",
                                             last_round ? "Connection: close\r\n" : ""))) {
          report("send: " + connections[i].last_error());
          return;
        }
      }
      for (int i = 0; i < kConnectionsPerThread; ++i) {
        const std::size_t file = (thread_index * 7 + i * 3 + round) % sizes.size();
        const std::optional<HttpResponse> r = connections[i].ReadResponse("GET", Millis(30000));
        if (!r) {
          report("thread " + std::to_string(thread_index) + " connection " + std::to_string(i) +
                 " round " + std::to_string(round) + ": " + connections[i].last_error());
          return;
        }
        if (r->status != 200 || Fnv1a64(r->body) != Fnv1a64(contents[file]) ||
            r->body != contents[file]) {
          report("wrong response for f" + std::to_string(file) + ".bin: " + r->Describe());
          return;
        }
        if (last_round && !connections[i].WaitForClose(Millis(10000))) {
          report("not closed after Connection: close: " + connections[i].last_error());
          return;
        }
        ok_responses.fetch_add(1);
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kClientThreads; ++t) threads.emplace_back(client, t);
  for (std::thread& thread : threads) thread.join();

  for (const std::string& error : errors) ADD_FAILURE() << error;
  EXPECT_EQ(ok_responses.load(), kClientThreads * kConnectionsPerThread * kRequestsPerConnection);
}

TEST_F(TransferTest, AbortedDownloadsDoNotHurtTheServer) {
  const std::string big = PseudoRandomBytes(64 << 20, 0xab);
  ASSERT_TRUE(root_.WriteFile("big.bin", big));
  StartServer({"--threads=2"});
  if (IsSkipped() || HasFatalFailure()) return;
  for (int i = 0; i < 5; ++i) {
    HttpConnection c;
    ASSERT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
    ASSERT_TRUE(c.Send(MakeRequest("GET", "/big.bin")));
    std::string some;
    ASSERT_TRUE(c.ReadExactly(256 * 1024, &some)) << c.last_error();
    c.Close();  // Unread data: the kernel answers with RST.
  }
  std::string error;
  const std::optional<HttpResponse> r =
      FetchOnce(server_.host(), server_.port(), MakeRequest("GET", "/index.html"), &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->status, 200);
  EXPECT_FALSE(server_.WaitForExit(Millis(0))) << "server died: " << server_.DescribeExit();
}

TEST_F(TransferTest, CurlDownloadsFilesAndErrors) {
  const std::string data = PseudoRandomBytes(1 << 20, 0xc0de);
  ASSERT_TRUE(root_.WriteFile("data.bin", data));
  ASSERT_TRUE(root_.WriteFile("dir/index.html", "<p>dir index</p>\n"));
  TestRoot out("sluice-curl-");
  ASSERT_TRUE(out.ok());
  StartServer({"--threads=2"});
  if (IsSkipped() || HasFatalFailure()) return;

  {
    const ProcessResult r =
        Curl({"-o", out.Path("get.bin"), "-w", "%{http_code} %{size_download}", Url("/data.bin")});
    ASSERT_TRUE(r.ExitedWithCode(0)) << r.Describe();
    EXPECT_EQ(r.out, "200 " + std::to_string(data.size()));
    std::string downloaded;
    ASSERT_TRUE(ReadWholeFile(out.Path("get.bin"), &downloaded));
    EXPECT_TRUE(BytesEqual(downloaded, data));
  }
  {
    const ProcessResult r = Curl({"-o", out.Path("missing.html"), "-w",
                                  "%{http_code} %{size_download}", Url("/missing.html")});
    ASSERT_TRUE(r.ExitedWithCode(0)) << r.Describe();
    EXPECT_EQ(r.out.substr(0, 4), "404 ") << r.out;
    EXPECT_NE(r.out, "404 0") << "a 404 should have a body";
  }
  {
    const ProcessResult r = Curl({"-I", "-o", out.Path("head.txt"), "-w",
                                  "%{http_code} %{size_download}", Url("/data.bin")});
    ASSERT_TRUE(r.ExitedWithCode(0)) << r.Describe();
    EXPECT_EQ(r.out, "200 0");
    std::string headers;
    ASSERT_TRUE(ReadWholeFile(out.Path("head.txt"), &headers));
    EXPECT_NE(headers.find("Content-Length: " + std::to_string(data.size()) + "\r\n"),
              std::string::npos)
        << headers;
  }
  {
    const ProcessResult r = Curl({"--http1.0", "-o", out.Path("get10.bin"), "-w",
                                  "%{http_code} %{size_download}", Url("/data.bin")});
    ASSERT_TRUE(r.ExitedWithCode(0)) << r.Describe();
    EXPECT_EQ(r.out, "200 " + std::to_string(data.size()));
    std::string downloaded;
    ASSERT_TRUE(ReadWholeFile(out.Path("get10.bin"), &downloaded));
    EXPECT_TRUE(BytesEqual(downloaded, data));
  }
  {
    const ProcessResult r = Curl(
        {"-L", "-o", out.Path("dir.html"), "-w", "%{http_code} %{num_redirects}", Url("/dir")});
    ASSERT_TRUE(r.ExitedWithCode(0)) << r.Describe();
    EXPECT_EQ(r.out, "200 1");
    std::string downloaded;
    ASSERT_TRUE(ReadWholeFile(out.Path("dir.html"), &downloaded));
    EXPECT_EQ(downloaded, "<p>dir index</p>\n");
  }
}

}  // namespace
}  // namespace sluice::test
