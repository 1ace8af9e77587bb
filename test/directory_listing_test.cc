// Directory listings: the renderer (escaping, hrefs, order, cap notice),
// the names listed, Accept negotiation, and ReadDirectoryListing on a real
// temporary directory (dotfiles, symlinks in and out of the root, FIFOs,
// names that are not UTF-8, the cap).
#include "sluice/serve/directory_listing.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace sluice {
namespace {

ListingEntry File(std::string name, uint64_t size, int64_t mtime = 1614834367) {
  return ListingEntry{std::move(name), false, size, mtime};
}
ListingEntry Dir(std::string name) { return ListingEntry{std::move(name), true, 0, 1614834367}; }

Listing Make(std::vector<ListingEntry> entries) {
  Listing l;
  l.entries = std::move(entries);
  l.total = l.entries.size();
  return l;
}

TEST(DirectoryListingTest, HtmlEscapesEveryMarkupCharacter) {
  std::string out;
  AppendHtmlEscaped(&out, "<a href=\"x\">'&'</a>");
  EXPECT_EQ(out, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(DirectoryListingTest, PercentEncodingKeepsOnlyUnreserved) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"plain-name_1.txt~", "plain-name_1.txt~"},
      {"a b", "a%20b"},
      {"#frag", "%23frag"},
      {"q?x=1", "q%3Fx%3D1"},
      {"caf\xc3\xa9", "caf%C3%A9"},
      {"50%", "50%25"},
      {"a:b", "a%3Ab"},  // Never read as a scheme.
      {"<\"'&>", "%3C%22%27%26%3E"},
      {"a/b", "a%2Fb"},
  };
  for (const Case& c : cases) {
    std::string out;
    AppendPercentEncoded(&out, c.in);
    EXPECT_EQ(out, c.out) << c.in;
  }
}

TEST(DirectoryListingTest, HtmlRowsEscapeNamesAndEncodeHrefs) {
  const Listing l = Make({File("<b>&\"q'.html", 2), File("a b#c?.txt", 1536),
                          File("caf\xc3\xa9.txt", 1), Dir("sub dir")});
  const std::string html = RenderListingHtml(l, "/x<y>/", false);
  EXPECT_NE(html.find("<a href=\"%3Cb%3E%26%22q%27.html\">&lt;b&gt;&amp;&quot;q&#39;.html</a>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<a href=\"a%20b%23c%3F.txt\">a b#c?.txt</a>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"caf%C3%A9.txt\">caf\xc3\xa9.txt</a>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"sub%20dir/\">sub dir/</a>"), std::string::npos);
  EXPECT_NE(html.find("1.5 KiB"), std::string::npos);
  EXPECT_NE(html.find("title=\"1536 bytes\""), std::string::npos);
  EXPECT_NE(html.find("2021-03-04 05:06:07"), std::string::npos);
  EXPECT_NE(html.find("<title>Index of /x&lt;y&gt;/</title>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"../\">"), std::string::npos);
  EXPECT_NE(html.find("name=\"viewport\""), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("truncated"), std::string::npos);
}

TEST(DirectoryListingTest, NoParentLinkAtTheRoot) {
  const std::string html = RenderListingHtml(Make({File("a", 1)}), "/", true);
  EXPECT_EQ(html.find("href=\"../\""), std::string::npos);
}

TEST(DirectoryListingTest, TruncatedListingSaysSo) {
  Listing l = Make({File("a", 1), File("b", 2)});
  l.total = 5;
  l.truncated = true;
  const std::string html = RenderListingHtml(l, "/d/", false);
  EXPECT_NE(html.find("Showing the first 2 of 5 entries"), std::string::npos) << html;
  const nlohmann::json j = nlohmann::json::parse(RenderListingJson(l, "/d/"));
  EXPECT_EQ(j["truncated"], true);
  EXPECT_EQ(j["total"], 5);
  EXPECT_EQ(j["entries"].size(), 2u);
}

TEST(DirectoryListingTest, JsonHasTypedEntries) {
  const Listing l = Make({File("a \"q\".txt", 10), Dir("d")});
  const nlohmann::json j = nlohmann::json::parse(RenderListingJson(l, "/p/"));
  EXPECT_EQ(j["path"], "/p/");
  EXPECT_EQ(j["truncated"], false);
  ASSERT_EQ(j["entries"].size(), 2u);
  EXPECT_EQ(j["entries"][0]["name"], "a \"q\".txt");
  EXPECT_EQ(j["entries"][0]["type"], "file");
  EXPECT_EQ(j["entries"][0]["size"], 10);
  EXPECT_EQ(j["entries"][0]["mtime"], "2021-03-04T05:06:07Z");
  EXPECT_EQ(j["entries"][1]["type"], "directory");
}

TEST(DirectoryListingTest, ListableNames) {
  for (const char* ok : {"a", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "a b", "x.y"}) {
    EXPECT_TRUE(ListableName(ok)) << ok;
  }
  for (const char* bad :
       {"", ".", "..", ".env", "bad\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "tab\there", "nl\n", "del\x7f", "\xc2\x85"}) {
    EXPECT_FALSE(ListableName(bad)) << bad;
  }
}

TEST(DirectoryListingTest, PrefersJsonByWeightHtmlOnATie) {
  struct Case {
    const char* accept;
    bool present;
    bool json;
  } cases[] = {
      {"", false, false},
      {"application/json", true, true},
      {"APPLICATION/JSON", true, true},
      {"text/html", true, false},
      {"text/html, application/json", true, false},
      {"application/json, text/html", true, false},
      {"application/json, text/html;q=0.9", true, true},
      {"text/html;q=0.5, application/json;q=0.6", true, true},
      {"text/html;level=1;q=0.5, application/*", true, true},
      {"*/*", true, false},
      {"application/json;q=0", true, false},
      {"application/json;q=bad", true, false},
      {"image/png", true, false},
      {"*/*;q=0.1, application/json", true, true},
      {"text/*, application/json;q=0.9", true, false},
  };
  for (const Case& c : cases) EXPECT_EQ(PrefersJson(c.accept, c.present), c.json) << c.accept;
}

// A temporary directory tree, removed afterwards.
class ReadDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-listing-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((base_ + "/outside").c_str(), 0755), 0);
    root_fd_ = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    if (root_fd_ >= 0) close(root_fd_);
    if (!base_.empty()) {
      const std::string cmd = "rm -rf '" + base_ + "'";
      ASSERT_EQ(system(cmd.c_str()), 0);
    }
  }
  void Write(const std::string& rel, const std::string& content) {
    FILE* f = fopen((root_ + "/" + rel).c_str(), "w");
    ASSERT_NE(f, nullptr) << rel;
    fwrite(content.data(), 1, content.size(), f);
    fclose(f);
  }
  std::vector<std::string> Names(const Listing& l) {
    std::vector<std::string> names;
    for (const ListingEntry& e : l.entries) names.push_back(e.name + (e.directory ? "/" : ""));
    return names;
  }

  std::string base_, root_;
  int root_fd_ = -1;
};

TEST_F(ReadDirectoryTest, SortedByBytesDotfilesAndNonFilesHidden) {
  Write("b.txt", "bb");
  Write("B.txt", "B");
  Write("a.txt", "a");
  Write(".env", "secret");
  Write("caf\xc3\xa9", "c");
  Write("bad\xff", "x");
  ASSERT_EQ(mkdir((root_ + "/dir").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root_ + "/.git").c_str(), 0755), 0);
  ASSERT_EQ(mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  ASSERT_EQ(symlink("a.txt", (root_ + "/link-in").c_str()), 0);
  ASSERT_EQ(symlink("../outside", (root_ + "/link-out").c_str()), 0);
  ASSERT_EQ(symlink("missing", (root_ + "/dangling").c_str()), 0);
  ASSERT_EQ(symlink("dir", (root_ + "/link-dir").c_str()), 0);
  Listing l;
  ASSERT_EQ(ReadDirectoryListing(root_fd_, "", 100, &l), 0);
  EXPECT_EQ(Names(l), (std::vector<std::string>{"B.txt", "a.txt", "b.txt", "caf\xc3\xa9", "dir/",
                                                "link-dir/", "link-in"}));
  EXPECT_EQ(l.total, 7u);
  EXPECT_FALSE(l.truncated);
  // bad\xff, fifo, link-out, dangling.
  EXPECT_EQ(l.skipped, 4u);
  // A symlink inside the root is listed as what it points to.
  EXPECT_EQ(l.entries[6].size, 1u);
  EXPECT_EQ(l.entries[2].size, 2u);
}

TEST_F(ReadDirectoryTest, CapKeepsTheFirstNamesInOrder) {
  for (int i = 0; i < 50; ++i) {
    char name[16];
    snprintf(name, sizeof(name), "f%02d", 49 - i);
    Write(name, "x");
  }
  Listing l;
  ASSERT_EQ(ReadDirectoryListing(root_fd_, "", 10, &l), 0);
  ASSERT_EQ(l.entries.size(), 10u);
  EXPECT_EQ(l.entries.front().name, "f00");
  EXPECT_EQ(l.entries.back().name, "f09");
  EXPECT_EQ(l.total, 50u);
  EXPECT_TRUE(l.truncated);
}

TEST_F(ReadDirectoryTest, SubdirectoryAndErrors) {
  ASSERT_EQ(mkdir((root_ + "/sub").c_str(), 0755), 0);
  Write("sub/x", "x");
  Write("file", "f");
  ASSERT_EQ(symlink("../outside", (root_ + "/out").c_str()), 0);
  Listing l;
  ASSERT_EQ(ReadDirectoryListing(root_fd_, "sub", 10, &l), 0);
  EXPECT_EQ(Names(l), std::vector<std::string>{"x"});
  EXPECT_EQ(ReadDirectoryListing(root_fd_, "missing", 10, &l), ENOENT);
  EXPECT_EQ(ReadDirectoryListing(root_fd_, "file", 10, &l), ENOTDIR);
  // Outside the root through a symlink: refused as a request's open is.
  EXPECT_EQ(ReadDirectoryListing(root_fd_, "out", 10, &l), EXDEV);
  EXPECT_EQ(ReadDirectoryListing(root_fd_, "..", 10, &l), EXDEV);
}

}  // namespace
}  // namespace sluice
