// The configuration file (issue 12) through the real binary, over raw
// loopback sockets: virtual hosts by Host, every kind of [[site.rule]]
// (header edits on 200, 206, 304, redirects and error pages; CORS; redirects;
// clean URLs; SPA fallback; error pages), --check-config, the command line
// over the file, and SIGHUP reloads (good, broken, a root that changes).

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

constexpr char kSiteA[] = "<!doctype html><p>site a</p>\n";
constexpr char kSiteB[] = "<!doctype html><p>site b</p>\n";
constexpr char kSiteC[] = "<!doctype html><p>site c</p>\n";
constexpr char kText[] = "0123456789 plain text\n";
constexpr char kAbout[] = "<!doctype html><p>about</p>\n";
constexpr char kDocsIndex[] = "<!doctype html><p>docs index</p>\n";
constexpr char kGuide[] = "<!doctype html><p>guide</p>\n";
constexpr char kAppJs[] = "console.log('app');\n";
constexpr char kAppHtml[] = "<!doctype html><p>the app shell</p>\n";
constexpr char k404Page[] = "<!doctype html><title>Not here</title><p>custom 404 page</p>\n";
constexpr char k403Page[] = "custom 403 page, as plain text\n";

// Concatenation of string views (absl::StrCat takes absl::string_view,
// which here is not std::string_view).
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

// `text` with every `from` replaced by its `to`, in order.
std::string ReplaceAll(std::string text,
                       std::initializer_list<std::pair<std::string_view, std::string_view>> edits) {
  for (const auto& [from, to] : edits) {
    for (size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
    }
  }
  return text;
}

// "METHOD target HTTP/1.1" with the given Host field (none when empty) and
// `extra` ("Name: value\r\n" lines).
std::string Request(std::string_view method, std::string_view target, std::string_view host,
                    std::string_view extra = "") {
  std::string r = Cat({method, " ", target, " HTTP/1.1\r\n"});
  if (!host.empty()) r += Cat({"Host: ", host, "\r\n"});
  return r + Cat({extra, "\r\n"});
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    // Three document roots, each with its own index.html.
    ASSERT_TRUE(dir_.WriteFile("a/index.html", kSiteA));
    ASSERT_TRUE(dir_.WriteFile("a/only-a.txt", kText));
    ASSERT_TRUE(dir_.WriteFile("b/index.html", kSiteB));
    ASSERT_TRUE(dir_.WriteFile("c/index.html", kSiteC));
    config_path_ = dir_.Path("sluice.toml");
  }

  void TearDown() override {
    if (server_.running()) {
      EXPECT_TRUE(server_.Stop());
      EXPECT_TRUE(server_.ExitedWithCode(0)) << "server " << server_.DescribeExit();
    }
  }

  // `text` with {a}, {b}, {c} replaced by the roots' paths.
  std::string Expand(std::string_view text) const {
    return ReplaceAll(std::string(text),
                      {{"{a}", dir_.Path("a")}, {"{b}", dir_.Path("b")}, {"{c}", dir_.Path("c")}});
  }

  // Writes the configuration atomically (a new file renamed over the old),
  // as an operator's deploy would before a SIGHUP.
  ::testing::AssertionResult WriteConfig(std::string_view text) {
    const std::string temporary = config_path_ + ".new";
    if (!dir_.WriteFile("sluice.toml.new", Expand(text))) {
      return ::testing::AssertionFailure() << "cannot write " << temporary;
    }
    if (std::rename(temporary.c_str(), config_path_.c_str()) != 0) {
      return ::testing::AssertionFailure() << "rename to " << config_path_ << " failed";
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<std::string> Flags(std::vector<std::string> extra) const {
    std::vector<std::string> flags = {"--config=" + config_path_, "--threads=2"};
    for (std::string& f : extra) flags.push_back(std::move(f));
    return flags;
  }

  std::optional<HttpResponse> Fetch(const std::string& raw, std::string_view method = "GET") {
    std::string error;
    std::optional<HttpResponse> r = FetchOnce(server_.host(), server_.port(), raw, &error, method);
    if (!r) ADD_FAILURE() << "request '" << EscapeBytes(raw, 300) << "': " << error;
    return r;
  }
  std::optional<HttpResponse> Get(std::string_view target, std::string_view extra = "",
                                  std::string_view host = "localhost") {
    return Fetch(Request("GET", target, host, extra));
  }

  // Repeats Get(target) until `done` holds (a reload reaches each worker at
  // its next safe point, shortly after the log line); the last response.
  template <typename Pred>
  std::optional<HttpResponse> GetUntil(std::string_view target, Pred done) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    std::optional<HttpResponse> r;
    do {
      r = Get(target);
      if (!r || done(*r)) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    } while (Clock::now() < deadline);
    return r;
  }

  // /metrics as JSON (the server.config object), or null on failure.
  nlohmann::json ConfigMetrics() {
    std::optional<HttpResponse> r = Get("/metrics?format=json");
    if (!r || r->status != 200) {
      ADD_FAILURE() << "/metrics: " << (r ? r->Describe() : "no response");
      return nullptr;
    }
    const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("server") || !j["server"].contains("config")) {
      ADD_FAILURE() << "/metrics has no server.config: " << EscapeBytes(r->body, 600);
      return nullptr;
    }
    return j["server"]["config"];
  }

  // Sends SIGHUP and waits for the log line that says how it went.
  ::testing::AssertionResult Reload(std::string_view expected_line) {
    if (!server_.Signal(SIGHUP)) return ::testing::AssertionFailure() << "SIGHUP not sent";
    if (!server_.WaitForStderr(std::string(expected_line), std::chrono::seconds(10))) {
      return ::testing::AssertionFailure()
             << "no '" << expected_line << "' in the log: " << server_.StderrText();
    }
    return ::testing::AssertionSuccess();
  }

  TestRoot dir_{"sluice-config-test-"};
  std::string config_path_;
  ServerProcess server_;
};

// ---- virtual hosts -------------------------------------------------------

constexpr char kThreeSites[] = R"(
root = "{c}"
[[site]]
hosts = ["a.test", "alias.test"]
root = "{a}"
[[site]]
hosts = ["*.b.test"]
root = "{b}"
[[site]]
hosts = ["c.test"]
default = true
[[site]]
hosts = ["shared.test"]
root = "{a}"
)";

TEST_F(ConfigTest, HostSelectsTheSiteExactWildcardCasePortTrailingDot) {
  ASSERT_TRUE(WriteConfig(kThreeSites));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  const std::pair<const char*, const char*> cases[] = {
      {"a.test", kSiteA},          {"alias.test", kSiteA},    {"A.Test", kSiteA},
      {"ALIAS.TEST:8080", kSiteA}, {"a.test.", kSiteA},       {"a.test.:80", kSiteA},
      {"x.b.test", kSiteB},        {"deep.x.b.test", kSiteB}, {"X.B.TEST:443", kSiteB},
      {"b.test", kSiteC},          {"c.test", kSiteC},        {"unknown.example", kSiteC},
      {"127.0.0.1", kSiteC},       {"[::1]:8080", kSiteC},    {"shared.test", kSiteA},
  };
  for (const auto& [host, body] : cases) {
    const std::optional<HttpResponse> r = Get("/", "", host);
    ASSERT_TRUE(r) << host;
    EXPECT_EQ(r->status, 200) << host << ": " << r->Describe();
    EXPECT_EQ(r->body, body) << "Host: " << host;
  }
}

TEST_F(ConfigTest, AnAbsoluteFormTargetsAuthorityChoosesTheSite) {
  ASSERT_TRUE(WriteConfig(kThreeSites));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  // RFC 9112 §3.2.2: the target's authority replaces Host.
  for (const auto& [target, body] :
       {std::pair{"http://a.test/", kSiteA}, std::pair{"http://X.B.TEST:8080/index.html", kSiteB},
        std::pair{"http://nowhere.test/", kSiteC}}) {
    const std::optional<HttpResponse> r = Get(target, "", "c.test");
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target << ": " << r->Describe();
    EXPECT_EQ(r->body, body) << target;
  }
}

TEST_F(ConfigTest, EachSiteServesItsOwnRoot) {
  ASSERT_TRUE(WriteConfig(kThreeSites));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  // The same path, alternately, through each site's cache.
  for (int round = 0; round < 3; ++round) {
    for (const auto& [host, body] : {std::pair{"a.test", kSiteA}, std::pair{"x.b.test", kSiteB},
                                     std::pair{"c.test", kSiteC}}) {
      const std::optional<HttpResponse> r = Get("/index.html", "", host);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->body, body) << host << " round " << round;
    }
  }
  std::optional<HttpResponse> r = Get("/only-a.txt", "", "a.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  r = Get("/only-a.txt", "", "shared.test");  // Another site on the same root.
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  r = Get("/only-a.txt", "", "x.b.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << "b's root has no only-a.txt: " << r->Describe();
}

TEST_F(ConfigTest, WithoutADefaultTheFirstSiteAnswersUnknownHosts) {
  ASSERT_TRUE(WriteConfig(R"(
[[site]]
hosts = ["b.test"]
root = "{b}"
[[site]]
hosts = ["a.test"]
root = "{a}"
)"));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  for (const auto& [host, body] : {std::pair{"nobody.test", kSiteB}, std::pair{"a.test", kSiteA},
                                   std::pair{"b.test", kSiteB}}) {
    const std::optional<HttpResponse> r = Get("/", "", host);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, body) << host;
  }
}

// ---- header edits --------------------------------------------------------

constexpr char kHeaderRules[] = R"(
root = "{a}"
[[site]]
[[site.rule]]
match = "/**"
headers.set = { "Cache-Control" = "public, max-age=60", "X-Frame-Options" = "DENY" }
headers.remove = ["Server"]
[[site.rule]]
match = "*.txt"
headers.set = { "Content-Type" = "text/x-edited", "X-Frame-Options" = "SAMEORIGIN" }
headers.append = { "Vary" = "Cookie", "X-Trace" = "one" }
[[site.rule]]
match = "/docs/**"
headers.append = { "X-Trace" = "two" }
[[site.rule]]
match = "/**"
methods = ["GET"]
headers.set = { "X-Get-Only" = "yes" }
)";

// What every edit of kHeaderRules leaves on a response for /docs/a.txt.
void ExpectTxtEdits(const HttpResponse& r) {
  EXPECT_EQ(r.Header("Cache-Control"), "public, max-age=60") << r.Describe();
  EXPECT_EQ(r.HeaderCount("Cache-Control"), 1) << r.Describe();
  EXPECT_EQ(r.Header("X-Frame-Options"), "SAMEORIGIN") << "a later set wins: " << r.Describe();
  EXPECT_EQ(r.HeaderCount("X-Frame-Options"), 1) << r.Describe();
  EXPECT_FALSE(r.HasHeader("Server")) << r.Describe();
  EXPECT_TRUE(r.HeaderHasToken("Vary", "Cookie")) << r.Describe();
  EXPECT_EQ(r.HeaderCount("X-Trace"), 2) << "appends accumulate: " << r.Describe();
  std::vector<std::string> trace;
  for (const auto& [name, value] : r.headers) {
    if (name == "X-Trace") trace.push_back(value);
  }
  EXPECT_EQ(trace, (std::vector<std::string>{"one", "two"})) << "in file order";
  EXPECT_EQ(r.Header("X-Get-Only"), "yes") << r.Describe();
}

TEST_F(ConfigTest, HeaderEditsApplyTo200AndHeadInFileOrder) {
  ASSERT_TRUE(dir_.WriteFile("a/docs/a.txt", kText));
  ASSERT_TRUE(WriteConfig(kHeaderRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  std::optional<HttpResponse> r = Get("/docs/a.txt");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->body, kText);
  EXPECT_EQ(r->Header("Content-Type"), "text/x-edited") << r->Describe();
  EXPECT_EQ(r->HeaderCount("Content-Type"), 1) << r->Describe();
  ExpectTxtEdits(*r);

  // A GET rule also covers HEAD.
  r = Fetch(Request("HEAD", "/docs/a.txt", "localhost"), "HEAD");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(sizeof(kText) - 1));
  ExpectTxtEdits(*r);

  // Outside *.txt and /docs/: only the general rules.
  r = Get("/index.html");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->Header("X-Frame-Options"), "DENY") << r->Describe();
  EXPECT_EQ(r->Header("Content-Type"), "text/html; charset=utf-8") << r->Describe();
  EXPECT_FALSE(r->HasHeader("X-Trace")) << r->Describe();
  EXPECT_FALSE(r->HasHeader("Server")) << r->Describe();
}

TEST_F(ConfigTest, HeaderEditsApplyTo206) {
  ASSERT_TRUE(dir_.WriteFile("a/docs/a.txt", kText));
  ASSERT_TRUE(WriteConfig(kHeaderRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  const std::optional<HttpResponse> r = Get("/docs/a.txt", "Range: bytes=2-5\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 206) << r->Describe();
  EXPECT_EQ(r->body, "2345");
  EXPECT_EQ(r->Header("Content-Range"), "bytes 2-5/" + std::to_string(sizeof(kText) - 1));
  EXPECT_EQ(r->Header("Content-Type"), "text/x-edited") << r->Describe();
  ExpectTxtEdits(*r);
}

TEST_F(ConfigTest, HeaderEditsOn304KeepCacheFieldsButNotRepresentationFields) {
  ASSERT_TRUE(dir_.WriteFile("a/docs/a.txt", kText));
  ASSERT_TRUE(WriteConfig(kHeaderRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  const std::optional<HttpResponse> full = Get("/docs/a.txt");
  ASSERT_TRUE(full);
  const std::string etag = full->Header("ETag").value_or("");
  ASSERT_FALSE(etag.empty()) << full->Describe();
  const std::optional<HttpResponse> r = Get("/docs/a.txt", "If-None-Match: " + etag + "\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 304) << r->Describe();
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->Header("ETag"), etag) << r->Describe();
  ExpectTxtEdits(*r);  // Cache-Control, Vary, security and custom fields.
  // RFC 9110 §15.4.5: no representation metadata edits on a 304.
  EXPECT_NE(r->Header("Content-Type"), "text/x-edited") << r->Describe();
}

TEST_F(ConfigTest, HeaderEditsApplyToRedirectsButNotToBuiltInErrors) {
  ASSERT_TRUE(dir_.WriteFile("a/docs/a.txt", kText));
  ASSERT_TRUE(WriteConfig(kHeaderRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  // The server's own 301 to the directory's slash form: a 3xx, edited.
  std::optional<HttpResponse> r = Get("/docs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 301) << r->Describe();
  EXPECT_EQ(r->Header("Location"), "/docs/");
  EXPECT_EQ(r->Header("X-Frame-Options"), "DENY") << r->Describe();
  // A built-in 404 (no error page configured): none of the edits.
  r = Get("/docs/missing.txt");
  ASSERT_TRUE(r);
  EXPECT_TRUE(IsErrorResponse(*r, 404));
  EXPECT_FALSE(r->HasHeader("X-Frame-Options")) << r->Describe();
  EXPECT_FALSE(r->HasHeader("X-Trace")) << r->Describe();
  EXPECT_NE(r->Header("Cache-Control"), "public, max-age=60") << r->Describe();
  EXPECT_TRUE(r->HasHeader("Server")) << "remove is an edit too: " << r->Describe();
}

TEST_F(ConfigTest, MethodsLimitARule) {
  ASSERT_TRUE(WriteConfig(kHeaderRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  // OPTIONS gets a 204 (a 2xx, so edits apply) but not the GET-only rule.
  const std::optional<HttpResponse> r = Fetch(Request("OPTIONS", "/index.html", "localhost"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204) << r->Describe();
  EXPECT_FALSE(r->HasHeader("X-Get-Only")) << r->Describe();
  EXPECT_EQ(r->Header("X-Frame-Options"), "DENY") << r->Describe();
}

// ---- CORS ----------------------------------------------------------------

constexpr char kCorsRules[] = R"(
root = "{a}"
[[site]]
[[site.rule]]
match = "/api/**"
cors = { origins = ["https://app.test"], methods = ["GET", "HEAD", "PUT"], headers = ["content-type", "x-token"], expose_headers = ["etag"], max_age = "10m" }
[[site.rule]]
match = "/pub/**"
cors = { origins = ["*"] }
)";

class CorsTest : public ConfigTest {
 protected:
  void SetUp() override {
    ConfigTest::SetUp();
    ASSERT_TRUE(dir_.WriteFile("a/api/data.json", "{\"ok\":true}\n"));
    ASSERT_TRUE(dir_.WriteFile("a/pub/font.woff2", "wOF2 not really\n"));
    ASSERT_TRUE(WriteConfig(kCorsRules));
    SLUICE_START_OR_SKIP(server_, Flags({}));
  }

  std::optional<HttpResponse> Options(std::string_view target, std::string_view extra) {
    return Fetch(Request("OPTIONS", target, "localhost", extra));
  }
};

// A preflight that was refused or was not one: the plain OPTIONS answer.
void ExpectPlainOptions(const HttpResponse& r) {
  EXPECT_EQ(r.status, 204) << r.Describe();
  EXPECT_EQ(r.Header("Allow"), "GET, HEAD, OPTIONS") << r.Describe();
  EXPECT_FALSE(r.HasHeader("Access-Control-Allow-Methods")) << r.Describe();
  EXPECT_FALSE(r.HasHeader("Access-Control-Allow-Headers")) << r.Describe();
  EXPECT_FALSE(r.HasHeader("Access-Control-Max-Age")) << r.Describe();
}

TEST_F(CorsTest, AllowedPreflightIs204WithTheAllowFields) {
  const std::optional<HttpResponse> r =
      Options("/api/data.json",
              "Origin: https://app.test\r\nAccess-Control-Request-Method: PUT\r\n"
              "Access-Control-Request-Headers: Content-Type, X-Token\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204) << r->Describe();
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->Header("Access-Control-Allow-Origin"), "https://app.test") << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Access-Control-Allow-Methods", "PUT")) << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Access-Control-Allow-Headers", "content-type")) << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Access-Control-Allow-Headers", "x-token")) << r->Describe();
  EXPECT_EQ(r->Header("Access-Control-Max-Age"), "600") << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Vary", "Origin")) << r->Describe();
  EXPECT_FALSE(r->HasHeader("Access-Control-Allow-Credentials")) << r->Describe();
}

TEST_F(CorsTest, RefusedPreflightIsAPlainOptions) {
  for (const char* extra : {
           // An origin not listed.
           "Origin: https://evil.test\r\nAccess-Control-Request-Method: GET\r\n",
           // A method not allowed.
           "Origin: https://app.test\r\nAccess-Control-Request-Method: DELETE\r\n",
           // A request header not allowed.
           "Origin: https://app.test\r\nAccess-Control-Request-Method: GET\r\n"
           "Access-Control-Request-Headers: x-secret\r\n",
       }) {
    const std::optional<HttpResponse> r = Options("/api/data.json", extra);
    ASSERT_TRUE(r) << extra;
    ExpectPlainOptions(*r);
    if (std::string_view(extra).find("evil") != std::string_view::npos) {
      EXPECT_FALSE(r->HasHeader("Access-Control-Allow-Origin")) << r->Describe();
    }
  }
}

TEST_F(CorsTest, OptionsWithoutRequestMethodIsNotAPreflight) {
  std::optional<HttpResponse> r = Options("/api/data.json", "Origin: https://app.test\r\n");
  ASSERT_TRUE(r);
  ExpectPlainOptions(*r);
  EXPECT_TRUE(r->HeaderHasToken("Vary", "Origin")) << r->Describe();
  r = Options("/api/data.json", "");
  ASSERT_TRUE(r);
  ExpectPlainOptions(*r);
  EXPECT_FALSE(r->HasHeader("Access-Control-Allow-Origin")) << r->Describe();
}

TEST_F(CorsTest, ActualRequestsCarryOriginFieldsAndVary) {
  std::optional<HttpResponse> r = Get("/api/data.json", "Origin: https://app.test\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->Header("Access-Control-Allow-Origin"), "https://app.test") << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Access-Control-Expose-Headers", "etag")) << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Vary", "Origin")) << r->Describe();
  // Another origin, and no origin: not allowed, but the answer varies on it.
  for (const char* extra : {"Origin: https://evil.test\r\n", ""}) {
    r = Get("/api/data.json", extra);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_FALSE(r->HasHeader("Access-Control-Allow-Origin")) << extra << r->Describe();
    EXPECT_TRUE(r->HeaderHasToken("Vary", "Origin")) << extra << r->Describe();
  }
  // Errors of a matching path too: a script must be able to read its 404.
  r = Get("/api/missing.json", "Origin: https://app.test\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->Describe();
  EXPECT_EQ(r->Header("Access-Control-Allow-Origin"), "https://app.test") << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Vary", "Origin")) << r->Describe();
  // A 304 as well.
  r = Get("/api/data.json", "Origin: https://app.test\r\nIf-None-Match: *\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304) << r->Describe();
  EXPECT_EQ(r->Header("Access-Control-Allow-Origin"), "https://app.test") << r->Describe();
  // Outside the rule: nothing.
  r = Get("/index.html", "Origin: https://app.test\r\n");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->HasHeader("Access-Control-Allow-Origin")) << r->Describe();
  EXPECT_FALSE(r->HeaderHasToken("Vary", "Origin")) << r->Describe();
}

TEST_F(CorsTest, AnyOriginIsAStarWithoutVary) {
  for (const char* extra : {"Origin: https://anyone.test\r\n", ""}) {
    const std::optional<HttpResponse> r = Get("/pub/font.woff2", extra);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_EQ(r->Header("Access-Control-Allow-Origin"), "*") << extra << r->Describe();
    EXPECT_FALSE(r->HeaderHasToken("Vary", "Origin")) << extra << r->Describe();
  }
  const std::optional<HttpResponse> r =
      Options("/pub/font.woff2",
              "Origin: https://anyone.test\r\nAccess-Control-Request-Method: "
              "GET\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204) << r->Describe();
  EXPECT_EQ(r->Header("Access-Control-Allow-Origin"), "*") << r->Describe();
  EXPECT_TRUE(r->HeaderHasToken("Access-Control-Allow-Methods", "GET")) << r->Describe();
}

// ---- redirects -----------------------------------------------------------

constexpr char kRedirectRules[] = R"(
root = "{a}"
[[site]]
[[site.rule]]
match = "/old/**"
redirect = { to = "/new/", status = 308, keep_query = true }
[[site.rule]]
match = "/old/keep/**"
redirect = { to = "/kept/" }
[[site.rule]]
match = "/moved.html"
redirect = { to = "/there.html", status = 302 }
[[site.rule]]
match = "/temp/**"
redirect = { to = "/elsewhere/", status = 307 }
[[site.rule]]
match = "/perm"
redirect = { to = "https://example.org/perm", keep_query = true }
)";

TEST_F(ConfigTest, RedirectRulesStatusPrefixAndQuery) {
  ASSERT_TRUE(WriteConfig(kRedirectRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  struct Case {
    const char* target;
    int status;
    const char* location;
  };
  const Case cases[] = {
      {"/old/a/b.html?x=1&y=2", 308, "/new/a/b.html?x=1&y=2"},  // keep_query = true
      {"/old/page", 308, "/new/page"},
      {"/old/", 308, "/new/"},
      {"/old/keep/z.txt?q=1", 301, "/kept/z.txt"},  // A later rule wins; default 301, no query.
      {"/moved.html?q=1", 302, "/there.html"},      // keep_query defaults to false.
      {"/temp/x/y", 307, "/elsewhere/x/y"},
      {"/temp/x?drop=me", 307, "/elsewhere/x"},
      {"/perm?a=b", 301, "https://example.org/perm?a=b"},
      // Percent-encoded in the request, decoded for matching, encoded again.
      {"/old/a%20b.html", 308, "/new/a%20b.html"},
      {"/old/%C3%A9t%C3%A9", 308, "/new/%C3%A9t%C3%A9"},
      {"/old/a%3Fb", 308, "/new/a%3Fb"},
  };
  for (const Case& c : cases) {
    const std::optional<HttpResponse> r = Get(c.target);
    ASSERT_TRUE(r) << c.target;
    EXPECT_EQ(r->status, c.status) << c.target << ": " << r->Describe();
    EXPECT_EQ(r->Header("Location"), c.location) << c.target << ": " << r->Describe();
  }
}

TEST_F(ConfigTest, RedirectRulesAnswerGetAndHeadOnly) {
  ASSERT_TRUE(WriteConfig(kRedirectRules));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  std::optional<HttpResponse> r = Fetch(Request("HEAD", "/old/x", "localhost"), "HEAD");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 308) << r->Describe();
  EXPECT_EQ(r->Header("Location"), "/new/x");
  EXPECT_TRUE(r->body.empty());
  r = Fetch(Request("POST", "/old/x", "localhost", "Content-Length: 0\r\n"));
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 308) << r->Describe();
  EXPECT_FALSE(r->HasHeader("Location")) << r->Describe();
  // Paths beside the rule's prefix are not redirected.
  r = Get("/older");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->Describe();
}

// ---- clean URLs ----------------------------------------------------------

class CleanUrlsTest : public ConfigTest {
 protected:
  void StartWith(std::string_view mode) {
    ASSERT_TRUE(dir_.WriteFile("a/about.html", kAbout));
    ASSERT_TRUE(dir_.WriteFile("a/docs/index.html", kDocsIndex));
    ASSERT_TRUE(dir_.WriteFile("a/docs/guide.html", kGuide));
    ASSERT_TRUE(dir_.WriteFile("a/style.css", "p{}\n"));
    ASSERT_TRUE(WriteConfig(Cat({"root = \"{a}\"\n[[site]]\n[[site.rule]]\n",
                                 "match = \"/**\"\nclean_urls = ", mode, "\n"})));
    SLUICE_START_OR_SKIP(server_, Flags({}));
  }

  void ExpectPage(std::string_view target, std::string_view body) {
    const std::optional<HttpResponse> r = Get(target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target << ": " << r->Describe();
    EXPECT_EQ(r->body, body) << target;
    EXPECT_EQ(r->Header("Content-Type"), "text/html; charset=utf-8") << target;
  }

  // A directory keeps its 301 to the slash form, clean URLs or not: the
  // relative links of its index.html resolve against the directory only
  // with the slash (file_response.cc; the brief had /docs served directly).
  void ExpectDirectoryRedirect() {
    const std::optional<HttpResponse> r = Get("/docs?x=1");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 301) << r->Describe();
    EXPECT_EQ(r->Header("Location"), "/docs/?x=1") << r->Describe();
  }
};

TEST_F(CleanUrlsTest, ServesHtmlFilesAndDirectoriesWithoutSuffixOrSlash) {
  StartWith("true");
  ExpectPage("/about", kAbout);
  ExpectPage("/about?x=1", kAbout);
  ExpectPage("/about.html", kAbout);  // Still served under its own name.
  ExpectDirectoryRedirect();
  ExpectPage("/docs/", kDocsIndex);
  ExpectPage("/docs/guide", kGuide);
  const std::optional<HttpResponse> head = Fetch(Request("HEAD", "/about", "localhost"), "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200) << head->Describe();
  EXPECT_EQ(head->Header("Content-Length"), std::to_string(sizeof(kAbout) - 1));
  for (const char* missing : {"/missing", "/style", "/about.txt", "/docs/missing"}) {
    const std::optional<HttpResponse> r = Get(missing);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << missing << ": " << r->Describe();
  }
}

TEST_F(CleanUrlsTest, RedirectModeSendsTheHtmlFormToTheCleanOne) {
  StartWith("\"redirect\"");
  ExpectPage("/about", kAbout);
  ExpectDirectoryRedirect();
  struct Case {
    const char* target;
    const char* location;
  };
  for (const Case& c :
       {Case{"/about.html", "/about"}, Case{"/about.html?x=1", "/about?x=1"},
        Case{"/docs/guide.html", "/docs/guide"}, Case{"/docs/index.html", "/docs/"}}) {
    const std::optional<HttpResponse> r = Get(c.target);
    ASSERT_TRUE(r) << c.target;
    EXPECT_EQ(r->status, 301) << c.target << ": " << r->Describe();
    EXPECT_EQ(r->Header("Location"), c.location) << c.target << ": " << r->Describe();
  }
  const std::optional<HttpResponse> css = Get("/style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->status, 200) << "only .html is redirected: " << css->Describe();
}

TEST_F(CleanUrlsTest, OffByDefault) {
  StartWith("false");
  std::optional<HttpResponse> r = Get("/about");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->Describe();
  r = Get("/docs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 301) << r->Describe();
}

// ---- SPA fallback --------------------------------------------------------

constexpr char kHtmlAccept[] =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";

class SpaTest : public ConfigTest {
 protected:
  void StartWith(std::string_view rules) {
    ASSERT_TRUE(dir_.WriteFile("a/app.html", kAppHtml));
    ASSERT_TRUE(dir_.WriteFile("a/assets/app.js", kAppJs));
    ASSERT_TRUE(WriteConfig(Cat({"root = \"{a}\"\n[[site]]\n", rules})));
    SLUICE_START_OR_SKIP(server_, Flags({}));
  }
};

TEST_F(SpaTest, NavigationToAMissingPathGetsIndexWithNoCache) {
  StartWith("[[site.rule]]\nmatch = \"/**\"\nspa_fallback = true\n");
  for (const char* target : {"/route", "/deep/route/42", "/route/", "/route?tab=2"}) {
    const std::optional<HttpResponse> r = Get(target, kHtmlAccept);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target << ": " << r->Describe();
    EXPECT_EQ(r->body, kSiteA) << target;
    EXPECT_EQ(r->Header("Content-Type"), "text/html; charset=utf-8") << target;
    EXPECT_EQ(r->Header("Cache-Control"), "no-cache") << target << ": " << r->Describe();
  }
  const std::optional<HttpResponse> head =
      Fetch(Request("HEAD", "/route", "localhost", kHtmlAccept), "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200) << head->Describe();
  EXPECT_EQ(head->Header("Content-Length"), std::to_string(sizeof(kSiteA) - 1));
  // Files that exist are themselves, without the fallback's no-cache.
  const std::optional<HttpResponse> js = Get("/assets/app.js", kHtmlAccept);
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200) << js->Describe();
  EXPECT_EQ(js->body, kAppJs);
  EXPECT_FALSE(js->HasHeader("Cache-Control")) << js->Describe();
}

TEST_F(SpaTest, AssetsAndNonNavigationRequestsStill404) {
  StartWith("[[site.rule]]\nmatch = \"/**\"\nspa_fallback = true\n");
  struct Case {
    const char* target;
    const char* extra;
  };
  const Case cases[] = {
      {"/assets/missing.js", kHtmlAccept},         // Looks like an asset.
      {"/favicon.ico", kHtmlAccept},               //
      {"/route", "Accept: */*\r\n"},               // fetch() and scripts.
      {"/route", "Accept: application/json\r\n"},  //
      {"/route", ""},                              // No Accept at all.
  };
  for (const Case& c : cases) {
    const std::optional<HttpResponse> r = Get(c.target, c.extra);
    ASSERT_TRUE(r) << c.target;
    EXPECT_EQ(r->status, 404) << c.target << " with '" << c.extra << "': " << r->Describe();
    EXPECT_NE(r->body, kSiteA) << c.target;
  }
  const std::optional<HttpResponse> post =
      Fetch(Request("POST", "/route", "localhost", Cat({kHtmlAccept, "Content-Length: 0\r\n"})));
  ASSERT_TRUE(post);
  EXPECT_NE(post->status, 200) << post->Describe();
}

TEST_F(SpaTest, NamedFileAndARuleCacheControl) {
  StartWith(
      "[[site.rule]]\nmatch = \"/**\"\nspa_fallback = \"/app.html\"\n"
      "[[site.rule]]\nmatch = \"/cached/**\"\n"
      "headers.set = { \"Cache-Control\" = \"max-age=5\" }\n");
  std::optional<HttpResponse> r = Get("/route", kHtmlAccept);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->body, kAppHtml);
  EXPECT_EQ(r->Header("Cache-Control"), "no-cache") << r->Describe();
  r = Get("/cached/route", kHtmlAccept);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->body, kAppHtml);
  EXPECT_EQ(r->Header("Cache-Control"), "max-age=5") << "a rule's edit wins: " << r->Describe();
  EXPECT_EQ(r->HeaderCount("Cache-Control"), 1) << r->Describe();
}

// ---- error pages ---------------------------------------------------------

constexpr char kErrorPageRules[] = R"(
root = "{a}"
[[site]]
[[site.rule]]
match = "/**"
error_pages = { 404 = "/404.html", 403 = "/errors/403.txt" }
headers.set = { "X-Frame-Options" = "DENY" }
[[site.rule]]
match = "/nopage/**"
error_pages = { 404 = "/errors/absent.html" }
)";

class ErrorPageTest : public ConfigTest {
 protected:
  void SetUp() override {
    ConfigTest::SetUp();
    ASSERT_TRUE(dir_.WriteFile("a/404.html", k404Page));
    ASSERT_TRUE(dir_.WriteFile("a/errors/403.txt", k403Page));
    ASSERT_TRUE(dir_.WriteFile("a/secret.txt", "secret\n"));
    ASSERT_TRUE(dir_.Chmod("a/secret.txt", 0));
    ASSERT_TRUE(WriteConfig(kErrorPageRules));
    SLUICE_START_OR_SKIP(server_, Flags({}));
  }
};

TEST_F(ErrorPageTest, ConfiguredPageIsServedWithItsStatusTypeAndRuleHeaders) {
  std::optional<HttpResponse> r = Get("/missing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->Describe();
  EXPECT_EQ(r->body, k404Page);
  EXPECT_EQ(r->Header("Content-Type"), "text/html; charset=utf-8") << r->Describe();
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(sizeof(k404Page) - 1));
  EXPECT_EQ(r->Header("X-Frame-Options"), "DENY") << r->Describe();

  r = Fetch(Request("HEAD", "/missing", "localhost"), "HEAD");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->Describe();
  EXPECT_TRUE(r->body.empty());
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(sizeof(k404Page) - 1));

  // Mode 000: unreadable by the server (nobody when the test runs as root).
  r = Get("/secret.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->Describe();
  EXPECT_EQ(r->body, k403Page);
  EXPECT_EQ(r->Header("Content-Type").value_or("").rfind("text/plain", 0), 0u) << r->Describe();
  EXPECT_EQ(r->Header("X-Frame-Options"), "DENY") << r->Describe();
}

TEST_F(ErrorPageTest, RangesAndConditionalsDoNotApplyToAnErrorPage) {
  const std::optional<HttpResponse> page = Get("/404.html");  // The page as a file: 200.
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200) << page->Describe();
  const std::string etag = page->Header("ETag").value_or("\"x\"");
  for (const std::string& extra :
       {std::string("Range: bytes=0-3\r\n"), "If-None-Match: " + etag + "\r\n",
        std::string("If-None-Match: *\r\n"),
        std::string("If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n")}) {
    const std::optional<HttpResponse> r = Get("/missing", extra);
    ASSERT_TRUE(r) << extra;
    EXPECT_EQ(r->status, 404) << extra << r->Describe();
    EXPECT_EQ(r->body, k404Page) << extra;
    EXPECT_FALSE(r->HasHeader("Content-Range")) << r->Describe();
  }
}

TEST_F(ErrorPageTest, AMissingPageFallsBackToTheBuiltInError) {
  const std::optional<HttpResponse> r = Get("/nopage/x");
  ASSERT_TRUE(r);
  EXPECT_TRUE(IsErrorResponse(*r, 404));
  EXPECT_NE(r->body, k404Page);
  EXPECT_FALSE(r->HasHeader("X-Frame-Options")) << "a built-in error: " << r->Describe();
}

// ---- --check-config --------------------------------------------------------

class CheckConfigTest : public ConfigTest {
 protected:
  ProcessResult Check(std::string_view text, std::string_view spelling = "--check-config") {
    EXPECT_TRUE(WriteConfig(text));
    return RunProcess({SluiceBinary(), std::string(spelling), "--config=" + config_path_},
                      std::chrono::seconds(20));
  }
};

TEST_F(CheckConfigTest, AGoodFileIsOk) {
  for (const char* spelling : {"--check-config", "--check_config"}) {
    const ProcessResult p = Check(kThreeSites, spelling);
    EXPECT_TRUE(p.ExitedWithCode(0)) << spelling << ": " << p.Describe();
    EXPECT_EQ(p.out, config_path_ + ": ok\n") << spelling;
  }
  // The example file in the repository, with its roots pointed here.
  std::string example;
  ASSERT_TRUE(
      ReadWholeFile(std::string(SLUICE_SOURCE_DIR) + "/docs/sluice.example.toml", &example));
  example = ReplaceAll(example, {{"\"/srv/example\"", "\"{a}\""},
                                 {"\"/srv/app\"", "\"{b}\""},
                                 {"root = \"www\"", "root = \"{c}\""}});
  const ProcessResult p = Check(example);
  EXPECT_TRUE(p.ExitedWithCode(0)) << p.Describe();
}

// The TOML block in README.md's "Configuration file" and deploy/www.toml
// are valid, with their roots pointed at directories that exist.
TEST_F(CheckConfigTest, TheReadmeExampleAndTheWwwConfigAreValid) {
  std::string readme;
  ASSERT_TRUE(ReadWholeFile(std::string(SLUICE_SOURCE_DIR) + "/README.md", &readme));
  const size_t section = readme.find("## Configuration file");
  ASSERT_NE(section, std::string::npos);
  const size_t begin = readme.find("```toml\n", section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = readme.find("```", begin + 8);
  ASSERT_NE(end, std::string::npos);
  const std::string example =
      ReplaceAll(readme.substr(begin + 8, end - begin - 8), {{"\"/srv/default\"", "\"{a}\""},
                                                             {"\"/srv/example\"", "\"{b}\""},
                                                             {"\"/srv/app\"", "\"{c}\""}});
  ProcessResult p = Check(example);
  EXPECT_TRUE(p.ExitedWithCode(0)) << "README's example: " << p.Describe();

  std::string www;
  ASSERT_TRUE(ReadWholeFile(std::string(SLUICE_SOURCE_DIR) + "/deploy/www.toml", &www));
  www = ReplaceAll(www, {{"root = \"www\"", Cat({"root = \"", SLUICE_SOURCE_DIR, "/www\""})}});
  p = Check(www);
  EXPECT_TRUE(p.ExitedWithCode(0)) << "deploy/www.toml: " << p.Describe();
}

TEST_F(CheckConfigTest, ErrorsNameFileLineAndColumnAndExit2) {
  struct Case {
    const char* text;
    const char* expected;  // After "FILE".
  };
  const Case cases[] = {
      {"root = \"{a}\"\n\n[[site]\n", ":3:"},  // TOML syntax.
      {"root = \"{a}\"\nbogus = 1\n", ":2:1: unknown key \"bogus\""},
      {"root = \"{a}\"\n[[site]]\n[[site.rule]]\nmatch = \"/**\"\nheders.set = {}\n", ":5:"},
      {"threads = \"two\"\n", ":1:"},  // Wrong type.
      {"max_connections = 0\n", ": --max_connections must be at least 1"},
  };
  for (const Case& c : cases) {
    const ProcessResult p = Check(c.text);
    EXPECT_TRUE(p.ExitedWithCode(2)) << c.text << p.Describe();
    EXPECT_NE(p.err.find(config_path_ + c.expected), std::string::npos)
        << "for:\n"
        << c.text << "stderr: " << p.err;
    EXPECT_EQ(p.out.find(": ok"), std::string::npos) << p.out;
  }
}

// The limits RunServer checks (server.cc CheckLimits) are configuration
// errors too: --check-config must not say "ok" to a file a start refuses.
TEST_F(CheckConfigTest, ThreadsAndBacklogOutOfRangeAreErrors) {
  for (const auto& [text, expected] :
       {std::pair{"threads = 0\n", ": --threads must be between 1 and 1024"},
        std::pair{"backlog = 0\n", ": --backlog must be at least 1"}}) {
    const ProcessResult p = Check(text);
    EXPECT_TRUE(p.ExitedWithCode(2)) << text << p.Describe();
    EXPECT_NE(p.err.find(config_path_ + expected), std::string::npos) << text << p.err;
  }
}

TEST_F(CheckConfigTest, AMissingRootIsAnError) {
  const ProcessResult p = Check("root = \"{a}\"\n[[site]]\nroot = \"{a}/no-such-dir\"\n");
  EXPECT_TRUE(p.ExitedWithCode(2)) << p.Describe();
  EXPECT_NE(p.err.find("no-such-dir"), std::string::npos) << p.err;
}

// ---- the command line over the file --------------------------------------

TEST_F(ConfigTest, TheCommandLineOverridesTheFile) {
  ASSERT_TRUE(WriteConfig("root = \"{a}\"\ncache_control = \"max-age=1\"\n"));
  {
    SLUICE_START_OR_SKIP(server_, Flags({}));
    const std::optional<HttpResponse> r = Get("/index.html");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, kSiteA);
    EXPECT_EQ(r->Header("Cache-Control"), "max-age=1") << r->Describe();
    EXPECT_TRUE(server_.Stop());
  }
  ServerProcess second;
  SLUICE_START_OR_SKIP(second, Flags({"--root=" + dir_.Path("b"), "--cache_control=max-age=2"}));
  std::string error;
  const std::optional<HttpResponse> r =
      FetchOnce(second.host(), second.port(), MakeRequest("GET", "/index.html"), &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->body, kSiteB);
  EXPECT_EQ(r->Header("Cache-Control"), "max-age=2") << r->Describe();
  EXPECT_TRUE(second.Stop());
}

// ---- SIGHUP ----------------------------------------------------------------

std::string GenerationConfig(std::string_view tag, std::string_view root = "{a}") {
  return Cat({"root = \"", root, "\"\n[[site]]\n[[site.rule]]\nmatch = \"/**\"\n",
              "headers.set = { \"X-Gen\" = \"", tag, "\" }\n"});
}

TEST_F(ConfigTest, SighupLoadsAGoodFile) {
  ASSERT_TRUE(WriteConfig(GenerationConfig("one")));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  // A keep-alive connection opened under generation 1 sees generation 2 on
  // its next request.
  HttpConnection kept;
  ASSERT_TRUE(kept.Connect(server_.host(), server_.port())) << kept.last_error();
  ASSERT_TRUE(kept.Send(MakeRequest("GET", "/")));
  std::optional<HttpResponse> r = kept.ReadResponse();
  ASSERT_TRUE(r) << kept.last_error();
  EXPECT_EQ(r->Header("X-Gen"), "one");

  ASSERT_TRUE(WriteConfig(GenerationConfig("two")));
  ASSERT_TRUE(Reload("SIGHUP: configuration generation 2 loaded"));
  r = GetUntil("/", [](const HttpResponse& x) { return x.Header("X-Gen") == "two"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("X-Gen"), "two") << r->Describe();
  for (int i = 0; i < 4; ++i) {  // Both workers, whichever takes the connection.
    r = Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->Header("X-Gen"), "two") << r->Describe();
  }
  ASSERT_TRUE(kept.Send(MakeRequest("GET", "/")));
  r = kept.ReadResponse();
  ASSERT_TRUE(r) << kept.last_error();
  EXPECT_EQ(r->Header("X-Gen"), "two") << r->Describe();

  const nlohmann::json c = ConfigMetrics();
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(c["generation"], 2) << c.dump();
  EXPECT_EQ(c["reloads_total"]["ok"], 1) << c.dump();
  EXPECT_EQ(c["reloads_total"]["error"], 0) << c.dump();
  EXPECT_GT(c["loaded_time_unix_seconds"].get<double>(), 1.6e9) << c.dump();
}

TEST_F(ConfigTest, SighupWithABrokenFileKeepsTheRunningConfiguration) {
  ASSERT_TRUE(WriteConfig(GenerationConfig("one")));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  const std::string broken[] = {
      "root = \"{a}\"\n[[site]]\n[[site.rule]]\nmatch = \"/**\"\nheaders.set = { \"X-Gen\" "
      "= ",
      GenerationConfig("two", "{a}/no-such-root"),
      GenerationConfig("two") + "unknown_key = 1\n",
  };
  for (size_t i = 0; i < std::size(broken); ++i) {
    ASSERT_TRUE(WriteConfig(broken[i]));
    ASSERT_TRUE(Reload("SIGHUP: configuration not reloaded, generation 1 stays: "));
    // Wait for this reload's count, not the previous one's log line.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    nlohmann::json c = ConfigMetrics();
    while (!c.is_null() && c["reloads_total"]["error"] != i + 1 && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      c = ConfigMetrics();
    }
    ASSERT_FALSE(c.is_null());
    EXPECT_EQ(c["reloads_total"]["error"], i + 1) << c.dump();
    EXPECT_EQ(c["reloads_total"]["ok"], 0) << c.dump();
    EXPECT_EQ(c["generation"], 1) << c.dump();
    const std::optional<HttpResponse> r = Get("/");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_EQ(r->Header("X-Gen"), "one") << "after broken file " << i << ": " << r->Describe();
  }
  const std::optional<HttpResponse> prom = Get("/metrics?format=prometheus");
  ASSERT_TRUE(prom);
  EXPECT_NE(prom->body.find("sluice_config_reloads_total{result=\"error\"} 3"), std::string::npos)
      << EscapeBytes(prom->body, 20000);
  EXPECT_NE(prom->body.find("sluice_config_generation 1"), std::string::npos);
  // One line per failure.
  const std::string log = server_.StderrText();
  size_t lines = 0;
  for (size_t at = log.find("configuration not reloaded"); at != std::string::npos;
       at = log.find("configuration not reloaded", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, std::size(broken)) << log;
  // And a good file afterwards is generation 2.
  ASSERT_TRUE(WriteConfig(GenerationConfig("two")));
  ASSERT_TRUE(Reload("SIGHUP: configuration generation 2 loaded"));
  const std::optional<HttpResponse> r =
      GetUntil("/", [](const HttpResponse& x) { return x.Header("X-Gen") == "two"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->Header("X-Gen"), "two") << r->Describe();
}

TEST_F(ConfigTest, SighupChangesARootAndTheReloadableSettings) {
  ASSERT_TRUE(WriteConfig("root = \"{a}\"\ncache_control = \"max-age=1\"\n"));
  SLUICE_START_OR_SKIP(server_, Flags({}));
  std::optional<HttpResponse> r = Get("/index.html");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kSiteA);
  // Another root, another Cache-Control, and a setting that needs a restart.
  ASSERT_TRUE(
      WriteConfig("root = \"{b}\"\ncache_control = \"max-age=2\"\nkeepalive_timeout = \"7s\"\n"));
  ASSERT_TRUE(Reload("SIGHUP: configuration generation 2 loaded"));
  EXPECT_NE(server_.StderrText().find("keepalive_timeout"), std::string::npos)
      << "a changed keepalive_timeout needs a restart: " << server_.StderrText();
  r = GetUntil("/index.html", [](const HttpResponse& x) { return x.body == kSiteB; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kSiteB);
  EXPECT_EQ(r->Header("Cache-Control"), "max-age=2") << r->Describe();
  // Sites with roots of their own, one of them changing.
  ASSERT_TRUE(WriteConfig(R"(
root = "{a}"
[[site]]
hosts = ["one.test"]
root = "{c}"
[[site]]
hosts = ["two.test"]
root = "{b}"
)"));
  ASSERT_TRUE(Reload("SIGHUP: configuration generation 3 loaded"));
  r = GetUntil("/index.html", [](const HttpResponse& x) { return x.body == kSiteC; });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kSiteC) << "the first site answers localhost";
  r = Get("/index.html", "", "two.test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, kSiteB);
}

}  // namespace
}  // namespace sluice::test
