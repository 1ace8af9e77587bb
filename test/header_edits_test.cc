// Header edits on a written head (http/header_edits.h): order, replacement,
// removal of the server's own fields, CORS fields last, the 304 subset.
#include "sluice/http/header_edits.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr std::string_view kHead =
    "HTTP/1.1 200 OK\r\nServer: sluice\r\nDate: D\r\nETag: \"e\"\r\nVary: Accept-Encoding\r\n"
    "Content-Type: text/html\r\nContent-Length: 5\r\n\r\n";

std::string Rewrite(std::vector<HeaderEdits> edits, HeadKind kind = HeadKind::kNormal,
                    std::vector<HeaderField> extra = {}, std::string_view head = kHead) {
  std::vector<const HeaderEdits*> ptrs;
  for (const HeaderEdits& e : edits) ptrs.push_back(&e);
  std::string out;
  RewriteHead(head, ptrs, extra, kind, &out);
  return out;
}

TEST(RewriteHeadTest, SetReplacesAppendAddsRemoveDrops) {
  HeaderEdits e;
  e.set.push_back({"content-type", "text/plain"});
  e.append.push_back({"Vary", "Cookie"});
  e.remove.push_back("server");
  EXPECT_EQ(Rewrite({e}),
            "HTTP/1.1 200 OK\r\nDate: D\r\nETag: \"e\"\r\nVary: Accept-Encoding\r\n"
            "Content-Length: 5\r\ncontent-type: text/plain\r\nVary: Cookie\r\n\r\n");
}

TEST(RewriteHeadTest, LaterRulesOverrideEarlierOnes) {
  HeaderEdits general;
  general.set.push_back({"Cache-Control", "no-cache"});
  general.append.push_back({"X-A", "1"});
  HeaderEdits specific;
  specific.set.push_back({"cache-control", "immutable"});
  specific.remove.push_back("x-a");
  const std::string out = Rewrite({general, specific});
  EXPECT_EQ(out.find("no-cache"), std::string::npos);
  EXPECT_EQ(out.find("X-A"), std::string::npos);
  EXPECT_NE(out.find("cache-control: immutable\r\n\r\n"), std::string::npos) << out;
}

TEST(RewriteHeadTest, NotModifiedSkipsRepresentationMetadataOnly) {
  HeaderEdits e;
  e.set.push_back({"Content-Type", "text/plain"});
  e.set.push_back({"Cache-Control", "max-age=60"});
  e.set.push_back({"Strict-Transport-Security", "max-age=63072000"});
  const std::string head = "HTTP/1.1 304 Not Modified\r\nDate: D\r\nETag: \"e\"\r\n\r\n";
  EXPECT_EQ(Rewrite({e}, HeadKind::kNotModified, {}, head),
            "HTTP/1.1 304 Not Modified\r\nDate: D\r\nETag: \"e\"\r\nCache-Control: max-age=60\r\n"
            "Strict-Transport-Security: max-age=63072000\r\n\r\n");
}

TEST(RewriteHeadTest, ExtraFieldsComeLastAndNoEditsKeepTheHead) {
  EXPECT_EQ(Rewrite({}), std::string(kHead));
  const std::string out = Rewrite({}, HeadKind::kNormal, {{"Access-Control-Allow-Origin", "*"}});
  EXPECT_TRUE(out.ends_with("Content-Length: 5\r\nAccess-Control-Allow-Origin: *\r\n\r\n"));
}

TEST(RewriteHeadTest, ErrorPagesKeepTheirOwnCachingFields) {
  HeaderEdits e;
  e.set.push_back({"Cache-Control", "public, max-age=31536000, immutable"});
  e.append.push_back({"Expires", "Thu, 01 Jan 2037 00:00:00 GMT"});
  e.set.push_back({"X-Frame-Options", "DENY"});
  const std::string head = "HTTP/1.1 404 Not Found\r\nCache-Control: no-cache\r\n\r\n";
  EXPECT_EQ(Rewrite({e}, HeadKind::kErrorPage, {}, head),
            "HTTP/1.1 404 Not Found\r\nCache-Control: no-cache\r\nX-Frame-Options: DENY\r\n\r\n");
}

TEST(RewriteHeadTest, SkippedOnNotModifiedIgnoresCase) {
  EXPECT_TRUE(SkippedOnNotModified("CONTENT-TYPE"));
  EXPECT_TRUE(SkippedOnNotModified("last-modified"));
  EXPECT_FALSE(SkippedOnNotModified("ETag"));
  EXPECT_FALSE(SkippedOnNotModified("Cache-Control"));
}

}  // namespace
}  // namespace sluice
