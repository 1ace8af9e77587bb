// Confinement to the document root: path traversal in all its encodings,
// symlinks leading out of the root, dotfiles, FIFOs and unreadable files.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

constexpr char kIndexHtml[] = "<!doctype html><p>root index</p>\n";
constexpr char kSubIndexHtml[] = "<!doctype html><p>sub index</p>\n";
constexpr char kSecret[] = "sluice-test-secret-7f3a9c1e5b2d4086";

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok() && outside_.ok());
    ASSERT_TRUE(outside_.WriteFile("secret.txt", std::string(kSecret) + "\n"));
    ASSERT_TRUE(root_.WriteFile("index.html", kIndexHtml));
    ASSERT_TRUE(root_.WriteFile("sub/index.html", kSubIndexHtml));
    ASSERT_TRUE(root_.WriteFile("foo", "the file foo\n"));
    ASSERT_TRUE(root_.WriteFile(".hidden", std::string(kSecret) + " hidden\n"));
    ASSERT_TRUE(root_.WriteFile(".git/config", std::string(kSecret) + " git\n"));
    ASSERT_TRUE(root_.WriteFile("sub/.env", std::string(kSecret) + " env\n"));
    ASSERT_TRUE(root_.Symlink(outside_.Path("secret.txt"), "escape_link"));
    ASSERT_TRUE(root_.Symlink(outside_.path(), "escape_dir"));
    ASSERT_TRUE(root_.Symlink("../../../../../../../../etc/passwd", "relative_escape"));
    SLUICE_START_OR_SKIP(server_, {"--root=" + root_.path(), "--threads=2"});
  }

  void TearDown() override {
    if (server_.running()) {
      EXPECT_TRUE(server_.Stop());
      EXPECT_TRUE(server_.ExitedWithCode(0)) << "server " << server_.DescribeExit();
    }
  }

  std::optional<HttpResponse> Fetch(const std::string& raw_request,
                                    std::string_view method = "GET") {
    std::string error;
    std::optional<HttpResponse> response =
        FetchOnce(server_.host(), server_.port(), raw_request, &error, method);
    if (!response) ADD_FAILURE() << "request '" << EscapeBytes(raw_request, 300) << "': " << error;
    return response;
  }

  // The request must be refused (400, 403 or 404) without leaking anything.
  void ExpectRefused(const std::string& raw_request, std::string_view method = "GET") {
    SCOPED_TRACE("request: " + EscapeBytes(raw_request, 300));
    const std::optional<HttpResponse> r = Fetch(raw_request, method);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->status == 400 || r->status == 403 || r->status == 404) << r->Describe();
    const std::string all = r->head + r->body;
    EXPECT_EQ(all.find(kSecret), std::string::npos) << "leaked the secret: " << r->Describe();
    EXPECT_EQ(all.find("root:"), std::string::npos) << "leaked /etc/passwd: " << r->Describe();
    EXPECT_EQ(r->HeaderCount("Content-Length"), 1) << r->Describe();
    if (method != "HEAD") {
      EXPECT_EQ(r->Header("Content-Length"), std::to_string(r->body.size())) << r->Describe();
    }
  }

  // Declared first so that they outlive the server.
  TestRoot outside_{"sluice-outside-"};
  TestRoot root_;
  ServerProcess server_;
};

TEST_F(SecurityTest, TraversalIsRefused) {
  const std::vector<std::string> targets = {
      "/../etc/passwd",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/%2E%2E/%2E%2E/etc/passwd",
      "/a/../../etc/passwd",
      "/sub/../../etc/passwd",
      "/%2e%2e%2fetc%2fpasswd",
      "/..%2f..%2fetc/passwd",
      "/sub/..%2f..%2f..%2fetc/passwd",
      "/.%2e/.%2e/etc/passwd",
      "/%252e%252e/etc/passwd",
      "/..\\..\\etc\\passwd",
      "/foo%00.html",
      "/%zz",
      "/%",
      "/%2",
      "//etc/passwd",
      "/etc/passwd",
  };
  for (const std::string& target : targets) ExpectRefused(MakeRequest("GET", target));
  ExpectRefused(MakeRequest("GET", "http://x/../../etc/passwd"));
  ExpectRefused(MakeRequest("GET", "http://localhost/%2e%2e/%2e%2e/etc/passwd"));
  ExpectRefused(MakeRequest("HEAD", "/../etc/passwd"), "HEAD");
}

TEST_F(SecurityTest, SymlinksOutOfTheRootAreRefused) {
  const std::string outside_file = outside_.Path("secret.txt");
  for (const std::string& target :
       {std::string("/escape_link"), std::string("/escape_dir/secret.txt"),
        std::string("/relative_escape"), "/" + outside_file, "/.." + outside_file,
        "/%2e%2e/%2e%2e" + outside_file}) {
    ExpectRefused(MakeRequest("GET", target));
  }
}

TEST_F(SecurityTest, DotSegmentsInsideTheRootWork) {
  for (const char* target : {"/sub/../index.html", "/./index.html", "/sub/./../sub/index.html"}) {
    const std::optional<HttpResponse> r = Fetch(MakeRequest("GET", target));
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->status, 200) << target << ": " << r->Describe();
    const std::string expected =
        std::string(target).find("sub/index") != std::string::npos ? kSubIndexHtml : kIndexHtml;
    EXPECT_EQ(r->body, expected) << target;
  }
}

TEST_F(SecurityTest, DotfilesAre404) {
  for (const char* target :
       {"/.hidden", "/.git/config", "/sub/.env", "/%2ehidden", "/.git/", "/.git"}) {
    const std::optional<HttpResponse> r = Fetch(MakeRequest("GET", target));
    ASSERT_TRUE(r) << target;
    EXPECT_TRUE(IsErrorResponse(*r, 404)) << target;
    EXPECT_EQ((r->head + r->body).find(kSecret), std::string::npos) << target;
  }
}

TEST_F(SecurityTest, NulByteDoesNotTruncateThePath) {
  // "/foo%00.html" must not open "foo".
  const std::optional<HttpResponse> r = Fetch(MakeRequest("GET", "/foo%00.html"));
  ASSERT_TRUE(r);
  EXPECT_NE(r->status, 200) << r->Describe();
  EXPECT_EQ(r->body.find("the file foo"), std::string::npos) << r->Describe();
}

TEST_F(SecurityTest, FifoIsRefusedPromptlyAndServerKeepsServing) {
  ASSERT_TRUE(root_.MakeFifo("pipe"));
  HttpConnection fifo;
  ASSERT_TRUE(fifo.Connect(server_.host(), server_.port())) << fifo.last_error();
  const auto start = Clock::now();
  ASSERT_TRUE(fifo.Send(MakeRequest("GET", "/pipe")));

  // Meanwhile other connections are served.
  for (int i = 0; i < 3; ++i) {
    std::string error;
    const std::optional<HttpResponse> other =
        FetchOnce(server_.host(), server_.port(), MakeRequest("GET", "/index.html"), &error, "GET",
                  Millis(2000));
    ASSERT_TRUE(other) << "server stopped serving while a FIFO was requested: " << error;
    EXPECT_EQ(other->status, 200);
    EXPECT_EQ(other->body, kIndexHtml);
  }

  const std::optional<HttpResponse> r = fifo.ReadResponse("GET", Millis(2000));
  ASSERT_TRUE(r) << "no response for a FIFO within 2 s: " << fifo.last_error();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(r->status == 403 || r->status == 404) << r->Describe();
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(r->body.size()));

  std::string error;
  const std::optional<HttpResponse> after =
      FetchOnce(server_.host(), server_.port(), MakeRequest("GET", "/sub/"), &error);
  ASSERT_TRUE(after) << error;
  EXPECT_EQ(after->body, kSubIndexHtml);
}

// Started as root, sluice serves as nobody (no --user=root here), so a
// mode-000 file is unreadable whoever runs the tests.
TEST_F(SecurityTest, UnreadableFileIs403) {
  ASSERT_TRUE(root_.WriteFile("locked.html", "locked\n"));
  ASSERT_TRUE(root_.Chmod("locked.html", 0));
  const std::optional<HttpResponse> r = Fetch(MakeRequest("GET", "/locked.html"));
  ASSERT_TRUE(r);
  EXPECT_TRUE(IsErrorResponse(*r, 403));
  EXPECT_EQ(r->body.find("locked\n"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
