// Running under Kubernetes and as a service: the liveness and readiness
// probes, the drain delay on SIGTERM, JSON logs (access log and stderr),
// the privilege drop as root and reopening the access log after it. Each
// test starts the real binary.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) lines.push_back(line);
  return lines;
}

// The "Uid:" line of /proc/PID/status: real, effective, saved, fs.
std::string UidLine(pid_t pid) {
  for (const std::string& line : Lines(ReadText("/proc/" + std::to_string(pid) + "/status"))) {
    if (line.rfind("Uid:", 0) == 0) return line;
  }
  return "";
}

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok());
    ASSERT_TRUE(root_.WriteFile("index.html", "index\n"));
    // Files named like the probes: the probes must win over them.
    ASSERT_TRUE(root_.WriteFile("healthz", "a file\n"));
    ASSERT_TRUE(root_.WriteFile("readyz", "a file\n"));
  }

  std::optional<HttpResponse> Get(const std::string& target, const std::string& method = "GET",
                                  const std::string& headers = "") {
    std::string error;
    std::optional<HttpResponse> r =
        FetchOnce(server_.host(), server_.port(), MakeRequest(method, target, headers), &error,
                  method, milliseconds(3000));
    if (!r) ADD_FAILURE() << method << " " << target << ": " << error;
    return r;
  }
  int Status(const std::string& target) {
    std::optional<HttpResponse> r = Get(target);
    return r ? r->status : -1;
  }

  std::vector<std::string> Flags(std::vector<std::string> extra) {
    extra.insert(extra.begin(), {"--root=" + root_.path(), "--threads=2"});
    return extra;
  }

  TestRoot root_;
  ServerProcess server_;
};

TEST_F(LifecycleTest, ProbesAnswerBeforeFilesWithNoStore) {
  SLUICE_START_OR_SKIP(server_, Flags({}));
  for (const char* path : {"/healthz", "/readyz", "/readyz?full=1"}) {
    std::optional<HttpResponse> r = Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body, "ok\n") << path;
    EXPECT_EQ(r->Header("Cache-Control"), "no-store") << path;
    EXPECT_EQ(r->Header("Content-Type"), "text/plain; charset=utf-8") << path;
  }
  std::optional<HttpResponse> head = Get("/healthz", "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  std::optional<HttpResponse> post = Get("/readyz", "POST");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->Header("Allow"), "GET, HEAD");
  // Not a prefix match: /healthz.txt or /healthzz are files (or 404s).
  EXPECT_EQ(Status("/healthzz"), 404);
}

TEST_F(LifecycleTest, ProbePathsConfigurableAndEmptyTurnsThemOff) {
  SLUICE_START_OR_SKIP(server_, Flags({"--health_path=", "--ready_path=/-/ready"}));
  std::optional<HttpResponse> file = Get("/healthz");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->status, 200);
  EXPECT_EQ(file->body, "a file\n");
  std::optional<HttpResponse> readyz = Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->body, "a file\n");
  std::optional<HttpResponse> ready = Get("/-/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "ok\n");
}

TEST_F(LifecycleTest, BadProbePathIsAConfigError) {
  for (const char* flag : {"--health_path=healthz", "--ready_path=/a?b", "--ready_path=/healthz"}) {
    const ProcessResult r = RunProcess(
        {SluiceBinary(), "--root=" + root_.path(), "--listen=127.0.0.1:0", flag}, seconds(10));
    EXPECT_TRUE(r.ExitedWithCode(2)) << flag << ": " << r.Describe();
    EXPECT_NE(r.err.find("_path"), std::string::npos) << r.err;
  }
}

TEST_F(LifecycleTest, ProbesStayOutOfTheAccessLogUnlessAsked) {
  TestRoot logs("sluice-logs-");
  for (bool include : {false, true}) {
    const std::string path = logs.Path(include ? "with.log" : "without.log");
    ServerProcess server;
    SLUICE_START_OR_SKIP(
        server,
        Flags({"--access_log=" + path, include ? "--log_health_checks" : "--nolog_health_checks"}));
    std::string error;
    for (const char* target : {"/healthz", "/readyz", "/index.html"}) {
      ASSERT_TRUE(FetchOnce(server.host(), server.port(), MakeRequest("GET", target), &error))
          << error;
    }
    ASSERT_TRUE(server.Stop());
    const std::vector<std::string> lines = Lines(ReadText(path));
    ASSERT_EQ(lines.size(), include ? 3u : 1u) << ReadText(path);
    int files = 0;  // Two workers: the lines may come in any order.
    for (const std::string& line : lines) files += line.find("/index.html") != std::string::npos;
    EXPECT_EQ(files, 1) << ReadText(path);
  }
}

// SIGTERM: /readyz fails at once, /healthz and files are still served for
// the delay, then the listeners close and the server exits 0.
TEST_F(LifecycleTest, SigtermFailsReadinessAndServesThroughTheDelay) {
  SLUICE_START_OR_SKIP(server_, Flags({"--drain_delay=3s"}));
  ASSERT_EQ(Status("/readyz"), 200);
  // A keep-alive connection opened before SIGTERM stays usable too.
  HttpConnection kept;
  ASSERT_TRUE(kept.Connect(server_.host(), server_.port()));
  const auto term = SteadyClock::now();
  ASSERT_TRUE(server_.Signal(SIGTERM));
  ASSERT_TRUE(server_.WaitForStderr("not ready", seconds(5)));
  int polls = 0;
  while (SteadyClock::now() - term < milliseconds(2200)) {
    EXPECT_EQ(Status("/readyz"), 503);
    EXPECT_EQ(Status("/healthz"), 200);
    std::optional<HttpResponse> file = Get("/index.html");
    ASSERT_TRUE(file) << "not served "
                      << std::chrono::duration_cast<milliseconds>(SteadyClock::now() - term).count()
                      << " ms after SIGTERM";
    EXPECT_EQ(file->body, "index\n");
    ++polls;
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_GE(polls, 5);
  ASSERT_TRUE(kept.Send(MakeRequest("GET", "/readyz")));
  std::optional<HttpResponse> on_kept = kept.ReadResponse();
  ASSERT_TRUE(on_kept);
  EXPECT_EQ(on_kept->status, 503);
  ASSERT_TRUE(server_.WaitForExit(seconds(10)));
  const auto took = SteadyClock::now() - term;
  EXPECT_GE(took, milliseconds(2900));
  EXPECT_TRUE(server_.ExitedWithCode(0)) << server_.DescribeExit();
  HttpConnection after;
  EXPECT_FALSE(after.Connect(server_.host(), server_.port(), milliseconds(500)));
}

TEST_F(LifecycleTest, SecondSigtermEndsTheDelay) {
  SLUICE_START_OR_SKIP(server_, Flags({"--drain_delay=60s"}));
  ASSERT_TRUE(server_.Signal(SIGTERM));
  ASSERT_TRUE(server_.WaitForStderr("not ready", seconds(5)));
  EXPECT_EQ(Status("/readyz"), 503);
  EXPECT_EQ(Status("/index.html"), 200);
  const auto second = SteadyClock::now();
  ASSERT_TRUE(server_.Signal(SIGTERM));
  ASSERT_TRUE(server_.WaitForExit(seconds(5))) << "still in the 60 s delay";
  EXPECT_LT(SteadyClock::now() - second, seconds(5));
  EXPECT_TRUE(server_.ExitedWithCode(0)) << server_.DescribeExit();
  EXPECT_NE(server_.StderrText().find("ending the drain delay"), std::string::npos);
}

TEST_F(LifecycleTest, SigintDrainsAtOnce) {
  SLUICE_START_OR_SKIP(server_, Flags({"--drain_delay=60s"}));
  ASSERT_TRUE(server_.Signal(SIGINT));
  ASSERT_TRUE(server_.WaitForExit(seconds(5))) << "SIGINT waited for the drain delay";
  EXPECT_TRUE(server_.ExitedWithCode(0)) << server_.DescribeExit();
}

// ------------------------------------------------------------ JSON logs --

struct Sent {
  std::string raw;  // The request as sent.
  int status;
  std::string method, path, query, user_agent, referer;
  std::optional<std::string> request_id;
};

TEST_F(LifecycleTest, JsonAccessLogParsesBackFieldByField) {
  TestRoot logs("sluice-logs-");
  const std::string log = logs.Path("access.json");
  // One worker: its lines keep the order of the requests.
  SLUICE_START_OR_SKIP(server_,
                       Flags({"--access_log=" + log, "--access_log_format=json", "--threads=1"}));
  const std::string long_id(200, 'i');
  const std::vector<Sent> sent = {
      {MakeRequest("GET", "/index.html?a=1&b=\"2\"",
                   "User-Agent: ua \"quoted\" \\back\\slash\r\nReferer: http://r/caf\xc3\xa9\r\n"
                   "X-Request-ID: req-42\r\n"),
       200, "GET", "/index.html", "a=1&b=\"2\"", "ua \"quoted\" \\back\\slash",
       "http://r/caf\xc3\xa9", "req-42"},
      // Invalid UTF-8 in the user agent (obs-text is allowed in field
      // values), a tab, a backslash in the target, and an X-Request-ID too
      // long to log.
      {MakeRequest(
           "GET", "/missing\\x",
           "User-Agent: bad\xc3(\xed\xa0\x80 utf8\tend\r\nX-Request-ID: " + long_id + "\r\n"),
       404, "GET", "/missing\\x", "",
       "bad\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd utf8\tend", "", std::nullopt},
      // Bytes outside ASCII in the target: the parser refuses the request
      // line (400), so it is logged without method or path.
      {MakeRequest("GET", "/caf\xc3\xa9\xff\xfe"), 400, "", "", "", "", "", std::nullopt},
      {MakeRequest("HEAD", "/index.html?"), 200, "HEAD", "/index.html", "", "", "", std::nullopt},
      // A control byte in a field: 400, the request line still logged.
      {MakeRequest("GET", "/x", "User-Agent: a\x01z\r\n"), 400, "GET", "/x", "", "", "",
       std::nullopt},
      // Unparsable request line: logged with empty method and path.
      {"\x01\x02 garbage\r\n\r\n", 400, "", "", "", "", "", std::nullopt},
  };
  for (const Sent& s : sent) {
    std::string error;
    ASSERT_TRUE(FetchOnce(server_.host(), server_.port(), s.raw, &error, s.method)) << error;
  }
  ASSERT_TRUE(server_.Stop());
  const std::string text = ReadText(log);
  const std::vector<std::string> lines = Lines(text);
  ASSERT_EQ(lines.size(), sent.size()) << text;
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i) + ": " + lines[i]);
    for (unsigned char c : lines[i]) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << "a control byte";
    const nlohmann::json j = nlohmann::json::parse(lines[i]);  // Throws (fails) if invalid.
    const Sent& s = sent[i];
    EXPECT_EQ(j.at("status").get<int>(), s.status);
    EXPECT_EQ(j.at("method").get<std::string>(), s.method);
    EXPECT_EQ(j.at("path").get<std::string>(), s.path);
    EXPECT_EQ(j.at("query").get<std::string>(), s.query);
    EXPECT_EQ(j.at("user_agent").get<std::string>(), s.user_agent);
    EXPECT_EQ(j.at("referer").get<std::string>(), s.referer);
    EXPECT_EQ(j.at("client").get<std::string>(), "127.0.0.1");
    EXPECT_FALSE(j.contains("peer")) << "no proxy: the peer is the client";
    EXPECT_FALSE(j.contains("site")) << "virtual hosts come later";
    if (s.request_id) {
      EXPECT_EQ(j.at("request_id").get<std::string>(), *s.request_id);
    } else {
      EXPECT_FALSE(j.contains("request_id"));
    }
    EXPECT_TRUE(j.at("bytes").is_number_unsigned());
    EXPECT_TRUE(j.at("duration_us").is_number_unsigned());
    const std::string time = j.at("time").get<std::string>();
    ASSERT_EQ(time.size(), 24u);
    EXPECT_EQ(time[10], 'T');
    EXPECT_EQ(time[19], '.');
    EXPECT_EQ(time.back(), 'Z');
  }
  EXPECT_EQ(nlohmann::json::parse(lines[0]).at("bytes").get<int>(), 6);
}

TEST_F(LifecycleTest, JsonServerLogIsOneObjectPerLine) {
  SLUICE_START_OR_SKIP(server_, Flags({"--log_format=json", "--drain_delay=1s"}));
  ASSERT_TRUE(server_.Signal(SIGUSR2));  // Logs "nothing to do".
  ASSERT_TRUE(server_.Stop());
  const std::vector<std::string> lines = Lines(server_.StderrText());
  ASSERT_GE(lines.size(), 4u);
  bool listening = false;
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("time").get<std::string>().size(), 24u);
    EXPECT_EQ(j.at("pid").get<int>(), server_.pid());
    const std::string level = j.at("level").get<std::string>();
    EXPECT_TRUE(level == "info" || level == "warn" || level == "error") << level;
    if (j.at("msg").get<std::string>().find("listening on") != std::string::npos) listening = true;
  }
  EXPECT_TRUE(listening);
  // A flag error is JSON too.
  const ProcessResult bad = RunProcess(
      {SluiceBinary(), "--log_format=json", "--access_log_format=xml", "--root=" + root_.path()},
      seconds(10));
  EXPECT_TRUE(bad.ExitedWithCode(2)) << bad.Describe();
  EXPECT_EQ(nlohmann::json::parse(bad.err).at("msg"),
            "--access_log_format must be 'combined' or 'json'");
}

// ------------------------------------------------------------- as root --

class AsRootTest : public LifecycleTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: checks what sluice does when started as root";
    if (getpwnam("nobody") == nullptr) GTEST_SKIP() << "no user 'nobody' here";
    LifecycleTest::SetUp();
  }
};

TEST_F(AsRootTest, DropsToNobodyByDefault) {
  ASSERT_TRUE(root_.WriteFile("locked.html", "secret\n"));
  ASSERT_TRUE(root_.Chmod("locked.html", 0));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  EXPECT_TRUE(server_.WaitForStderr("running as user nobody", seconds(2))) << server_.StderrText();
  const std::string uid = std::to_string(getpwnam("nobody")->pw_uid);
  EXPECT_EQ(UidLine(server_.pid()), "Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid);
  EXPECT_EQ(Status("/locked.html"), 403);
  EXPECT_EQ(Status("/index.html"), 200);
}

TEST_F(AsRootTest, UserRootStaysRootWithAWarning) {
  SLUICE_START_OR_SKIP(server_, Flags({"--user=root"}));
  EXPECT_NE(server_.StderrText().find("WARN running as root (--user=root)"), std::string::npos)
      << server_.StderrText();
  EXPECT_EQ(UidLine(server_.pid()), "Uid:\t0\t0\t0\t0");
}

// logrotate with a root-owned directory: the server, now nobody, cannot
// create the new file; the privileged helper does, and the new lines land
// there (root-owned, 0640, as `create 0640 root adm` would make it).
TEST_F(AsRootTest, Sigusr1ReopensInARootOwnedDirectoryAfterTheDrop) {
  TestRoot logs("sluice-logs-");  // 0755, owned by root.
  const std::string log = logs.Path("access.log");
  const std::string rotated = logs.Path("access.log.1");
  SLUICE_START_OR_SKIP(server_, Flags({"--access_log=" + log}));
  ASSERT_TRUE(server_.WaitForStderr("running as user nobody", seconds(2)));
  ASSERT_EQ(Status("/index.html?before"), 200);
  // Lines go out on the worker's tick: wait for this one to be written.
  const auto deadline = SteadyClock::now() + seconds(5);
  while (ReadText(log).find("?before") == std::string::npos && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(rename(log.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(server_.Signal(SIGUSR1));
  ASSERT_TRUE(server_.WaitForStderr("access log reopened", seconds(5))) << server_.StderrText();
  // Workers switch descriptors on their next tick (every 250 ms).
  std::this_thread::sleep_for(milliseconds(600));
  ASSERT_EQ(Status("/index.html?after"), 200);
  ASSERT_TRUE(server_.Stop());
  const std::string old_text = ReadText(rotated);
  const std::string new_text = ReadText(log);
  EXPECT_NE(old_text.find("?before"), std::string::npos) << old_text;
  EXPECT_EQ(old_text.find("?after"), std::string::npos) << old_text;
  EXPECT_NE(new_text.find("?after"), std::string::npos) << "new file: " << new_text;
  struct stat st = {};
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

}  // namespace
}  // namespace sluice::test
