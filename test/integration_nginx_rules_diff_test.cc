// Differential test of the configuration file's rules (issue 12) against
// Debian's nginx (nginx-light): one temporary root, a sluice --config TOML
// and an nginx server block that say the same thing in each one's terms,
// and the same raw requests to both.
//
//   sluice rule                          nginx
//   headers.set on "/**", "/assets/**"   add_header (repeated in every location
//                                        with its own: nginx does not merge them)
//   error_pages = {404 = "/404.html"}    error_page 404 /404.html, and that page's
//                                        location adds the headers `always`
//   clean_urls = true                    try_files $uri $uri.html $uri/ =404
//   clean_urls = "redirect"              the same plus `return 301` of *.html
//   spa_fallback = "/app/index.html"     try_files $uri /app/index.html
//   redirect = {to = "/new/", ...}       rewrite ... permanent, return 301/302/308
//   headers.remove, headers.append       (nothing for remove), add_header
//   listing = true on "/files/**"        autoindex on, for URIs ending in '/'
//
// Compared on every answer: the status and the rule headers' values (all
// fields of each name, in order), so that a built-in error answer (416, 405,
// 400) must carry none of them on either side: nginx's add_header without
// `always` skips error statuses, and so does sluice for its own errors.
// Also compared: Location's path and query on 3xx, Content-Range on 206 and
// 416, Content-Type (media type and number of fields), Content-Length and
// the bytes on 200, 206 and 404 (the configured error page); for a
// directory listing, instead of the bytes, the entries: the links' targets,
// percent- and HTML-decoded, as a set (nginx lists directories first, sluice
// sorts all names together; each writes its own page). Not compared:
// header order (sluice writes rule fields after its own), Date, ETag and
// Last-Modified (each server's own validators; see {ETAG}), Server, Vary.
// Where sluice answers differently on purpose the probe is listed in
// kIntentionalDifferences with the reason; any other difference, or an
// entry that no longer differs, fails the test.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.h"
#include "support/nginx_process.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

constexpr std::time_t kFixedMtime = 1614834367;  // Thu, 04 Mar 2021 05:06:07 GMT
constexpr Millis kRequestTimeout{3000};
constexpr auto kTestBudget = std::chrono::seconds(50);
constexpr int kNoResponse = -1;

constexpr char kImmutable[] = "public, max-age=31536000, immutable";
constexpr char kHtmlAccept[] = "text/html,application/xhtml+xml,*/*;q=0.8";

// The fields the rules set, append or remove; compared on every status.
constexpr const char* kRuleFields[] = {"X-Content-Type-Options", "X-Frame-Options", "Cache-Control",
                                       "X-Robots-Tag"};

// ------------------------------------------------------- configurations --

std::string SluiceConfig(const std::string& root) {
  return R"([[site]]
root = ")" +
         root + R"("

[[site.rule]]
match = "/**"
headers.set = { "X-Content-Type-Options" = "nosniff", "X-Frame-Options" = "DENY" }
error_pages = { 404 = "/404.html" }

[[site.rule]]
match = "/assets/**"
headers.set = { "Cache-Control" = ")" +
         kImmutable + R"(" }

[[site.rule]]
match = "/pages/**"
clean_urls = true

[[site.rule]]
match = "/canon/**"
clean_urls = "redirect"

[[site.rule]]
match = "/app/**"
spa_fallback = "/app/index.html"

[[site.rule]]
match = "/app/index.html"
headers.set = { "Cache-Control" = "no-cache" }

[[site.rule]]
match = "/old/**"
redirect = { to = "/new/", status = 301 }

[[site.rule]]
match = "/legacy/**"
redirect = { to = "/new/", status = 308, keep_query = true }

[[site.rule]]
match = "/moved"
redirect = { to = "/new/landing.html", status = 302 }

[[site.rule]]
match = "/raw/**"
headers.set = { "Content-Type" = "text/plain; charset=utf-8" }

[[site.rule]]
match = "/private/**"
headers.remove = ["Server"]
headers.append = { "X-Robots-Tag" = "noindex" }

[[site.rule]]
match = "/files/**"
listing = true
)";
}

// nginx inherits add_header from the server level only into locations that
// have none of their own, so a location that adds one repeats the two
// security headers.
std::string NginxServerBody(const std::string& root) {
  const std::string security =
      "      add_header X-Content-Type-Options nosniff;\n"
      "      add_header X-Frame-Options DENY;\n";
  return "    root " + root + ";\n" +
         "    index index.html;\n"
         "    etag on;\n"
         "    add_header X-Content-Type-Options nosniff;\n"
         "    add_header X-Frame-Options DENY;\n"
         "    error_page 404 /404.html;\n"
         "    location = /404.html {\n"
         "      add_header X-Content-Type-Options nosniff always;\n"
         "      add_header X-Frame-Options DENY always;\n"
         "    }\n"
         "    location /assets/ {\n" +
         security + "      add_header Cache-Control \"" + kImmutable + "\";\n" +
         "    }\n"
         "    location /pages/ { try_files $uri $uri.html $uri/ =404; }\n"
         "    location /canon/ {\n"
         "      if ($request_uri ~ \"^(/canon/(?:[^?]*/)?)index\\.html(?:\\?.*)?$\") {\n"
         "        return 301 $1$is_args$args;\n"
         "      }\n"
         "      if ($request_uri ~ \"^(/canon/[^?]*)\\.html(?:\\?.*)?$\") {\n"
         "        return 301 $1$is_args$args;\n"
         "      }\n"
         "      try_files $uri $uri.html $uri/ =404;\n"
         "    }\n"
         "    location /app/ { try_files $uri /app/index.html; }\n"
         "    location = /app/index.html {\n" +
         security +
         "      add_header Cache-Control no-cache;\n"
         "    }\n"
         "    location /old/ { rewrite ^/old/(.*)$ /new/$1? permanent; }\n"
         "    location ~ ^/legacy/(.*)$ { return 308 /new/$1$is_args$args; }\n"
         "    location = /moved { return 302 /new/landing.html; }\n"
         "    location /raw/ {\n" +
         security +
         "      add_header Content-Type \"text/plain; charset=utf-8\";\n"
         "    }\n"
         "    location /private/ {\n" +
         security +
         "      add_header X-Robots-Tag noindex;\n"
         "    }\n"
         // sluice's listings say no-cache (they have no validators); its
         // files under /files/ get nothing of the kind.
         "    location ~ ^/files/(.*/)?$ {\n"
         "      autoindex on;\n" +
         security +
         "      add_header Cache-Control no-cache;\n"
         "    }\n";
}

// --------------------------------------------------------------- corpus --

struct Probe {
  std::string name;
  std::string raw;  // "{ETAG}": the server's own ETag of /assets/app.css.
  std::string method = "GET";
  bool listing = false;  // A directory listing: compare the entries, not the bytes.
};

std::string Hdr(std::string_view name, std::string_view value) {
  return std::string(name) + ": " + std::string(value) + "\r\n";
}

class Corpus {
 public:
  void Get(std::string name, std::string_view target, std::string headers = "") {
    probes_.push_back({std::move(name), MakeRequest("GET", target, headers), "GET"});
  }
  void Head(std::string name, std::string_view target, std::string headers = "") {
    probes_.push_back({std::move(name), MakeRequest("HEAD", target, headers), "HEAD"});
  }
  void Method(std::string name, std::string_view method, std::string_view target) {
    probes_.push_back({std::move(name), MakeRequest(method, target), std::string(method)});
  }
  void Listing(std::string name, std::string_view method, std::string_view target,
               std::string headers = "") {
    probes_.push_back({std::move(name), MakeRequest(method, target, headers), std::string(method),
                       /*listing=*/true});
  }
  std::vector<Probe> Take() { return std::move(probes_); }

 private:
  std::vector<Probe> probes_;
};

// add_header / headers.set, on 200, 206, 304, and not on built-in errors.
void AddHeaderProbes(Corpus* c) {
  const std::string lm = FormatImfFixdate(kFixedMtime);
  c->Get("root", "/");
  c->Head("root_head", "/");
  c->Get("text", "/data.txt");
  c->Get("index", "/index.html");
  c->Get("dir_no_slash", "/new");
  c->Get("asset", "/assets/app.css");
  c->Head("asset_head", "/assets/app.css");
  c->Get("asset_svg", "/assets/logo.svg");
  c->Get("asset_304_etag", "/assets/app.css", Hdr("If-None-Match", "{ETAG}"));
  c->Head("asset_304_etag_head", "/assets/app.css", Hdr("If-None-Match", "{ETAG}"));
  c->Get("asset_304_date", "/assets/app.css", Hdr("If-Modified-Since", lm));
  c->Get("asset_206", "/assets/app.css", Hdr("Range", "bytes=10-19"));
  c->Get("asset_206_suffix", "/assets/app.css", Hdr("Range", "bytes=-5"));
  c->Get("asset_206_multi", "/assets/app.css", Hdr("Range", "bytes=0-1,5-6"));
  c->Get("asset_416", "/assets/app.css", Hdr("Range", "bytes=5000-"));
  c->Get("asset_412", "/assets/app.css", Hdr("If-Match", "\"nope\""));
  c->Method("asset_post", "POST", "/assets/app.css");
  c->Method("asset_delete", "DELETE", "/assets/app.css");
  c->Get("asset_missing", "/assets/missing.css");
  c->Get("traversal", "/../etc/passwd");
  c->Get("raw_content_type", "/raw/data.bin");
  c->Get("private_remove_append", "/private/doc.txt");
  c->Get("private_304", "/private/doc.txt", Hdr("If-Modified-Since", lm));
}

// error_page 404, try_files for clean URLs, the canonical-form redirects.
void AddPageProbes(Corpus* c) {
  const std::string lm = FormatImfFixdate(kFixedMtime);
  c->Get("missing", "/missing");
  c->Head("missing_head", "/missing");
  c->Get("missing_range", "/missing", Hdr("Range", "bytes=0-3"));
  c->Get("missing_dir", "/nope/");
  c->Get("missing_query", "/missing.html?x=1");
  c->Get("error_page_itself", "/404.html");
  c->Get("clean", "/pages/about");
  c->Head("clean_head", "/pages/about");
  c->Get("clean_query", "/pages/about?x=1");
  c->Get("clean_304", "/pages/about", Hdr("If-Modified-Since", lm));
  c->Get("clean_range", "/pages/about", Hdr("Range", "bytes=0-4"));
  c->Get("clean_html", "/pages/about.html");
  c->Get("clean_index", "/pages/");
  c->Get("clean_sub", "/pages/sub/");
  c->Get("clean_sub_no_slash", "/pages/sub");
  c->Get("clean_missing", "/pages/nope");
  c->Get("clean_trailing_slash", "/pages/about/");
  c->Get("clean_dotted", "/pages/v1.2");
  c->Get("canon", "/canon/about");
  c->Get("canon_html", "/canon/about.html");
  c->Head("canon_html_head", "/canon/about.html");
  c->Get("canon_html_query", "/canon/about.html?x=1&y=2");
  c->Get("canon_index_html", "/canon/index.html");
  c->Get("canon_sub_index_html", "/canon/sub/index.html");
  c->Get("canon_dir", "/canon/");
  c->Get("canon_sub", "/canon/sub/");
}

// try_files $uri /app/index.html, and the redirects.
void AddSpaAndRedirectProbes(Corpus* c) {
  const std::string html = Hdr("Accept", kHtmlAccept);
  c->Get("spa_route", "/app/settings", html);
  c->Get("spa_deep_route", "/app/users/42/edit", html);
  c->Head("spa_route_head", "/app/settings", html);
  c->Get("spa_route_plain_accept", "/app/settings", Hdr("Accept", "text/html"));
  c->Get("spa_route_no_accept", "/app/settings");
  c->Get("spa_route_json", "/app/settings", Hdr("Accept", "application/json"));
  c->Get("spa_missing_script", "/app/missing.js", Hdr("Accept", "*/*"));
  c->Get("spa_missing_script_html", "/app/missing.js", html);
  c->Get("spa_script", "/app/real.js", Hdr("Accept", "*/*"));
  c->Get("spa_shell", "/app/index.html", html);
  c->Get("spa_dir", "/app/", html);
  c->Method("spa_post", "POST", "/app/settings");
  c->Get("old", "/old/a/b.html");
  c->Head("old_head", "/old/a/b.html");
  c->Get("old_query_dropped", "/old/a/b.html?x=1");
  c->Get("old_escaped", "/old/a%20b.txt");
  c->Get("old_itself", "/old");
  c->Method("old_post", "POST", "/old/a/b.html");
  c->Get("legacy_308", "/legacy/c");
  c->Get("legacy_query_kept", "/legacy/a/b.html?x=1&y=2");
  c->Get("moved_302", "/moved");
  c->Get("moved_query_dropped", "/moved?x=1");
  c->Get("moved_target", "/new/landing.html");
}

// autoindex on / listing = true.
void AddListingProbes(Corpus* c) {
  c->Listing("listing", "GET", "/files/");
  c->Listing("listing_head", "HEAD", "/files/");
  c->Listing("listing_sub", "GET", "/files/sub/");
  c->Listing("listing_query", "GET", "/files/?x=1");
  c->Listing("listing_json", "GET", "/files/", Hdr("Accept", "application/json"));
  c->Listing("listing_symlinks", "GET", "/files/links/");
  c->Get("listing_no_slash", "/files/sub");
  c->Get("listing_file", "/files/a%20b.txt");
  c->Get("listing_dotfile", "/files/.secret");
  c->Get("listing_missing_dir", "/files/nope/");
  c->Get("listing_off", "/nolist/");
}

std::vector<Probe> MakeCorpus() {
  Corpus c;
  AddHeaderProbes(&c);
  AddPageProbes(&c);
  AddSpaAndRedirectProbes(&c);
  AddListingProbes(&c);
  return c.Take();
}

// ----------------------------------------------- intentional differences --

struct Difference {
  const char* probe;
  int sluice;
  int nginx;
  const char* why;
};

const Difference kIntentionalDifferences[] = {
    // Headers.
    {"raw_content_type", 200, 200,
     "headers.set replaces the server's Content-Type; nginx's add_header adds a second one"},
    {"private_remove_append", 200, 200,
     "headers.remove drops Server; nginx-light cannot remove its Server field"},
    {"private_304", 304, 304,
     "headers.remove drops Server; nginx-light cannot remove its Server field"},
    {"asset_416", 416, 416,
     "no rule headers on sluice's own error answers; nginx's range filter turns the 200 into "
     "416 after add_header ran, so its 416 carries them (immutable included)"},
    {"spa_script", 200, 200, "text/javascript (RFC 9239 §6) vs Debian's application/javascript"},
    // Clean URLs.
    {"clean_dotted", 404, 200,
     "clean URLs try NAME.html only for a last segment without '.' (an asset name is never "
     "retried as a page); try_files $uri.html has no such rule"},
    // SPA fallback: navigations only.
    {"spa_route_no_accept", 404, 200,
     "the SPA fallback answers navigations only (Accept with text/html): a missing script "
     "must never receive HTML; try_files has no Accept check"},
    {"spa_route_json", 404, 200,
     "the SPA fallback answers navigations only (Accept with text/html); try_files has no "
     "Accept check"},
    {"spa_missing_script", 404, 200,
     "a missing script must never receive HTML (the SPA fallback needs Accept text/html and "
     "a last segment without '.'); try_files $uri /index.html answers every miss"},
    {"spa_missing_script_html", 404, 200,
     "a path with a file extension is an asset, never a route: 404, not the shell; try_files "
     "answers every miss"},
    {"spa_dir", 200, 200,
     "rules match the request path (/app/), nginx's locations the URI after the index's "
     "internal redirect (/app/index.html, whose location says no-cache)"},
    // Directory listings.
    {"listing_json", 200, 200,
     "sluice answers Accept: application/json with a JSON listing; nginx's autoindex_format "
     "is fixed per location"},
    {"listing_off", 404, 403,
     "a directory without index.html and without listing is not found (RFC 9110 §15.5.5 "
     "may hide it), so the 404 page; nginx: 403"},
    {"listing_dotfile", 404, 200, "dotfiles never served (RFC 9110 §17.3, §15.5.5)"},
    {"listing_symlinks", 200, 200,
     "a symlink out of the root is not listed (it is never served either, RFC 9110 §17.3); "
     "nginx lists it"},
    // Redirects.
    {"old_post", 405, 301,
     "redirect rules answer GET and HEAD; other methods get what the path gives (405 for a "
     "static file); nginx's rewrite redirects every method"},
};

// ------------------------------------------------------------ comparing --

struct Outcome {
  int status = kNoResponse;
  std::optional<HttpResponse> response;
  std::string error;
};

// Every value of the field `name`, in order, joined with " | "; "(none)".
std::string AllValues(const HttpResponse& r, std::string_view name) {
  std::string out;
  for (const auto& [n, v] : r.headers) {
    if (Lower(n) != Lower(name)) continue;
    if (!out.empty()) out += " | ";
    out += v;
  }
  return out.empty() ? "(none)" : out;
}

// Location without scheme and authority, query kept.
std::string LocationTarget(const HttpResponse& r) {
  const std::optional<std::string> location = r.Header("Location");
  if (!location) return "(none)";
  const std::string path = LocationPath(*location);
  const size_t query = location->find('?');
  return query == std::string::npos ? path : path + location->substr(query);
}

void CompareField(std::vector<std::string>* diffs, const char* name, const std::string& a,
                  const std::string& b) {
  if (a != b) diffs->push_back(std::string(name) + " '" + a + "' vs '" + b + "'");
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The entries of an HTML listing: every link's target but "../", decoded,
// sorted, joined with " | ".
std::string ListedNames(const std::string& html) {
  std::vector<std::string> names;
  for (size_t at = html.find("href=\""); at != std::string::npos;
       at = html.find("href=\"", at + 1)) {
    const size_t start = at + 6;
    const size_t end = html.find('"', start);
    if (end == std::string::npos) break;
    std::string name = html.substr(start, end - start);
    for (const auto& [from, to] : {std::pair{"&amp;", "&"},
                                   {"&lt;", "<"},
                                   {"&gt;", ">"},
                                   {"&quot;", "\""},
                                   {"&#39;", "'"}}) {
      ReplaceAll(&name, from, to);
    }
    name = PercentDecode(name);
    if (name != "../") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : " | ") + n;
  return out;
}

std::vector<std::string> Compare(const Probe& p, const Outcome& s, const Outcome& n) {
  std::vector<std::string> diffs;
  if (s.status != n.status) {
    diffs.push_back("status " + std::to_string(s.status) + " vs " + std::to_string(n.status));
    return diffs;
  }
  if (s.status == kNoResponse) return diffs;
  const HttpResponse& a = *s.response;
  const HttpResponse& b = *n.response;
  for (const char* name : kRuleFields) {
    CompareField(&diffs, name, AllValues(a, name), AllValues(b, name));
  }
  CompareField(&diffs, "Server present", a.HasHeader("Server") ? "yes" : "no",
               b.HasHeader("Server") ? "yes" : "no");
  const int status = s.status;
  if (status >= 300 && status < 400 && status != 304) {
    CompareField(&diffs, "Location", LocationTarget(a), LocationTarget(b));
  }
  if (status == 206 || status == 416) {
    CompareField(&diffs, "Content-Range", AllValues(a, "Content-Range"),
                 AllValues(b, "Content-Range"));
  }
  if (status != 200 && status != 206 && status != 404) return diffs;
  CompareField(&diffs, "Content-Type", MediaType(a.Header("Content-Type").value_or("")),
               MediaType(b.Header("Content-Type").value_or("")));
  CompareField(&diffs, "Content-Type fields", std::to_string(a.HeaderCount("Content-Type")),
               std::to_string(b.HeaderCount("Content-Type")));
  if (MediaType(a.Header("Content-Type").value_or("")) == "multipart/byteranges") {
    return diffs;  // Boundaries differ; integration_nginx_diff_test compares parts.
  }
  if (p.listing && status == 200) {
    if (MediaType(a.Header("Content-Type").value_or("")) == "text/html") {
      CompareField(&diffs, "entries", ListedNames(a.body), ListedNames(b.body));
    }
    return diffs;
  }
  CompareField(&diffs, "Content-Length", AllValues(a, "Content-Length"),
               AllValues(b, "Content-Length"));
  if (a.body != b.body) {
    diffs.push_back("bodies differ (" + std::to_string(a.body.size()) + " vs " +
                    std::to_string(b.body.size()) + " bytes)");
  }
  return diffs;
}

std::string Summary(const Outcome& o) {
  if (o.status == kNoResponse) return "no response (" + o.error.substr(0, 200) + ")";
  return o.response->Describe().substr(0, 1500);
}

bool WriteText(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

class NginxRulesDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    ASSERT_EQ(stat(kNginx, &st), 0)
        << kNginx << " is missing: install nginx-light (scripts/test does)";
    ASSERT_EQ(stat(kNginxMimeTypes, &st), 0)
        << kNginxMimeTypes << " is missing: install nginx-light (scripts/test does)";
    ASSERT_TRUE(root_.ok() && conf_dir_.ok() && nginx_dir_.ok());
    BuildRoot();
    if (HasFatalFailure()) return;
    const std::string config = conf_dir_.Path("sluice.toml");
    ASSERT_TRUE(WriteText(config, SluiceConfig(root_.path()))) << config;
    // Like with like, as in integration_nginx_diff_test: nginx without a
    // master cannot switch user, so as root sluice stays root too.
    std::vector<std::string> flags = {"--config=" + config, "--threads=1"};
    if (geteuid() == 0) flags.push_back("--user=root");
    SLUICE_START_OR_SKIP(sluice_, flags);
    std::string error;
    ASSERT_TRUE(nginx_.Start(nginx_dir_.path(), NginxServerBody(root_.path()), &error)) << error;
  }

  void TearDown() override {
    nginx_.Stop();
    if (sluice_.running()) {
      EXPECT_TRUE(sluice_.Stop());
      EXPECT_TRUE(sluice_.ExitedWithCode(0)) << "sluice " << sluice_.DescribeExit();
    }
  }

  void BuildRoot() {
    const std::pair<const char*, std::string> files[] = {
        {"index.html", "<!doctype html><title>root</title>\n"},
        {"404.html", "<!doctype html><title>not here</title><p>custom 404 page</p>\n"},
        {"data.txt", "plain text\n"},
        {"assets/app.css", "body { margin: 0; }\n" + std::string(200, ' ') + "/* end */\n"},
        {"assets/logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n"},
        {"pages/index.html", "<!doctype html><p>pages index</p>\n"},
        {"pages/about.html", "<!doctype html><p>about</p>\n"},
        {"pages/v1.2.html", "<!doctype html><p>version 1.2</p>\n"},
        {"pages/sub/index.html", "<!doctype html><p>pages sub</p>\n"},
        {"canon/index.html", "<!doctype html><p>canon index</p>\n"},
        {"canon/about.html", "<!doctype html><p>canon about</p>\n"},
        {"canon/sub/index.html", "<!doctype html><p>canon sub</p>\n"},
        {"app/index.html", "<!doctype html><div id=app></div><script src=/app/real.js></script>\n"},
        {"app/real.js", "console.log('app');\n"},
        {"new/landing.html", "<!doctype html><p>landing</p>\n"},
        {"new/index.html", "<!doctype html><p>new</p>\n"},
        {"raw/data.bin", PseudoRandomBytes(64, 1)},
        {"private/doc.txt", "private\n"},
        {"files/a b.txt", "a space\n"},
        {"files/x&y.txt", "an ampersand\n"},
        {"files/\xc3\xbcn\xc3\xaf.txt", "not ASCII\n"},
        {"files/.secret", "hidden\n"},
        {"files/sub/in.txt", "in\n"},
        {"files/sub/deeper/x.txt", "x\n"},
        {"files/q?.txt", "a question mark\n"},
        {"files/100%.txt", "a percent sign\n"},
        {"files/links/inside.txt", "inside\n"},
        {"nolist/x.txt", "x\n"},
    };
    for (const auto& [path, content] : files) ASSERT_TRUE(root_.WriteFile(path, content));
    ASSERT_TRUE(conf_dir_.WriteFile("outside.txt", "outside the root\n"));
    ASSERT_TRUE(root_.Symlink(conf_dir_.Path("outside.txt"), "files/links/out_link"));
    ASSERT_TRUE(root_.Symlink("inside.txt", "files/links/in_link"));
    for (const char* fixed : {"assets/app.css", "pages/about.html", "private/doc.txt"}) {
      ASSERT_TRUE(root_.SetMtime(fixed, kFixedMtime));
    }
  }

  std::string EtagOf(uint16_t port, std::string_view target) {
    std::string error;
    const std::optional<HttpResponse> r =
        FetchOnce("127.0.0.1", port, MakeRequest("GET", target), &error);
    if (!r || !r->HasHeader("ETag")) {
      ADD_FAILURE() << "no ETag for " << target << " on port " << port << ": "
                    << (r ? r->Describe() : error);
      return "";
    }
    return *r->Header("ETag");
  }

  Outcome Run(uint16_t port, const Probe& probe, const std::string& etag) {
    std::string raw = probe.raw;
    ReplaceAll(&raw, "{ETAG}", etag);
    Outcome out;
    HttpConnection c;
    if (!c.Connect("127.0.0.1", port, kRequestTimeout) || !c.Send(raw, kRequestTimeout)) {
      out.error = c.last_error();
      return out;
    }
    out.response = c.ReadResponse(probe.method, kRequestTimeout);
    if (out.response) {
      out.status = out.response->status;
    } else {
      out.error = c.last_error();
    }
    return out;
  }

  TestRoot root_;
  TestRoot conf_dir_{"sluice-conf-"};
  TestRoot nginx_dir_{"sluice-nginx-"};
  ServerProcess sluice_;
  NginxProcess nginx_;
};

TEST_F(NginxRulesDiffTest, SameAnswersAsNginxExceptWhereTabled) {
  const auto start = Clock::now();
  const std::vector<Probe> corpus = MakeCorpus();
  std::map<std::string, const Difference*> table;
  for (const Difference& d : kIntentionalDifferences) {
    EXPECT_TRUE(table.emplace(d.probe, &d).second) << "duplicate table entry " << d.probe;
  }
  std::set<std::string> names;
  for (const Probe& p : corpus) {
    EXPECT_TRUE(names.insert(p.name).second) << "duplicate probe name " << p.name;
  }
  for (const auto& [name, d] : table) {
    EXPECT_TRUE(names.count(name)) << "table entry for unknown probe " << name;
  }
  const std::string s_etag = EtagOf(sluice_.port(), "/assets/app.css");
  const std::string n_etag = EtagOf(nginx_.port(), "/assets/app.css");
  ASSERT_FALSE(HasFailure());

  int differing = 0;
  for (const Probe& p : corpus) {
    ASSERT_LT(Clock::now() - start, kTestBudget) << "out of time at probe " << p.name;
    const Outcome s = Run(sluice_.port(), p, s_etag);
    const Outcome n = Run(nginx_.port(), p, n_etag);
    const std::vector<std::string> diffs = Compare(p, s, n);
    std::string text;
    for (const std::string& d : diffs) text += "\n  - " + d;
    const auto it = table.find(p.name);
    if (it == table.end()) {
      if (!diffs.empty()) {
        ++differing;
        ADD_FAILURE() << "probe " << p.name << " differs:" << text
                      << "\nrequest: " << EscapeBytes(p.raw, 300) << "\nsluice: " << Summary(s)
                      << "\nnginx: " << Summary(n);
      }
      continue;
    }
    const Difference& d = *it->second;
    EXPECT_FALSE(diffs.empty()) << "stale table entry " << p.name
                                << ": sluice and nginx now agree (" << s.status << ")";
    EXPECT_EQ(s.status, d.sluice) << "probe " << p.name << " (sluice): " << Summary(s) << text;
    EXPECT_EQ(n.status, d.nginx) << "probe " << p.name << " (nginx): " << Summary(n) << text;
  }
  EXPECT_EQ(differing, 0);
  std::printf(
      "%zu probes, %zu intentional differences, %d untabled differences, %lld ms\n", corpus.size(),
      table.size(), differing,
      static_cast<long long>(std::chrono::duration_cast<Millis>(Clock::now() - start).count()));
}

}  // namespace
}  // namespace sluice::test
