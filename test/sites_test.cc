// Rules as the server applies them: matching in file order, last-wins keys,
// header edits collected in order, error pages, redirect targets, and the
// allocation-free host normalisation (serve/sites.h).
#include "sluice/serve/sites.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

RuleConfig Rule(std::string_view glob) {
  absl::StatusOr<PathGlob> g = PathGlob::Compile(glob);
  EXPECT_TRUE(g.ok()) << glob;
  return RuleConfig(*std::move(g));
}

SiteConfig ThreeRules() {
  SiteConfig site;
  RuleConfig all = Rule("/**");
  all.headers.set.push_back({"X-All", "1"});
  all.error_pages.emplace_back(404, "/404.html");
  all.spa_fallback = "/index.html";
  site.rules.push_back(std::move(all));
  RuleConfig assets = Rule("/assets/**");
  assets.methods = {"GET"};
  assets.headers.set.push_back({"Cache-Control", "immutable"});
  assets.spa_fallback = "";  // Turned off again below /assets/.
  assets.error_pages.emplace_back(404, "/assets/missing.txt");
  site.rules.push_back(std::move(assets));
  RuleConfig old = Rule("/old/**");
  old.redirect = RedirectRule{"/new/", 308, true};
  old.clean_urls = CleanUrls::kRedirect;
  site.rules.push_back(std::move(old));
  return site;
}

TEST(MatchRulesTest, EveryMatchingRuleInOrderLastOneWinsForOtherKeys) {
  const SiteConfig site = ThreeRules();
  RuleMatch m;
  MatchRules(site, "/assets/app.js", "GET", &m);
  EXPECT_TRUE(m.any);
  EXPECT_TRUE(m.matched(0));
  EXPECT_TRUE(m.matched(1));
  EXPECT_FALSE(m.matched(2));
  EXPECT_EQ(m.header_rules, 2u);
  ASSERT_NE(m.spa_fallback, nullptr);
  EXPECT_EQ(*m.spa_fallback, "");  // The later rule turned it off.
  const HeaderEdits* edits[kRulesPerSiteMax];
  ASSERT_EQ(CollectHeaderEdits(site, m, edits), 2u);
  EXPECT_EQ(edits[0]->set[0].name, "X-All");
  EXPECT_EQ(edits[1]->set[0].name, "Cache-Control");
  ASSERT_NE(ErrorPageFor(site, m, 404), nullptr);
  EXPECT_EQ(*ErrorPageFor(site, m, 404), "/assets/missing.txt");
  EXPECT_EQ(ErrorPageFor(site, m, 403), nullptr);
  EXPECT_EQ(m.redirect, nullptr);
  EXPECT_EQ(m.clean_urls, CleanUrls::kOff);
}

TEST(MatchRulesTest, MethodsNarrowARuleAndGetCoversHead) {
  const SiteConfig site = ThreeRules();
  RuleMatch m;
  MatchRules(site, "/assets/app.js", "HEAD", &m);
  EXPECT_TRUE(m.matched(1));
  MatchRules(site, "/assets/app.js", "OPTIONS", &m);
  EXPECT_FALSE(m.matched(1));
  EXPECT_TRUE(m.matched(0));
  EXPECT_EQ(m.header_rules, 1u);
}

TEST(MatchRulesTest, ClearedBetweenRequests) {
  const SiteConfig site = ThreeRules();
  RuleMatch m;
  MatchRules(site, "/old/x", "GET", &m);
  ASSERT_NE(m.redirect, nullptr);
  EXPECT_EQ(m.clean_urls, CleanUrls::kRedirect);
  SiteConfig none;
  MatchRules(none, "/old/x", "GET", &m);
  EXPECT_FALSE(m.any);
  EXPECT_EQ(m.redirect, nullptr);
  EXPECT_EQ(m.header_rules, 0u);
}

TEST(MatchRulesTest, TwoHundredFiftySixRulesUseEveryBit) {
  SiteConfig site;
  for (size_t i = 0; i < kRulesPerSiteMax; ++i) {
    RuleConfig r = Rule(i % 2 == 0 ? "/**" : "/nothing/**");
    r.headers.append.push_back({"X-N", std::to_string(i)});
    site.rules.push_back(std::move(r));
  }
  RuleMatch m;
  MatchRules(site, "/a", "GET", &m);
  EXPECT_EQ(m.header_rules, kRulesPerSiteMax / 2);
  const HeaderEdits* edits[kRulesPerSiteMax];
  ASSERT_EQ(CollectHeaderEdits(site, m, edits), kRulesPerSiteMax / 2);
  EXPECT_EQ(edits[127]->append[0].value, "254");
  EXPECT_TRUE(m.matched(254));
  EXPECT_FALSE(m.matched(255));
}

struct RedirectCase {
  std::string_view match, to, path, query;
  bool keep_query;
  std::string_view want;
};

class RedirectTargetTest : public testing::TestWithParam<RedirectCase> {};

TEST_P(RedirectTargetTest, Location) {
  const RedirectCase& c = GetParam();
  const PathGlob glob = *PathGlob::Compile(c.match);
  const RedirectRule r{std::string(c.to), 301, c.keep_query};
  EXPECT_EQ(RedirectTarget(r, glob, c.path, c.query), c.want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RedirectTargetTest,
    testing::Values(
        RedirectCase{"/old/**", "/new/", "/old/a/b.html", "", false, "/new/a/b.html"},
        RedirectCase{"/old/**", "/new/", "/old/", "x=1", true, "/new/?x=1"},
        RedirectCase{"/old/**", "/new/", "/old/a", "x=1", false, "/new/a"},
        RedirectCase{"/old/**", "/new", "/old/a", "", false, "/new"},  // No slash: as given.
        RedirectCase{"/*/old/**", "/n/", "/x/old/y", "", false, "/n/y"},
        RedirectCase{"/old/**", "https://e.test/", "/old/a b", "", false, "https://e.test/a%20b"},
        RedirectCase{"/page.html", "/p", "/page.html", "q", true, "/p?q"}));

TEST(NormaliseHostTest, LowerCasePortAndDotGoneBadValuesEmpty) {
  EXPECT_EQ(NormaliseHost("Example.COM:8080"), "example.com");
  EXPECT_EQ(NormaliseHost("example.com."), "example.com");
  EXPECT_EQ(NormaliseHost("[::1]:80"), "[::1]");
  EXPECT_EQ(NormaliseHost("[::1]:"), "");
  EXPECT_EQ(NormaliseHost("a b"), "");
  EXPECT_EQ(NormaliseHost("a.test:123456"), "");
  EXPECT_EQ(NormaliseHost(std::string(300, 'a')), "");
  char small[4];
  EXPECT_EQ(NormaliseHost("abcdef", small, sizeof(small)), "");  // Never past the buffer.
}

TEST(SiteIndexTest, ExactThenLongestWildcardThenDefault) {
  std::vector<SiteConfig> sites(3);
  sites[0].hosts = {"a.test"};
  sites[1].hosts = {"*.test", "*.b.test"};
  sites[2].hosts = {"c.b.test"};
  sites[2].is_default = true;
  const SiteIndex index(sites);
  EXPECT_EQ(index.Select("A.TEST"), 0u);
  EXPECT_EQ(index.Select("x.test"), 1u);
  EXPECT_EQ(index.Select("x.b.test"), 1u);
  EXPECT_EQ(index.Select("c.b.test:81"), 2u);
  EXPECT_EQ(index.Select("elsewhere"), 2u);
  EXPECT_EQ(index.Select(""), 2u);
}

}  // namespace
}  // namespace sluice
