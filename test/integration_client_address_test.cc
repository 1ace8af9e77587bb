// Behind a load balancer, with the real binary: the client address taken
// from a trusted proxy's forwarding fields (--trusted_proxies), the PROXY
// protocol on the main listener (--proxy_protocol), the per-address limit
// (--max_connections_per_ip), and a real HAProxy in front when installed.
// Loopback is a /8, so a test can be many clients (127.0.0.x sources).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// PROXY v2 for TCP over IPv4 (fam 0x11) or IPv6 (0x21); `local` sends the
// LOCAL command with no addresses; `tlvs` follows the addresses.
std::string ProxyV2(bool local, const std::string& src, const std::string& dst,
                    const std::string& tlvs = "") {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(local ? '\x20' : '\x21');
  if (local) {
    h.push_back('\x00');
    h.push_back('\x00');
    h.push_back('\x00');
    return h;
  }
  const bool v6 = src.size() == 16;
  h.push_back(v6 ? '\x21' : '\x11');
  const size_t len = src.size() + dst.size() + 4 + tlvs.size();
  h.push_back(static_cast<char>(len >> 8));
  h.push_back(static_cast<char>(len & 0xff));
  h += src + dst;
  h += std::string("\x15\xb3\x00\x50", 4);  // Ports 5555 and 80.
  return h + tlvs;
}

class ClientAddressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok() && logs_.ok());
    ASSERT_TRUE(root_.WriteFile("index.html", "hello\n"));
    log_path_ = logs_.Path("access.log");
  }

  void Start(std::vector<std::string> flags) {
    flags.push_back("--root=" + root_.path());
    flags.push_back("--access_log=" + log_path_);
    const ServerProcess::StartResult r = server_.Start(flags);
    if (r == ServerProcess::StartResult::kIoUringUnavailable) {
      GTEST_SKIP() << "io_uring unavailable: " << server_.start_error();
    }
    ASSERT_EQ(r, ServerProcess::StartResult::kReady) << server_.start_error();
  }

  // The client field (first word) of access-log line `n` (0-based), waiting
  // for the line to be written (the log is flushed every 250 ms).
  std::string LoggedClient(size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      std::istringstream lines(ReadFile(log_path_));
      std::string line;
      for (size_t i = 0; std::getline(lines, line); ++i) {
        if (i == n) return line.substr(0, line.find(' '));
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    return "(no line " + std::to_string(n) + ")";
  }

  std::optional<HttpResponse> Get(const std::string& extra_headers,
                                  const std::string& target = "/index.html") {
    std::string error;
    auto r = FetchOnce(server_.host(), server_.port(), MakeRequest("GET", target, extra_headers),
                       &error);
    if (!r) ADD_FAILURE() << error;
    return r;
  }

  // A counter or gauge from the /metrics JSON totals ("connections" group).
  int64_t Metric(const std::string& name) {
    auto r = Get("", "/metrics");
    if (!r || r->status != 200) return -1;
    const std::regex re("\"totals\"[\\s\\S]*?\"" + name + "\":\\s*([0-9]+)");
    std::smatch m;
    if (!std::regex_search(r->body, m, re)) return -2;
    return std::stoll(m[1]);
  }

  // Sends `bytes` on a new connection and returns what came back before the
  // server closed it ("" when it closed without a response).
  std::string SendRaw(const std::string& bytes, milliseconds timeout = milliseconds(5000)) {
    HttpConnection c;
    EXPECT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
    EXPECT_TRUE(c.Send(bytes)) << c.last_error();
    std::string out;
    c.ReadToEof(&out, timeout);
    return out;
  }

  TestRoot root_;
  TestRoot logs_{"sluice-logs-"};
  std::string log_path_;
  ServerProcess server_;
};

// ------------------------------------------------ forwarding fields --

TEST_F(ClientAddressTest, TrustedPeerForwardedForNamesTheClient) {
  Start({"--trusted_proxies=127.0.0.1"});
  auto r = Get("X-Forwarded-For: 198.51.100.23\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(LoggedClient(0), "198.51.100.23");
  // A request without the field is the peer's own.
  ASSERT_TRUE(Get(""));
  EXPECT_EQ(LoggedClient(1), "127.0.0.1");
}

TEST_F(ClientAddressTest, UntrustedPeerFieldsAreIgnored) {
  Start({"--trusted_proxies=10.0.0.0/8"});
  ASSERT_TRUE(
      Get("X-Forwarded-For: 198.51.100.23\r\nX-Real-IP: 198.51.100.24\r\n"
          "Forwarded: for=198.51.100.25\r\n"));
  EXPECT_EQ(LoggedClient(0), "127.0.0.1");
}

TEST_F(ClientAddressTest, SpoofedLeftHopsAreIgnored) {
  Start({"--trusted_proxies=127.0.0.0/8,10.0.0.0/8"});
  // The client wrote 6.6.6.6 itself; its real address was appended by the
  // first proxy, then 10.1.1.1 (trusted) forwarded to us.
  ASSERT_TRUE(Get("X-Forwarded-For: 6.6.6.6, 198.51.100.23\r\nX-Forwarded-For: 10.1.1.1\r\n"));
  EXPECT_EQ(LoggedClient(0), "198.51.100.23");
}

TEST_F(ClientAddressTest, ForwardedAndOrderOfSources) {
  Start({"--trusted_proxies=127.0.0.1", "--forwarded_sources=forwarded,x-real-ip"});
  ASSERT_TRUE(
      Get("Forwarded: for=\"[2001:db8::7]:443\";proto=https\r\n"
          "X-Forwarded-For: 198.51.100.1\r\n"));
  EXPECT_EQ(LoggedClient(0), "2001:db8::7");
  ASSERT_TRUE(Get("X-Real-IP: 198.51.100.9\r\nX-Forwarded-For: 198.51.100.1\r\n"));
  EXPECT_EQ(LoggedClient(1), "198.51.100.9");
}

TEST_F(ClientAddressTest, MalformedFieldsFallBackToThePeer) {
  Start({"--trusted_proxies=127.0.0.1"});
  ASSERT_TRUE(Get("X-Forwarded-For: not-an-address\r\n"));
  ASSERT_TRUE(Get("X-Forwarded-For: 198.51.100.1, unknown\r\n"));
  ASSERT_TRUE(Get("X-Real-IP: 010.1.1.1\r\n"));
  ASSERT_TRUE(Get("Forwarded: for=_hidden\r\n"));
  std::string many;  // More field lines than the parser keeps.
  for (int i = 0; i < 9; ++i) many += "X-Forwarded-For: 198.51.100." + std::to_string(i) + "\r\n";
  auto r = Get(many);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(LoggedClient(i), "127.0.0.1") << "line " << i;
}

TEST_F(ClientAddressTest, MetricsAllowChecksTheResolvedClient) {
  Start({"--trusted_proxies=127.0.0.1"});
  auto outside = Get("X-Forwarded-For: 198.51.100.23\r\n", "/metrics");
  ASSERT_TRUE(outside);
  EXPECT_EQ(outside->status, 404);
  auto inside = Get("X-Forwarded-For: 127.0.0.9\r\n", "/metrics");
  ASSERT_TRUE(inside);
  EXPECT_EQ(inside->status, 200);
}

// ------------------------------------------------------- PROXY header --

TEST_F(ClientAddressTest, ProxyV1ThenRequestInOneSend) {
  Start({"--proxy_protocol"});
  const std::string out = SendRaw("PROXY TCP4 192.0.2.10 192.0.2.1 5555 80\r\n" +
                                  MakeRequest("GET", "/index.html", "Connection: close\r\n"));
  EXPECT_EQ(out.substr(0, 15), "HTTP/1.1 200 OK") << out;
  EXPECT_EQ(LoggedClient(0), "192.0.2.10");
}

// The header split across receives, through either receive path: one
// multishot RECV on the buffer ring, or a single-shot RECV per read.
class ProxySplitTest : public ClientAddressTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ProxySplitTest, ProxyV2WithTlvsIpv6AndSplitSends) {
  Start({"--proxy_protocol", GetParam() ? "--multishot_recv=true" : "--multishot_recv=false"});
  const std::string src("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x42", 16);
  const std::string dst(15, '\0');
  const std::string tlvs(
      "\x01\x00\x02"
      "h2"
      "\x04\x00\x03"
      "abc",
      11);  // ALPN, NOOP.
  const std::string header = ProxyV2(false, src, dst + "\x01", tlvs);
  HttpConnection c;
  ASSERT_TRUE(c.Connect(server_.host(), server_.port()));
  // Byte by byte for the header's first part, then the rest with the request.
  for (size_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.Send(header.substr(i, 1)));
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(c.Send(header.substr(20) + MakeRequest("GET", "/index.html")));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(r->status, 200);
  // Keep-alive after the header: a second request on the connection.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/index.html")));
  ASSERT_TRUE(c.ReadResponse());
  EXPECT_EQ(LoggedClient(0), "2001:db8::42");
  EXPECT_EQ(LoggedClient(1), "2001:db8::42");
}
INSTANTIATE_TEST_SUITE_P(ReceivePaths, ProxySplitTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "multishot" : "single_shot";
                         });

TEST_F(ClientAddressTest, ProxyV2LocalKeepsTheSocketPeer) {
  Start({"--proxy_protocol"});
  const std::string out =
      SendRaw(ProxyV2(true, "", "") + MakeRequest("GET", "/index.html", "Connection: close\r\n"));
  EXPECT_EQ(out.substr(0, 15), "HTTP/1.1 200 OK") << out;
  EXPECT_EQ(LoggedClient(0), "127.0.0.1");
}

TEST_F(ClientAddressTest, ProxySourceIsAPeerForTrustedProxies) {
  // The balancer passes the address of an L7 proxy it trusts, which sent XFF.
  Start({"--proxy_protocol", "--trusted_proxies=192.0.2.0/24"});
  SendRaw(
      "PROXY TCP4 192.0.2.10 192.0.2.1 5555 80\r\n" +
      MakeRequest("GET", "/index.html", "X-Forwarded-For: 198.51.100.3\r\nConnection: close\r\n"));
  EXPECT_EQ(LoggedClient(0), "198.51.100.3");
}

TEST_F(ClientAddressTest, InvalidOrMissingProxyHeaderClosesWithoutResponse) {
  Start({"--proxy_protocol", "--header_timeout=1s"});
  // HTTP straight away, a wrong signature, a bad v1 line, an oversized v2.
  EXPECT_EQ(SendRaw(MakeRequest("GET", "/index.html")), "");
  EXPECT_EQ(SendRaw(std::string("\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x0c", 16) + std::string(12, 'a')),
            "");
  EXPECT_EQ(SendRaw("PROXY TCP4 192.0.2.010 192.0.2.1 5555 80\r\nGET / HTTP/1.1\r\n\r\n"), "");
  EXPECT_EQ(SendRaw(std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\x03\x00", 16) + std::string(768, 0)),
            "");
  // A partial header, then nothing: closed at the header deadline.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(SendRaw("PROXY TCP4 192.0.2.10 ", milliseconds(6000)), "");
  // Nothing at all.
  EXPECT_EQ(SendRaw("", milliseconds(6000)), "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(9));
  // /metrics needs the header too: read it through a LOCAL one.
  const std::string out =
      SendRaw(ProxyV2(true, "", "") + MakeRequest("GET", "/metrics", "Connection: close\r\n"));
  const std::regex re("\"totals\"[\\s\\S]*?\"proxy_header_errors_total\":\\s*([0-9]+)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, re)) << out.substr(0, 300);
  EXPECT_EQ(m[1], "6");
  EXPECT_EQ(LoggedClient(0), "127.0.0.1");  // Only the LOCAL request was logged.
}

// ------------------------------------------------ per-address limits --

TEST_F(ClientAddressTest, PerIpLimitRefusesAndCountsBackToZero) {
  Start({"--max_connections_per_ip=2", "--threads=2"});
  auto open = [&](const char* source) {
    HttpConnection c;
    EXPECT_TRUE(c.Connect(server_.host(), server_.port(), milliseconds(2000), source));
    EXPECT_TRUE(c.Send(MakeRequest("GET", "/index.html")));
    return c;
  };
  std::vector<HttpConnection> held;
  for (int i = 0; i < 2; ++i) {
    held.push_back(open("127.0.0.7"));
    auto r = held.back().ReadResponse();
    ASSERT_TRUE(r) << held.back().last_error();
    EXPECT_EQ(r->status, 200);
  }
  HttpConnection third = open("127.0.0.7");
  std::string out;
  third.ReadToEof(&out, milliseconds(3000));
  EXPECT_EQ(out, "") << "the third connection from one address gets no response";
  EXPECT_TRUE(third.eof() || third.reset());
  // Another address is not affected.
  HttpConnection other = open("127.0.0.8");
  ASSERT_TRUE(other.ReadResponse());
  // One closes: the next one from that address is served again.
  held.pop_back();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    HttpConnection again = open("127.0.0.7");
    auto r = again.ReadResponse("GET", milliseconds(1000));
    served = r.has_value() && r->status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(served);
  held.clear();
  other.Close();
  EXPECT_GE(Metric("per_ip_rejected_total"), 1);
  // Every count back to 0 but the scrape's own connection, from 127.0.0.1.
  int64_t counted = -1;
  for (int attempt = 0; attempt < 50 && counted != 1; ++attempt) {
    counted = Metric("per_ip_counted");
    if (counted != 1) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(counted, 1);
}

TEST_F(ClientAddressTest, PerIpLimitOverManyAddresses) {
  Start({"--max_connections_per_ip=1", "--threads=2"});
  std::vector<HttpConnection> held;
  for (int i = 1; i <= 100; ++i) {
    const std::string source = "127.0.1." + std::to_string(i);
    HttpConnection c;
    ASSERT_TRUE(c.Connect(server_.host(), server_.port(), milliseconds(2000), source));
    ASSERT_TRUE(c.Send(MakeRequest("GET", "/index.html")));
    auto r = c.ReadResponse();
    ASSERT_TRUE(r) << source << ": " << c.last_error();
    held.push_back(std::move(c));
  }
  for (int i = 1; i <= 100; i += 9) {
    HttpConnection second;
    ASSERT_TRUE(second.Connect(server_.host(), server_.port(), milliseconds(2000),
                               "127.0.1." + std::to_string(i)));
    second.Send(MakeRequest("GET", "/index.html"));
    std::string out;
    second.ReadToEof(&out, milliseconds(3000));
    EXPECT_EQ(out, "") << "127.0.1." << i;
  }
  held.clear();
  int64_t counted = -1;
  for (int attempt = 0; attempt < 50 && counted != 1; ++attempt) {
    counted = Metric("per_ip_counted");
    if (counted != 1) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(counted, 1);
}

TEST_F(ClientAddressTest, PerIpLimitThroughTrustedProxyAnswers429) {
  ASSERT_TRUE(root_.WriteSparseFile("big.bin", 256ull << 20, "end"));
  Start({"--max_connections_per_ip=1", "--trusted_proxies=127.0.0.1"});
  // A download in progress for 198.51.100.5 (not read, so it stays in progress).
  HttpConnection slow;
  ASSERT_TRUE(slow.Connect(server_.host(), server_.port()));
  ASSERT_TRUE(slow.Send(MakeRequest("GET", "/big.bin", "X-Forwarded-For: 198.51.100.5\r\n")));
  ASSERT_TRUE(slow.ReadResponseHead());
  HttpConnection proxy;
  ASSERT_TRUE(proxy.Connect(server_.host(), server_.port()));
  ASSERT_TRUE(proxy.Send(MakeRequest("GET", "/index.html", "X-Forwarded-For: 198.51.100.5\r\n")));
  auto refused = proxy.ReadResponse();
  ASSERT_TRUE(refused) << proxy.last_error();
  EXPECT_EQ(refused->status, 429);
  // The proxy's connection stays usable for its other clients.
  ASSERT_TRUE(proxy.Send(MakeRequest("GET", "/index.html", "X-Forwarded-For: 198.51.100.6\r\n")));
  auto other = proxy.ReadResponse();
  ASSERT_TRUE(other) << proxy.last_error();
  EXPECT_EQ(other->status, 200);
  // The download ends: that client is served again.
  slow.Close();
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    ASSERT_TRUE(proxy.Send(MakeRequest("GET", "/index.html", "X-Forwarded-For: 198.51.100.5\r\n")));
    auto r = proxy.ReadResponse();
    ASSERT_TRUE(r);
    served = r->status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(served);
  proxy.Close();
  // The scrape comes from the trusted proxy's address, which is not counted;
  // the last response's completion may still be on its way.
  int64_t counted = -1;
  for (int attempt = 0; attempt < 50 && counted != 0; ++attempt) {
    counted = Metric("per_ip_counted");
    if (counted != 0) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(counted, 0);
}

// ------------------------------------------------------------ HAProxy --

const char* HaproxyBinary() {
  for (const char* path : {"/usr/sbin/haproxy", "/usr/bin/haproxy"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return nullptr;
}

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// HAProxy in front, `option forwardfor`, with or without `send-proxy-v2`.
// The client connects from 127.0.0.5 and writes a false X-Forwarded-For of
// its own; the access log must show 127.0.0.5, not HAProxy's 127.0.0.1
// and not the spoofed address.
class HaproxyTest : public ClientAddressTest {
 protected:
  std::optional<HttpResponse> GetThroughHaproxy(bool send_proxy) {
    const char* haproxy = HaproxyBinary();
    const uint16_t front = FreePort();
    const std::string cfg_path = logs_.Path("haproxy.cfg");
    std::ofstream(cfg_path) << "global\n  maxconn 100\n"
                            << "defaults\n  mode http\n  timeout connect 5s\n"
                            << "  timeout client 10s\n  timeout server 10s\n"
                            << "frontend fe\n  bind 127.0.0.1:" << front << "\n"
                            << "  option forwardfor\n  default_backend be\n"
                            << "backend be\n  server sluice 127.0.0.1:" << server_.port()
                            << (send_proxy ? " send-proxy-v2\n" : "\n");
    const pid_t pid = fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
      execl(haproxy, "haproxy", "-db", "-f", cfg_path.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::optional<HttpResponse> r;
    for (int attempt = 0; attempt < 100 && !r; ++attempt) {
      HttpConnection c;
      if (c.Connect("127.0.0.1", front, milliseconds(1000), "127.0.0.5") &&
          c.Send(MakeRequest("GET", "/index.html", "X-Forwarded-For: 203.0.113.66\r\n"))) {
        r = c.ReadResponse();
      }
      if (!r) std::this_thread::sleep_for(milliseconds(50));
    }
    kill(pid, SIGTERM);  // Only the haproxy this test started.
    int status = 0;
    waitpid(pid, &status, 0);
    return r;
  }
};

TEST_F(HaproxyTest, SendProxyV2GivesTheClientAddress) {
  if (HaproxyBinary() == nullptr)
    GTEST_SKIP() << "haproxy not installed (scripts/test installs it)";
  // The PROXY source (the client) is the peer; it is not trusted, so its
  // X-Forwarded-For, spoofed part and all, is not read.
  Start({"--proxy_protocol"});
  auto r = GetThroughHaproxy(/*send_proxy=*/true);
  ASSERT_TRUE(r) << "no response through haproxy";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(LoggedClient(0), "127.0.0.5");
}

TEST_F(HaproxyTest, ForwardForFromATrustedHaproxy) {
  if (HaproxyBinary() == nullptr)
    GTEST_SKIP() << "haproxy not installed (scripts/test installs it)";
  // HAProxy (127.0.0.1) is trusted; it appended 127.0.0.5 right of the
  // client's own 203.0.113.66.
  Start({"--trusted_proxies=127.0.0.1"});
  auto r = GetThroughHaproxy(/*send_proxy=*/false);
  ASSERT_TRUE(r) << "no response through haproxy";
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(LoggedClient(0), "127.0.0.5");
}

}  // namespace
}  // namespace sluice::test
