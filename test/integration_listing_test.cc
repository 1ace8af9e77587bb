// Directory listings (--directory_listing) over raw loopback sockets against
// the real binary: off by default, HTML and JSON, index.html first, HEAD,
// the cap, changes seen by the next listing, symlinks that leave the root,
// and the metrics that count them.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

constexpr char kHtmlType[] = "text/html; charset=utf-8";

class ListingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok());
    ASSERT_TRUE(outside_.ok());
    ASSERT_TRUE(root_.MakeDir("files"));
    ASSERT_TRUE(root_.WriteFile("files/b.txt", "bb"));
    ASSERT_TRUE(root_.WriteFile("files/a file.txt", "a"));
    ASSERT_TRUE(root_.WriteFile("files/<x>&\"'.txt", "x"));
    ASSERT_TRUE(root_.WriteFile("files/q#?.txt", "q"));
    ASSERT_TRUE(root_.WriteFile("files/caf\xc3\xa9.txt", "cafe"));
    ASSERT_TRUE(root_.WriteFile("files/.secret", "hidden"));
    ASSERT_TRUE(root_.MakeDir("files/sub"));
    ASSERT_TRUE(root_.WriteFile("files/sub/deep.txt", "deep"));
    ASSERT_TRUE(root_.MakeDir("withindex"));
    ASSERT_TRUE(root_.WriteFile("withindex/index.html", "<p>index</p>\n"));
    ASSERT_TRUE(root_.WriteFile("withindex/other.txt", "o"));
    ASSERT_TRUE(root_.MakeDir("many"));
    for (int i = 0; i < 12; ++i) {
      ASSERT_TRUE(root_.WriteFile("many/f" + std::to_string(10 + i), "m"));
    }
    ASSERT_TRUE(root_.MakeDir("changing"));
    ASSERT_TRUE(root_.WriteFile("changing/first.txt", "1"));
    ASSERT_TRUE(outside_.WriteFile("secret.txt", "outside\n"));
    ASSERT_TRUE(root_.Symlink(outside_.path(), "escape"));
    ASSERT_TRUE(root_.Symlink("files/sub", "inner"));
  }

  void TearDown() override {
    if (server_.running()) {
      EXPECT_TRUE(server_.Stop());
      EXPECT_TRUE(server_.ExitedWithCode(0)) << "server " << server_.DescribeExit();
    }
  }

  void Start(std::vector<std::string> flags) {
    flags.push_back("--root=" + root_.path());
    flags.push_back("--threads=1");
    SLUICE_START_OR_SKIP(server_, flags);
  }

  std::optional<HttpResponse> Fetch(std::string_view method, std::string_view target,
                                    std::string_view headers = "") {
    std::string error;
    std::optional<HttpResponse> r = FetchOnce(server_.host(), server_.port(),
                                              MakeRequest(method, target, headers), &error, method);
    if (!r) ADD_FAILURE() << method << " " << target << ": " << error;
    return r;
  }
  std::optional<HttpResponse> Get(std::string_view target, std::string_view headers = "") {
    return Fetch("GET", target, headers);
  }
  nlohmann::json GetJson(std::string_view target) {
    const std::optional<HttpResponse> r = Get(target, "Accept: application/json\r\n");
    if (!r || r->status != 200) {
      ADD_FAILURE() << target << ": " << (r ? r->Describe() : "no response");
      return nlohmann::json();
    }
    EXPECT_EQ(r->Header("Content-Type"), "application/json") << r->Describe();
    return nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  }
  nlohmann::json Metrics() {
    const std::optional<HttpResponse> r = Get("/metrics");
    if (!r) return nlohmann::json();
    return nlohmann::json::parse(r->body, nullptr, false);
  }

  TestRoot root_;
  TestRoot outside_{"sluice-outside-"};
  ServerProcess server_;
};

TEST_F(ListingTest, OffByDefault) {
  Start({});
  if (IsSkipped() || HasFatalFailure()) return;
  const std::optional<HttpResponse> r = Get("/files/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->Describe();
}

TEST_F(ListingTest, HtmlListingEscapedSortedWithoutDotfiles) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  const std::optional<HttpResponse> r = Get("/files/");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->Describe();
  EXPECT_EQ(r->Header("Content-Type"), kHtmlType);
  EXPECT_EQ(r->Header("Cache-Control"), "no-cache");
  EXPECT_TRUE(r->HeaderHasToken("Vary", "Accept")) << r->Describe();
  EXPECT_FALSE(r->HasHeader("ETag"));
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(r->body.size()));
  const std::string& html = r->body;
  EXPECT_NE(html.find("<title>Index of /files/</title>"), std::string::npos) << html;
  EXPECT_NE(html.find("<a href=\"../\">"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"a%20file.txt\">a file.txt</a>"), std::string::npos) << html;
  EXPECT_NE(html.find("<a href=\"%3Cx%3E%26%22%27.txt\">&lt;x&gt;&amp;&quot;&#39;.txt</a>"),
            std::string::npos);
  EXPECT_NE(html.find("<a href=\"q%23%3F.txt\">q#?.txt</a>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"caf%C3%A9.txt\">caf\xc3\xa9.txt</a>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"sub/\">sub/</a>"), std::string::npos);
  EXPECT_EQ(html.find("secret"), std::string::npos) << "dotfiles are hidden";
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Byte order: "<" (0x3C) < "a" < "b" < "c" < "q" < "s".
  const size_t lt = html.find("&lt;x&gt;");
  const size_t a = html.find(">a file.txt<");
  const size_t b = html.find(">b.txt<");
  const size_t q = html.find(">q#?.txt<");
  const size_t sub = html.find(">sub/<");
  EXPECT_LT(lt, a);
  EXPECT_LT(a, b);
  EXPECT_LT(b, q);
  EXPECT_LT(q, sub);
  // Every link works: each href, resolved against /files/, serves its file.
  const std::optional<HttpResponse> f = Get("/files/q%23%3F.txt");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->status, 200);
  EXPECT_EQ(f->body, "q");
  // The root has no parent link.
  const std::optional<HttpResponse> top = Get("/");
  ASSERT_TRUE(top);
  EXPECT_EQ(top->status, 200) << top->Describe();
  EXPECT_EQ(top->body.find("href=\"../\""), std::string::npos);
}

TEST_F(ListingTest, JsonWhenAcceptPrefersIt) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  const nlohmann::json j = GetJson("/files/");
  ASSERT_TRUE(j.is_object()) << j;
  EXPECT_EQ(j["path"], "/files/");
  EXPECT_EQ(j["truncated"], false);
  ASSERT_EQ(j["entries"].size(), 6u) << j;
  EXPECT_EQ(j["entries"][0]["name"], "<x>&\"'.txt");
  EXPECT_EQ(j["entries"][1]["name"], "a file.txt");
  EXPECT_EQ(j["entries"][1]["type"], "file");
  EXPECT_EQ(j["entries"][1]["size"], 1);
  EXPECT_EQ(j["entries"][5]["name"], "sub");
  EXPECT_EQ(j["entries"][5]["type"], "directory");
  EXPECT_TRUE(j["entries"][5]["mtime"].is_string());
  // HTML on a tie, and when HTML is preferred.
  for (const char* accept : {"text/html, application/json", "*/*", "application/json;q=0.5, */*"}) {
    const std::optional<HttpResponse> r = Get("/files/", std::string("Accept: ") + accept + "\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->Header("Content-Type"), kHtmlType) << accept;
  }
}

TEST_F(ListingTest, IndexHtmlWinsAndNoSlashRedirects) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  const std::optional<HttpResponse> index = Get("/withindex/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<p>index</p>\n");
  const std::optional<HttpResponse> redirect = Get("/files");
  ASSERT_TRUE(redirect);
  EXPECT_EQ(redirect->status, 301);
  EXPECT_EQ(redirect->Header("Location"), "/files/");
  const std::optional<HttpResponse> dot = Get("/files/.secret/");
  ASSERT_TRUE(dot);
  EXPECT_EQ(dot->status, 404);
}

TEST_F(ListingTest, HeadHasTheHeadersOfGetAndNoBody) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  const std::optional<HttpResponse> get = Get("/files/");
  const std::optional<HttpResponse> head = Fetch("HEAD", "/files/");
  ASSERT_TRUE(get && head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("Content-Length"), get->Header("Content-Length"));
  EXPECT_EQ(head->Header("Content-Type"), kHtmlType);
  EXPECT_TRUE(head->body.empty());
}

TEST_F(ListingTest, CapListsTheFirstEntriesAndSaysSo) {
  Start({"--directory_listing", "--directory_listing_entries_max=5"});
  if (IsSkipped() || HasFatalFailure()) return;
  const nlohmann::json j = GetJson("/many/");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(j["total"], 12);
  ASSERT_EQ(j["entries"].size(), 5u);
  EXPECT_EQ(j["entries"][0]["name"], "f10");
  EXPECT_EQ(j["entries"][4]["name"], "f14");
  const std::optional<HttpResponse> html = Get("/many/");
  ASSERT_TRUE(html);
  EXPECT_NE(html->body.find("Showing the first 5 of 12 entries"), std::string::npos) << html->body;
  EXPECT_EQ(html->body.find(">f15<"), std::string::npos);
}

TEST_F(ListingTest, ChangesAppearInTheNextListing) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  HttpConnection c;
  ASSERT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
  auto list = [&]() -> std::string {
    if (!c.Send(MakeRequest("GET", "/changing/", "Accept: application/json\r\n"))) {
      return "send: " + c.last_error();
    }
    const std::optional<HttpResponse> r = c.ReadResponse();
    if (!r) return "read: " + c.last_error();
    if (r->status != 200) return r->Describe();
    std::string names;
    const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_object()) return "not JSON: " + r->body;
    for (const auto& e : j["entries"]) {
      names += e["name"].get<std::string>() + ":" + std::to_string(e["size"].get<int>()) + " ";
    }
    return names;
  };
  EXPECT_EQ(list(), "first.txt:1 ");
  EXPECT_EQ(list(), "first.txt:1 ");  // From the cache now.
  ASSERT_TRUE(root_.WriteFile("changing/second.txt", "22"));
  EXPECT_EQ(list(), "first.txt:1 second.txt:2 ");
  ASSERT_TRUE(root_.WriteFile("changing/first.txt", "1111"));
  EXPECT_EQ(list(), "first.txt:4 second.txt:2 ");
  ASSERT_EQ(std::rename(root_.Path("changing/second.txt").c_str(),
                        root_.Path("changing/third.txt").c_str()),
            0);
  EXPECT_EQ(list(), "first.txt:4 third.txt:2 ");
  ASSERT_EQ(std::remove(root_.Path("changing/first.txt").c_str()), 0);
  EXPECT_EQ(list(), "third.txt:2 ");
  const nlohmann::json m = Metrics();
  EXPECT_GE(m["totals"]["directory_listing"]["served_total"].get<int>(), 6) << m;
  EXPECT_GE(m["totals"]["directory_listing"]["cache_hits_total"].get<int>(), 1) << m;
  EXPECT_EQ(m["totals"]["blocking_pool"]["queue_depth"], 0) << m;
  EXPECT_GE(m["totals"]["blocking_pool"]["jobs_queued_total"].get<int>(), 5) << m;
}

TEST_F(ListingTest, SymlinksLeavingTheRootAreRefusedLikeFiles) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  for (const char* target : {"/escape/", "/escape/secret.txt"}) {
    const std::optional<HttpResponse> r = Get(target);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << target << " " << r->Describe();
  }
  // One inside the root is listed, and is listed in its parent.
  const std::optional<HttpResponse> inner = Get("/inner/");
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner->status, 200);
  EXPECT_NE(inner->body.find(">deep.txt<"), std::string::npos);
  const std::optional<HttpResponse> top = Get("/");
  ASSERT_TRUE(top);
  EXPECT_NE(top->body.find(">inner/<"), std::string::npos) << top->body;
  EXPECT_EQ(top->body.find("escape"), std::string::npos) << top->body;
}

TEST_F(ListingTest, PipelinedListingThenFile) {
  Start({"--directory_listing"});
  if (IsSkipped() || HasFatalFailure()) return;
  HttpConnection c;
  ASSERT_TRUE(c.Connect(server_.host(), server_.port())) << c.last_error();
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/files/sub/") + MakeRequest("GET", "/files/b.txt") +
                     MakeRequest("HEAD", "/many/")));
  const std::optional<HttpResponse> first = c.ReadResponse();
  ASSERT_TRUE(first) << c.last_error();
  EXPECT_EQ(first->status, 200);
  EXPECT_NE(first->body.find(">deep.txt<"), std::string::npos);
  const std::optional<HttpResponse> second = c.ReadResponse();
  ASSERT_TRUE(second) << c.last_error();
  EXPECT_EQ(second->body, "bb");
  const std::optional<HttpResponse> third = c.ReadResponse("HEAD");
  ASSERT_TRUE(third) << c.last_error();
  EXPECT_EQ(third->status, 200);
}

}  // namespace
}  // namespace sluice::test
