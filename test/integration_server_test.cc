// Process-level behaviour of the sluice binary: readiness, startup failures,
// IPv6, and graceful shutdown on SIGTERM/SIGINT.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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

constexpr char kIndexHtml[] = "<!doctype html><p>server test</p>\n";

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok());
    ASSERT_TRUE(root_.WriteFile("index.html", kIndexHtml));
  }

  // Runs the binary with `flags`, which must make it fail at startup.
  void ExpectStartupFailure(const std::vector<std::string>& flags) {
    std::vector<std::string> argv = {SluiceBinary()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    std::string joined;
    for (const std::string& flag : flags) joined += " " + flag;
    SCOPED_TRACE("sluice" + joined);
    const ProcessResult result = RunProcess(argv, std::chrono::seconds(10));
    ASSERT_TRUE(result.started) << result.Describe();
    ASSERT_FALSE(result.timed_out) << "still running after 10 s: " << result.Describe();
    EXPECT_TRUE(result.ExitedNonZero()) << result.Describe();
    EXPECT_LT(result.elapsed, std::chrono::seconds(5)) << result.Describe();
    EXPECT_FALSE(result.err.empty()) << result.Describe();
    EXPECT_LE(CountLines(result.err), 2) << "expected a one-line error: " << result.Describe();
    EXPECT_EQ(result.err.find("listening on"), std::string::npos) << result.Describe();
    EXPECT_EQ(result.out.find("listening on"), std::string::npos) << result.Describe();
  }

  std::optional<HttpResponse> GetIndex(const ServerProcess& server) {
    std::string error;
    std::optional<HttpResponse> r =
        FetchOnce(server.host(), server.port(), MakeRequest("GET", "/index.html"), &error);
    if (!r) ADD_FAILURE() << error;
    return r;
  }

  TestRoot root_;
};

TEST_F(ServerTest, ReportsListeningAddressAndServes) {
  ServerProcess server;
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--threads=2"});
  EXPECT_NE(server.ready_line().find("listening on 127.0.0.1:" + std::to_string(server.port())),
            std::string::npos)
      << server.ready_line();
  const std::optional<HttpResponse> r = GetIndex(server);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->body, kIndexHtml);
  EXPECT_TRUE(server.Stop());
  EXPECT_TRUE(server.ExitedWithCode(0)) << server.DescribeExit();
}

TEST_F(ServerTest, ServesOverIpv6Loopback) {
  {
    const int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in6 addr = {};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    const bool usable =
        probe >= 0 && bind(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) close(probe);
    if (!usable) GTEST_SKIP() << "::1 is not available on this machine";
  }
  ServerProcess server;
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--listen=[::1]:0"});
  EXPECT_EQ(server.host(), "::1") << server.ready_line();
  EXPECT_NE(server.ready_line().find("listening on [::1]:"), std::string::npos)
      << server.ready_line();
  const std::optional<HttpResponse> r = GetIndex(server);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->body, kIndexHtml);
  EXPECT_TRUE(server.Stop());
  EXPECT_TRUE(server.ExitedWithCode(0)) << server.DescribeExit();
}

TEST_F(ServerTest, UnknownFlagFailsStartup) {
  ExpectStartupFailure({"--root=" + root_.path(), "--listen=127.0.0.1:0", "--no_such_flag=1"});
}

TEST_F(ServerTest, BadFlagValueFailsStartup) {
  ExpectStartupFailure({"--root=" + root_.path(), "--listen=127.0.0.1:0", "--threads=lots"});
}

TEST_F(ServerTest, BadListenAddressFailsStartup) {
  ExpectStartupFailure({"--root=" + root_.path(), "--listen=not-an-address"});
}

TEST_F(ServerTest, MissingRootFailsStartup) {
  ExpectStartupFailure({"--root=" + root_.Path("does/not/exist"), "--listen=127.0.0.1:0"});
}

TEST_F(ServerTest, RootThatIsAFileFailsStartup) {
  ExpectStartupFailure({"--root=" + root_.Path("index.html"), "--listen=127.0.0.1:0"});
}

TEST_F(ServerTest, PortInUseFailsStartup) {
  // A plain listening socket (no SO_REUSEPORT) holds the port.
  const int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(holder, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder, 16), 0);
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  ExpectStartupFailure({"--root=" + root_.path(), "--listen=127.0.0.1:" + std::to_string(port)});
  close(holder);
}

void ExpectQuickCleanExit(ServerProcess& server, int signal) {
  const auto start = Clock::now();
  ASSERT_TRUE(server.Signal(signal));
  if (!server.WaitForExit(std::chrono::seconds(3))) {
    ADD_FAILURE() << "server still running 3 s after signal " << signal;
    return;  // The ServerProcess destructor escalates.
  }
  EXPECT_TRUE(server.ExitedWithCode(0)) << server.DescribeExit();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "slow shutdown";
}

TEST_F(ServerTest, BadSqpollIdleFailsStartup) {
  ExpectStartupFailure(
      {"--root=" + root_.path(), "--listen=127.0.0.1:0", "--sqpoll", "--sqpoll_idle=0s"});
}

// --sqpoll: the rings get a kernel SQ thread, and every path still works:
// pipelined requests answered in order, a spliced download byte-exact,
// many connections across both workers, and a clean SIGTERM.
TEST_F(ServerTest, SqpollRingsServeEverything) {
  const std::string big = PseudoRandomBytes(3 << 20, 7);
  ASSERT_TRUE(root_.WriteFile("big.bin", big));
  ServerProcess server;
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--threads=2", "--sqpoll"});
  EXPECT_NE(server.ready_line().find(" ring=SQPOLL"), std::string::npos) << server.ready_line();

  HttpConnection c;
  ASSERT_TRUE(c.Connect(server.host(), server.port())) << c.last_error();
  std::string pipeline;
  constexpr int kPipelined = 40;
  for (int i = 0; i < kPipelined; ++i) {
    pipeline += MakeRequest("GET", i % 10 == 9 ? "/big.bin" : "/index.html");
  }
  ASSERT_TRUE(c.Send(pipeline)) << c.last_error();
  for (int i = 0; i < kPipelined; ++i) {
    const std::optional<HttpResponse> r = c.ReadResponse();
    ASSERT_TRUE(r) << "response " << i << ": " << c.last_error();
    ASSERT_EQ(r->status, 200) << r->Describe();
    if (i % 10 == 9) {
      ASSERT_TRUE(r->body == big) << "response " << i << ": big.bin differs";
    } else {
      ASSERT_EQ(r->body, kIndexHtml) << "response " << i;
    }
  }
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::string error;
        const std::optional<HttpResponse> r =
            FetchOnce(server.host(), server.port(), MakeRequest("GET", "/index.html"), &error);
        if (r && r->status == 200 && r->body == kIndexHtml) ++ok;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(ok.load(), 200);
  ExpectQuickCleanExit(server, SIGTERM);
}

TEST_F(ServerTest, SigtermWhenIdleExitsZero) {
  ServerProcess server;
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--threads=2"});
  ASSERT_TRUE(GetIndex(server));
  ExpectQuickCleanExit(server, SIGTERM);
}

TEST_F(ServerTest, SigintWhenIdleExitsZero) {
  ServerProcess server;
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--threads=2"});
  ASSERT_TRUE(GetIndex(server));
  ExpectQuickCleanExit(server, SIGINT);
}

TEST_F(ServerTest, SigtermClosesIdleKeepAliveConnections) {
  ServerProcess server;
  // The drain closes what the server has accepted. With --defer_accept a
  // connection that never sent anything stays in the kernel until its
  // first bytes or the end of the deferral; with the harness's
  // --drain_delay=0 the listeners close before that (README, --drain_delay).
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--threads=2", "--defer_accept=0"});
  // One connection that has completed a request, one that never sent anything.
  HttpConnection used, fresh;
  ASSERT_TRUE(used.Connect(server.host(), server.port())) << used.last_error();
  ASSERT_TRUE(fresh.Connect(server.host(), server.port())) << fresh.last_error();
  ASSERT_TRUE(used.Send(MakeRequest("GET", "/index.html")));
  const std::optional<HttpResponse> r = used.ReadResponse();
  ASSERT_TRUE(r) << used.last_error();
  EXPECT_EQ(r->body, kIndexHtml);
  EXPECT_TRUE(used.ExpectNoData(Millis(200))) << used.last_error();

  ASSERT_TRUE(server.Signal(SIGTERM));
  EXPECT_TRUE(used.WaitForClose(Millis(3000))) << used.last_error();
  EXPECT_TRUE(fresh.WaitForClose(Millis(3000))) << fresh.last_error();
  ASSERT_TRUE(server.WaitForExit(std::chrono::seconds(5))) << "server did not exit";
  EXPECT_TRUE(server.ExitedWithCode(0)) << server.DescribeExit();
}

TEST_F(ServerTest, SigtermLetsInFlightDownloadFinish) {
  const std::string big = PseudoRandomBytes(64 << 20, 64);
  ASSERT_TRUE(root_.WriteFile("big.bin", big));
  ServerProcess server;
  SLUICE_START_OR_SKIP(server, {"--root=" + root_.path(), "--threads=2", "--drain_timeout=30s"});
  HttpConnection c;
  ASSERT_TRUE(c.Connect(server.host(), server.port())) << c.last_error();
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/big.bin")));
  const std::optional<HttpResponse> head = c.ReadResponseHead();
  ASSERT_TRUE(head) << c.last_error();
  ASSERT_EQ(head->status, 200) << head->Describe();
  ASSERT_EQ(head->Header("Content-Length"), std::to_string(big.size()));

  std::string body;
  ASSERT_TRUE(c.ReadExactly(1 << 20, &body)) << c.last_error();
  ASSERT_TRUE(server.Signal(SIGTERM));
  // Read the rest slowly: 1 MiB every 10 ms, bounded by an overall deadline.
  const auto deadline = Clock::now() + std::chrono::seconds(40);
  while (body.size() < big.size() && Clock::now() < deadline) {
    std::this_thread::sleep_for(Millis(10));
    const std::size_t want = std::min<std::size_t>(1 << 20, big.size() - body.size());
    if (!c.ReadExactly(want, &body, Millis(10000))) break;
  }
  ASSERT_TRUE(BytesEqual(body, big)) << c.last_error();
  EXPECT_TRUE(c.WaitForClose(Millis(10000))) << c.last_error();
  ASSERT_TRUE(server.WaitForExit(std::chrono::seconds(10))) << "server did not exit after drain";
  EXPECT_TRUE(server.ExitedWithCode(0)) << server.DescribeExit();
}

}  // namespace
}  // namespace sluice::test
