// Unit tests for the configuration file: every key, every error message,
// host selection, the limits, and the example file in docs/.
#include "sluice/server/config_file.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>

namespace sluice {
namespace {

ConfigFile Load(std::string_view text) {
  absl::StatusOr<ConfigFile> c = ParseConfigText(text, "t.toml");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : ConfigFile{};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ConfigFileTest, FlagKeysAreTypedAndKeepText) {
  ConfigFile c = Load(
      "root = \"/srv\"\nthreads = 4\nsqpoll = true\nheader_timeout = \"1m30s\"\n"
      "file_cache_bytes = 8589934592\n");
  // Sorted by name (toml++ tables are ordered maps).
  ASSERT_EQ(c.flags.size(), 5u);
  EXPECT_EQ(c.flags[0].name, "file_cache_bytes");
  EXPECT_EQ(std::get<int64_t>(c.flags[0].value), int64_t{8589934592});
  EXPECT_EQ(c.flags[0].text, "8589934592");
  EXPECT_EQ(std::get<absl::Duration>(c.flags[1].value), absl::Seconds(90));
  EXPECT_EQ(c.flags[1].text, "1m30s");
  EXPECT_EQ(std::get<std::string>(c.flags[2].value), "/srv");
  EXPECT_EQ(std::get<bool>(c.flags[3].value), true);
  EXPECT_EQ(c.flags[3].text, "true");
  EXPECT_EQ(std::get<int64_t>(c.flags[4].value), 4);
  EXPECT_TRUE(c.sites.empty());
  EXPECT_EQ(c.SelectSite("example.com"), nullptr);
}

// Every ABSL_FLAG in main.cc has a key of the same name and type, and no more.
TEST(ConfigFileTest, FlagKeysMatchMainCc) {
  const std::string main_cc = ReadFile(SLUICE_SOURCE_DIR "/src/server/main.cc");
  ASSERT_FALSE(main_cc.empty());
  const std::regex flag(R"(ABSL_FLAG\(([a-zA-Z_:0-9]+), ([a-z_0-9]+),)");
  size_t seen = 0;
  for (auto it = std::sregex_iterator(main_cc.begin(), main_cc.end(), flag);
       it != std::sregex_iterator(); ++it, ++seen) {
    const std::string type = (*it)[1];
    const std::string name = (*it)[2];
    if (name == "config" || name == "check_config") {
      // About the file itself: not keys in it.
      --seen;
      continue;
    }
    const FlagType want = type == "std::string"      ? FlagType::kString
                          : type == "int"            ? FlagType::kInt
                          : type == "int64_t"        ? FlagType::kInt64
                          : type == "bool"           ? FlagType::kBool
                          : type == "absl::Duration" ? FlagType::kDuration
                                                     : FlagType{99};
    bool found = false;
    for (const FlagKey& k : ConfigFlagKeys()) {
      if (k.name == name) {
        found = true;
        EXPECT_EQ(k.type, want) << name;
      }
    }
    EXPECT_TRUE(found) << "flag --" << name << " has no config key";
  }
  EXPECT_EQ(seen, ConfigFlagKeys().size());
}

constexpr std::string_view kFullSite = R"(
[[site]]
hosts = ["Example.COM:8080", "*.example.com", "[::1]", "static.example.net."]
root = "/srv/x"
default = true

[[site.rule]]
match = "/assets/**"
methods = ["GET", "HEAD"]
headers.set = { "Cache-Control" = "immutable", "X-A" = "" }
headers.append = { "Vary" = "Cookie" }
headers.remove = ["Server", "X-Powered-By"]
cors = { origins = ["https://a.test"], methods = ["GET"], headers = ["x-t"], expose_headers = ["etag"], max_age = "1h" }
redirect = { to = "https://b.test/x", status = 307, keep_query = true }
spa_fallback = "/app.html"
error_pages = { 404 = "/404.html", 503 = "/busy.html" }
clean_urls = true
listing = false

[[site.rule]]
match = "*.html"
spa_fallback = true

[[site.rule]]
match = "/x"
spa_fallback = false
redirect = { to = "/y" }
)";

TEST(ConfigFileTest, EverySiteAndRuleKey) {
  ConfigFile c = Load(kFullSite);
  ASSERT_EQ(c.sites.size(), 1u);
  const SiteConfig& s = c.sites[0];
  EXPECT_EQ(s.hosts, (std::vector<std::string>{"example.com", "*.example.com", "[::1]",
                                               "static.example.net"}));
  EXPECT_EQ(s.root, "/srv/x");
  EXPECT_TRUE(s.is_default);
  ASSERT_EQ(s.rules.size(), 3u);
  const RuleConfig& r = s.rules[0];
  EXPECT_TRUE(r.match.Matches("/assets/a/b.js"));
  EXPECT_EQ(r.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(r.headers.set, (std::vector<HeaderField>{{"Cache-Control", "immutable"}, {"X-A", ""}}));
  EXPECT_EQ(r.headers.append, (std::vector<HeaderField>{{"Vary", "Cookie"}}));
  EXPECT_EQ(r.headers.remove, (std::vector<std::string>{"server", "x-powered-by"}));
  ASSERT_TRUE(r.cors.has_value());
  EXPECT_EQ(r.cors->ForPreflight("https://a.test", "GET", "x-t").headers.back(),
            (HeaderField{"Access-Control-Max-Age", "3600"}));
  ASSERT_TRUE(r.redirect.has_value());
  EXPECT_EQ(r.redirect->to, "https://b.test/x");
  EXPECT_EQ(r.redirect->status, 307);
  EXPECT_TRUE(r.redirect->keep_query);
  EXPECT_EQ(r.spa_fallback, "/app.html");
  EXPECT_EQ(r.error_pages,
            (std::vector<std::pair<int, std::string>>{{404, "/404.html"}, {503, "/busy.html"}}));
  EXPECT_EQ(r.clean_urls, CleanUrls::kOn);
  EXPECT_EQ(r.listing, false);
  EXPECT_FALSE(s.rules[1].match.anchored());
  EXPECT_EQ(s.rules[1].spa_fallback, "/index.html");
  EXPECT_EQ(s.rules[2].spa_fallback, "");
  EXPECT_EQ(s.rules[2].redirect->status, 301);
  EXPECT_FALSE(s.rules[2].redirect->keep_query);
  EXPECT_TRUE(s.rules[2].methods.empty());
}

struct HostCase {
  std::string_view host;
  int site;  // Index into the sites below.
};

class SelectSiteTest : public testing::TestWithParam<HostCase> {};

TEST_P(SelectSiteTest, Picks) {
  static const ConfigFile* c = new ConfigFile(Load(R"(
[[site]]
hosts = ["first.test"]
[[site]]
hosts = ["example.com", "*.example.com"]
[[site]]
hosts = ["*.b.example.com", "[::1]"]
default = true
[[site]]
hosts = ["x.b.example.com", "*.com"]
)"));
  const SiteConfig* s = c->SelectSite(GetParam().host);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s - c->sites.data(), GetParam().site) << GetParam().host;
}

INSTANTIATE_TEST_SUITE_P(
    Table, SelectSiteTest,
    testing::Values(HostCase{"first.test", 0}, HostCase{"FIRST.TEST:8080", 0},
                    HostCase{"first.test.", 0}, HostCase{"example.com", 1},
                    HostCase{"a.example.com", 1}, HostCase{"a.b.example.com", 2},
                    HostCase{"z.a.b.example.com", 2}, HostCase{"b.example.com", 1},
                    HostCase{"x.b.example.com", 3}, HostCase{"other.com", 3},
                    HostCase{"[::1]:80", 2}, HostCase{"unknown.test", 2}, HostCase{"", 2},
                    HostCase{"bad host", 2}, HostCase{"a.example.com:99x", 2}));

TEST(ConfigFileTest, CleanUrlsTakesTrueFalseOrRedirect) {
  ConfigFile c = Load(
      "[[site]]\n[[site.rule]]\nmatch = \"/a/**\"\nclean_urls = \"redirect\"\n"
      "[[site.rule]]\nmatch = \"/b/**\"\nclean_urls = false\n");
  EXPECT_EQ(c.sites[0].rules[0].clean_urls, CleanUrls::kRedirect);
  EXPECT_EQ(c.sites[0].rules[1].clean_urls, CleanUrls::kOff);
}

TEST(ConfigFileTest, FirstSiteIsTheDefaultWhenNoneIsMarked) {
  ConfigFile c = Load("[[site]]\n[[site]]\nhosts = [\"a.test\"]\n");
  EXPECT_EQ(c.SelectSite("nowhere.test"), &c.sites[0]);
  EXPECT_EQ(c.SelectSite("a.test"), &c.sites[1]);
}

TEST(ConfigFileTest, ExampleFileLoadsAndNamesEveryFlag) {
  const std::string path = SLUICE_SOURCE_DIR "/docs/sluice.example.toml";
  absl::StatusOr<ConfigFile> c = LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sites.size(), 2u);
  EXPECT_EQ(c->SelectSite("APP.EXAMPLE.ORG")->root, "/srv/app");
  EXPECT_EQ(c->SelectSite("cdn.example.com")->root, "/srv/example");
  const std::string text = ReadFile(path);
  for (const FlagKey& k : ConfigFlagKeys()) {
    EXPECT_NE(text.find(std::string(k.name) + " = "), std::string::npos) << k.name;
  }
  for (std::string_view key :
       {"hosts", "default", "match", "methods", "headers.set", "headers.append", "headers.remove",
        "cors", "redirect", "spa_fallback", "error_pages", "clean_urls", "listing", "max_age",
        "expose_headers", "keep_query"}) {
    EXPECT_NE(text.find(key), std::string::npos) << key;
  }
}

TEST(ConfigFileTest, FileErrors) {
  absl::StatusOr<ConfigFile> missing = LoadConfigFile("/nonexistent/sluice.toml");
  EXPECT_EQ(std::string(missing.status().message()),
            "/nonexistent/sluice.toml: cannot read: No such file or directory");
  EXPECT_EQ(std::string(LoadConfigFile("/tmp").status().message()), "/tmp: not a regular file");
  const std::string big = testing::TempDir() + "/big.toml";
  std::ofstream(big) << "# " << std::string(ConfigLimits::kFileBytesMax, 'x') << "\n";
  EXPECT_EQ(std::string(LoadConfigFile(big).status().message()),
            big + ": larger than 1048576 bytes");
}

struct ErrorCase {
  const char* name;
  std::string text;
  std::string_view message;  // The whole message.
};

class ConfigErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, Refused) {
  absl::StatusOr<ConfigFile> c = ParseConfigText(GetParam().text, "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(c.status().message()), GetParam().message);
}

struct CaseName {
  template <typename T>
  std::string operator()(const testing::TestParamInfo<T>& param_info) const {
    return param_info.param.name;
  }
};

const std::string kRule = "[[site]]\n[[site.rule]]\nmatch = \"/**\"\n";

std::string Many(std::string_view open, std::string_view item, size_t n, std::string_view close) {
  std::string s(open);
  for (size_t i = 0; i < n; ++i) {
    s += std::string(item) + std::to_string(i) + (item.starts_with("\"") ? "\"" : "");
    if (i + 1 < n) s += ", ";
  }
  return s + std::string(close);
}

// "headers.KIND = { X0 = "v", X1 = "v", ... }".
std::string Edits(std::string_view kind, char prefix, size_t n) {
  std::string s = "headers." + std::string(kind) + " = { ";
  for (size_t i = 0; i < n; ++i) {
    s += prefix + std::to_string(i) + " = \"v\"" + (i + 1 < n ? ", " : "");
  }
  return s + " }\n";
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigErrorTest,
    testing::Values(
        ErrorCase{"Syntax", "root = \n",
                  "t.toml:1:8: Error while parsing key-value pair: expected value, saw '\\n'"},
        ErrorCase{"UnknownTopKey", "\nrots = \"x\"",
                  "t.toml:2:1: unknown key \"rots\": top-level keys are the command-line flags "
                  "(sluice --help), sites go in [[site]] tables"},
        ErrorCase{"StringFlagType", "root = 1",
                  "t.toml:1:8: root must be a string, not an integer"},
        ErrorCase{"IntFlagType", "threads = \"4\"",
                  "t.toml:1:11: threads must be an integer, not a string"},
        ErrorCase{"IntFlagRange", "backlog = 4294967296",
                  "t.toml:1:11: backlog is out of range (-2147483648..2147483647)"},
        ErrorCase{"BoolFlagType", "sqpoll = 1",
                  "t.toml:1:10: sqpoll must be true or false, not an integer"},
        ErrorCase{"DurationAsInt", "send_timeout = 30",
                  "t.toml:1:16: send_timeout must be a duration string such as \"10s\", \"250ms\" "
                  "or \"1h30m\""},
        ErrorCase{"DurationBad", "send_timeout = \"30 s\"",
                  "t.toml:1:16: send_timeout must be a duration string such as \"10s\", \"250ms\" "
                  "or \"1h30m\""},
        ErrorCase{"DurationNegative", "send_timeout = \"-1s\"",
                  "t.toml:1:16: send_timeout must be a duration string such as \"10s\", \"250ms\" "
                  "or \"1h30m\""},
        ErrorCase{"FloatFlag", "max_headers = 1.5",
                  "t.toml:1:15: max_headers must be an integer, not a float"},
        ErrorCase{"NulInString", "user = \"a\\u0000b\"", "t.toml:1:8: user must not contain NUL"},
        ErrorCase{"LongString", "user = \"" + std::string(4097, 'u') + "\"",
                  "t.toml:1:8: user is longer than 4096 bytes"},
        ErrorCase{"SiteNotArray", "[site]\n",
                  "t.toml:1:1: site must be an array of tables: write each as [[site]]"},
        ErrorCase{
            "UnknownSiteKey", "[[site]]\nhost = []\n",
            "t.toml:2:1: unknown key \"host\" in [[site]] (allowed: hosts, root, default, rule)"},
        ErrorCase{"HostsType", "[[site]]\nhosts = \"a\"\n",
                  "t.toml:2:9: hosts must be an array of strings, not a string"},
        ErrorCase{"HostBad", "[[site]]\nhosts = [\"a b\"]\n",
                  "t.toml:2:10: host \"a b\" must be a host name (letters, digits, '-', '_', '.'), "
                  "\"*.\" and a name, or an [IPv6] literal; a port is ignored"},
        ErrorCase{
            "HostWildcardInside", "[[site]]\nhosts = [\"a.*.com\"]\n",
            "t.toml:2:10: host \"a.*.com\" must be a host name (letters, digits, '-', '_', '.'), "
            "\"*.\" and a name, or an [IPv6] literal; a port is ignored"},
        ErrorCase{"HostTwice", "[[site]]\nhosts = [\"a.test\", \"A.test:80\"]\n",
                  "t.toml:2:20: host \"A.test:80\" is listed twice"},
        ErrorCase{"HostInTwoSites",
                  "[[site]]\nhosts = [\"a.test\"]\n[[site]]\nhosts = [\"a.test\"]\n",
                  "t.toml:4:10: host \"a.test\" is already served by the site at line 1"},
        ErrorCase{"TooManyHosts", "[[site]]\n" + Many("hosts = [", "\"h", 65, "]"),
                  "t.toml:2:9: hosts lists more than 64 entries"},
        ErrorCase{"RootEmpty", "[[site]]\nroot = \"\"\n", "t.toml:2:8: root must not be empty"},
        ErrorCase{"TwoDefaults",
                  "[[site]]\ndefault = true\n[[site]]\nhosts = [\"b\"]\ndefault = true\n",
                  "t.toml:5:11: default = true is already set by the site at line 2: at most one "
                  "site is the default"},
        ErrorCase{"DefaultType", "[[site]]\ndefault = \"yes\"\n",
                  "t.toml:2:11: default must be true or false, not a string"},
        ErrorCase{
            "UnreachableSite", "[[site]]\n[[site]]\nroot = \"/x\"\n",
            "t.toml:2:1: a site without hosts can only answer unknown hosts: make it the first "
            "site or mark it default = true"},
        ErrorCase{"RuleNotArray", "[[site]]\n[site.rule]\n",
                  "t.toml:2:1: rule must be an array of tables: write each as [[site.rule]]"},
        ErrorCase{"RuleNoMatch", "[[site]]\n[[site.rule]]\nlisting = true\n",
                  "t.toml:2:1: a rule needs match = \"GLOB\" (as \"/assets/**\" or \"*.html\")"},
        ErrorCase{
            "RuleBadGlob", "[[site]]\n[[site.rule]]\nmatch = \"/a**\"\n",
            "t.toml:3:9: path pattern \"/a**\": '**' must be a whole segment (as in /assets/** "
            "or /**/x.js); use '*' within a segment"},
        ErrorCase{
            "RuleDoesNothing", kRule,
            "t.toml:2:1: a rule does nothing without at least one of headers, cors, redirect, "
            "spa_fallback, error_pages, clean_urls, listing"},
        ErrorCase{"UnknownRuleKey", kRule + "header = {}\n",
                  "t.toml:4:1: unknown key \"header\" in [[site.rule]] (allowed: match, methods, "
                  "headers, cors, redirect, spa_fallback, error_pages, clean_urls, listing)"},
        ErrorCase{"MethodNotToken", kRule + "methods = [\"G T\"]\nlisting = true\n",
                  "t.toml:4:11: methods: \"G T\" is not a method name (an HTTP token, as \"GET\")"},
        ErrorCase{"MethodsEmpty", kRule + "methods = []\nlisting = true\n",
                  "t.toml:4:11: methods must list at least one method, or be left out for any"},
        ErrorCase{"HeadersType", kRule + "headers = 1\n",
                  "t.toml:4:11: headers must be a table, not an integer"},
        ErrorCase{"HeadersUnknown", kRule + "headers.add = {}\n",
                  "t.toml:4:9: unknown key \"add\" in headers (allowed: set, append, remove)"},
        ErrorCase{"HeaderNameBad", kRule + "headers.set = { \"X Y\" = \"1\" }\n",
                  "t.toml:4:17: header name \"X Y\" is not an HTTP token (RFC 9110 §5.6.2) of at "
                  "most 128 bytes"},
        ErrorCase{"HeaderOwned", kRule + "headers.set = { \"Content-Length\" = \"1\" }\n",
                  "t.toml:4:17: header \"Content-Length\" is set by the server from the file and "
                  "connection; a rule cannot change it"},
        ErrorCase{"HeaderValueCrLf", kRule + "headers.set = { \"X\" = \"a\\r\\nSet-Cookie: x\" }\n",
                  "t.toml:4:23: header X: the value must not contain CR, LF, NUL or other control "
                  "characters, nor start or end with a space or tab"},
        ErrorCase{"HeaderValueType", kRule + "headers.append = { \"X\" = 1 }\n",
                  "t.toml:4:26: header X must be a string, not an integer"},
        ErrorCase{"HeaderValueLong",
                  kRule + "headers.set = { X = \"" + std::string(4097, 'v') + "\" }\n",
                  "t.toml:4:21: header X is longer than 4096 bytes"},
        ErrorCase{"HeaderTwice", kRule + "headers.set = { X = \"1\", x = \"2\" }\n",
                  "t.toml:4:26: headers.set names \"x\" twice (field names are case-insensitive)"},
        ErrorCase{"RemoveTwice", kRule + "headers.remove = [\"A\", \"a\"]\n",
                  "t.toml:4:18: headers.remove lists \"a\" twice"},
        ErrorCase{"TooManyHeaderEdits", kRule + Edits("set", 'X', 40) + Edits("append", 'Y', 30),
                  "t.toml:4:1: more than 64 header edits in one rule"},
        ErrorCase{"CorsNoOrigins", kRule + "cors = { methods = [\"GET\"] }\n",
                  "t.toml:4:8: cors needs origins = [\"https://...\"] (or [\"*\"])"},
        ErrorCase{
            "CorsUnknown", kRule + "cors = { origin = [\"*\"] }\n",
            "t.toml:4:10: unknown key \"origin\" in cors (allowed: origins, methods, headers, "
            "expose_headers, max_age)"},
        ErrorCase{
            "CorsPolicyError", kRule + "cors = { origins = [\"null\"] }\n",
            "t.toml:4:8: cors: origin \"null\" is refused: sandboxed documents and file: pages "
            "all send it, so allowing it allows anyone; use \"*\" if that is meant"},
        ErrorCase{"CorsMaxAge", kRule + "cors = { origins = [\"*\"], max_age = \"1.5s\" }\n",
                  "t.toml:4:37: cors.max_age must be a duration in whole seconds, as \"10m\""},
        ErrorCase{"RedirectNoTo", kRule + "redirect = { status = 301 }\n",
                  "t.toml:4:12: redirect needs to = \"/new/path\" or a URL"},
        ErrorCase{
            "RedirectBadTo", kRule + "redirect = { to = \"//evil.test\" }\n",
            "t.toml:4:19: redirect.to must be a path starting with one '/' or an http(s):// URL, "
            "without spaces or control characters (percent-encode them)"},
        ErrorCase{"RedirectStatus", kRule + "redirect = { to = \"/x\", status = 303 }\n",
                  "t.toml:4:34: redirect.status must be 301, 302, 307 or 308"},
        ErrorCase{"RedirectKeepQuery", kRule + "redirect = { to = \"/x\", keep_query = 1 }\n",
                  "t.toml:4:38: redirect.keep_query must be true or false, not an integer"},
        ErrorCase{
            "RedirectUnknown", kRule + "redirect = { to = \"/x\", code = 301 }\n",
            "t.toml:4:25: unknown key \"code\" in redirect (allowed: to, status, keep_query)"},
        ErrorCase{"SpaType", kRule + "spa_fallback = 1\n",
                  "t.toml:4:16: spa_fallback must be true, false or a file such as \"/app.html\""},
        ErrorCase{
            "SpaPath", kRule + "spa_fallback = \"../x\"\n",
            "t.toml:4:16: spa_fallback must name a file below the site's root, starting with '/' "
            "(as \"/404.html\"), without '..', '?' or '#'"},
        ErrorCase{"ErrorPageStatus", kRule + "error_pages = { 200 = \"/x.html\" }\n",
                  "t.toml:4:17: error_pages key \"200\" must be an error status from 400 to 599"},
        ErrorCase{
            "ErrorPagePath", kRule + "error_pages = { 404 = \"/a/../b\" }\n",
            "t.toml:4:23: error_pages.404 must name a file below the site's root, starting with "
            "'/' (as \"/404.html\"), without '..', '?' or '#'"},
        ErrorCase{"CleanUrlsType", kRule + "clean_urls = \"yes\"\n",
                  "t.toml:4:14: clean_urls must be true, false or \"redirect\""},
        ErrorCase{"ListingType", kRule + "listing = 0\n",
                  "t.toml:4:11: listing must be true or false, not an integer"}),
    CaseName());

TEST(ConfigFileTest, TooManySitesAndRules) {
  std::string sites;
  for (size_t i = 0; i <= ConfigLimits::kSitesMax; ++i) {
    sites += "[[site]]\nhosts = [\"h" + std::to_string(i) + "\"]\n";
  }
  EXPECT_EQ(std::string(ParseConfigText(sites, "t.toml").status().message()),
            "t.toml:1:1: more than 256 sites");
  std::string rules = "[[site]]\n";
  for (size_t i = 0; i <= ConfigLimits::kRulesPerSiteMax; ++i) {
    rules += "[[site.rule]]\nmatch = \"/**\"\nlisting = true\n";
  }
  EXPECT_EQ(std::string(ParseConfigText(rules, "t.toml").status().message()),
            "t.toml:2:1: more than 256 rules in a site");
}

}  // namespace
}  // namespace sluice
