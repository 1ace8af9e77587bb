// RootWatchPoints and AbsoluteRootPath: which directories a document root's
// path depends on, symlinks expanded, with a fake readlink.

#include "sluice/serve/document_root.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

std::vector<WatchPoint> Points(const std::string& path,
                               const std::map<std::string, std::string>& links) {
  return RootWatchPoints(path, [&](const std::string& p) -> std::optional<std::string> {
    auto it = links.find(p);
    if (it == links.end()) return std::nullopt;
    return it->second;
  });
}

TEST(RootWatchPointsTest, PlainPathListsEachComponentWithItsDirectory) {
  EXPECT_EQ(Points("/srv/www", {}), (std::vector<WatchPoint>{{"/", "srv"}, {"/srv", "www"}}));
  EXPECT_EQ(Points("//srv/./www/", {}), (std::vector<WatchPoint>{{"/", "srv"}, {"/srv", "www"}}));
}

TEST(RootWatchPointsTest, CapistranoRelativeLink) {
  // /srv/app/current -> releases/2
  EXPECT_EQ(Points("/srv/app/current/public", {{"/srv/app/current", "releases/2"}}),
            (std::vector<WatchPoint>{{"/", "srv"},
                                     {"/srv", "app"},
                                     {"/srv/app", "current"},
                                     {"/srv/app", "releases"},
                                     {"/srv/app/releases", "2"},
                                     {"/srv/app/releases/2", "public"}}));
}

TEST(RootWatchPointsTest, AbsoluteLinkAndLinkInsideALinkTarget) {
  // /a/site -> /data/sites/b ; /data/sites -> ../vol/sites
  const std::vector<WatchPoint> got =
      Points("/a/site/www", {{"/a/site", "/data/sites/b"}, {"/data/sites", "../vol/sites"}});
  EXPECT_EQ(got, (std::vector<WatchPoint>{{"/", "a"},
                                          {"/a", "site"},
                                          {"/", "data"},
                                          {"/data", "sites"},
                                          {"/", "vol"},
                                          {"/vol", "sites"},
                                          {"/vol/sites", "b"},
                                          {"/vol/sites/b", "www"}}));
}

TEST(RootWatchPointsTest, DotDotIsResolvedAfterTheLinkNotLexically) {
  // /x/l -> /p/q ; /x/l/../r is /p/r, not /x/r.
  EXPECT_EQ(
      Points("/x/l/../r", {{"/x/l", "/p/q"}}),
      (std::vector<WatchPoint>{{"/", "x"}, {"/x", "l"}, {"/", "p"}, {"/p", "q"}, {"/p", "r"}}));
}

TEST(RootWatchPointsTest, LinkLoopStopsAfterForty) {
  const std::vector<WatchPoint> got = Points("/loop/www", {{"/loop", "/loop"}});
  EXPECT_LE(got.size(), 45u);
  EXPECT_EQ(got.back(), (WatchPoint{"/loop", "www"}));
}

TEST(AbsoluteRootPathTest, Table) {
  EXPECT_EQ(AbsoluteRootPath("/srv/www", "/home"), "/srv/www");
  EXPECT_EQ(AbsoluteRootPath("www", "/home/u"), "/home/u/www");
  EXPECT_EQ(AbsoluteRootPath("current/public", "/"), "/current/public");
}

}  // namespace
}  // namespace sluice
