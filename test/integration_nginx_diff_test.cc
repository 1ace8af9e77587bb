// Differential test: the same raw requests go to sluice and to Debian's
// nginx (package nginx-light), both serving one temporary root on loopback.
// Status codes must agree, and where both answer 2xx/3xx/304/416, so must
// the headers that describe what was sent (Content-Length, Content-Range,
// Content-Type without parameters, Location's path) and the bytes. Every
// place where sluice answers differently on purpose is listed in
// kIntentionalDifferences with the RFC section behind sluice's answer; any
// other difference, or an entry that no longer differs, fails the test.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
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

// Status recorded when no parsable response arrived (timeout, bare close,
// an HTTP/0.9 answer without a status line).
constexpr int kNoResponse = -1;

// --------------------------------------------------------------- corpus --

struct Probe {
  std::string name;
  std::string raw;  // "{ETAG}" / "{GZETAG}": the server's own ETag (see RunProbe).
  std::string method = "GET";
};

std::string Hdr(std::string_view name, std::string_view value) {
  return std::string(name) + ": " + std::string(value) + "\r\n";
}

std::vector<Probe> Corpus() {
  std::vector<Probe> p;
  auto get = [&p](std::string name, std::string_view target, std::string headers = "") {
    p.push_back({std::move(name), MakeRequest("GET", target, headers), "GET"});
  };
  auto head = [&p](std::string name, std::string_view target, std::string headers = "") {
    p.push_back({std::move(name), MakeRequest("HEAD", target, headers), "HEAD"});
  };
  auto raw = [&p](std::string name, std::string text, std::string method = "GET") {
    p.push_back({std::move(name), std::move(text), std::move(method)});
  };
  auto range = [&get](std::string name, std::string value, std::string_view target = "/data.txt") {
    get("range_" + name, target, Hdr("Range", value));
  };

  // Files, GET and HEAD.
  const std::pair<const char*, const char*> files[] = {
      {"root", "/"},
      {"index", "/index.html"},
      {"text", "/data.txt"},
      {"css", "/style.css"},
      {"js", "/app.js"},
      {"json", "/data.json"},
      {"svg", "/logo.svg"},
      {"png", "/image.png"},
      {"jpg_upper_ext", "/photo.JPG"},
      {"unknown_ext", "/file.unknownext"},
      {"no_ext", "/README"},
      {"markdown", "/notes.md"},
      {"gz_file", "/archive.gz"},
      {"empty", "/empty.txt"},
      {"space_escaped", "/a%20b.txt"},
      {"big", "/big.bin"},
      {"sub_slash", "/sub/"},
      {"sub_page", "/sub/page.html"},
      {"sub_index", "/sub/index.html"},
      {"fixed", "/fixed.txt"},
      {"inner_symlink", "/inner_link.txt"},
      {"unreadable", "/unreadable.txt"},
  };
  for (const auto& [name, target] : files) {
    get(std::string("get_") + name, target);
    head(std::string("head_") + name, target);
  }

  // Directories, missing files, odd paths, traversal.
  const std::pair<const char*, const char*> paths[] = {
      {"missing", "/missing"},
      {"missing_dir", "/missing/"},
      {"file_as_dir", "/data.txt/"},
      {"dir_no_slash", "/sub"},
      {"dir_no_slash_query", "/sub?x=1"},
      {"noindex_no_slash", "/noindex"},
      {"noindex", "/noindex/"},
      {"noindex_file", "/noindex/other.txt"},
      {"sub_missing", "/sub/missing.html"},
      {"upper_case_name", "/DATA.TXT"},
      {"dotfile", "/.hidden"},
      {"dot_dir", "/.git/config"},
      {"sub_dotfile", "/sub/.env"},
      {"symlink_out_file", "/escape_link"},
      {"symlink_out_dir", "/escape_dir/secret.txt"},
      {"fifo", "/fifo"},
      {"dot_dot_inside", "/sub/../data.txt"},
      {"dot_inside", "/./data.txt"},
      {"dot_dot_after_file", "/sub/page.html/.."},
      {"double_slash", "//data.txt"},
      {"double_slash_sub", "/sub//page.html"},
      {"dot_dot_above", "/../data.txt"},
      {"dot_dot_far_above", "/../../../../etc/passwd"},
      {"dot_dot_encoded", "/%2e%2e/data.txt"},
      {"dot_dot_encoded_inside", "/sub/%2e%2e/data.txt"},
      {"dot_dot_encoded_above", "/sub/%2E%2E/%2e%2e/etc/passwd"},
      {"encoded_slash", "/sub%2Fpage.html"},
      {"encoded_dot", "/data%2etxt"},
      {"encoded_letter", "/%64ata.txt"},
      {"encoded_nul", "/data.txt%00"},
      {"encoded_nul_middle", "/data%00.txt"},
      {"bad_escape", "/%zz"},
      {"truncated_escape", "/data.txt%2"},
      {"query", "/data.txt?x=1&y=2"},
      {"empty_query", "/data.txt?"},
      {"fragment", "/data.txt#frag"},
      {"double_encoded", "/%252e%252e/data.txt"},
      {"backslash", "/sub\\page.html"},
  };
  for (const auto& [name, target] : paths) get(std::string("path_") + name, target);
  head("path_head_missing", "/missing");
  head("path_head_dir_no_slash", "/sub");
  raw("target_no_slash", "GET data.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("target_absolute_form",
      "GET http://example.com/data.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("target_asterisk_get", "GET * HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("target_long_9000", MakeRequest("GET", "/" + std::string(9000, 'a')));
  raw("target_long_4000_missing", MakeRequest("GET", "/" + std::string(4000, 'a')));

  // Ranges (RFC 9110 §14).
  range("first", "bytes=0-8");
  range("open", "bytes=990-");
  range("suffix", "bytes=-10");
  range("end_clamped", "bytes=500-5000");
  range("one_byte", "bytes=0-0");
  range("last_byte", "bytes=999-999");
  range("whole_open", "bytes=0-");
  range("whole_closed", "bytes=0-999");
  range("suffix_whole", "bytes=-1000");
  range("suffix_longer", "bytes=-5000");
  range("unsat_at_size", "bytes=1000-");
  range("unsat_suffix_zero", "bytes=-0");
  range("unsat_past", "bytes=5000-6000");
  range("unsat_two", "bytes=1000-,2000-");
  range("one_sat_one_not", "bytes=0-1,1000-");
  range("syntax_letters", "bytes=a-b");
  range("syntax_reversed", "bytes=5-1");
  range("syntax_empty_set", "bytes=");
  range("syntax_space_unit", "bytes 0-1");
  range("other_unit", "items=0-1");
  range("syntax_double_dash", "bytes=--1");
  range("syntax_two_dashes", "bytes=1-2-3");
  range("syntax_no_dash", "bytes=5");
  range("upper_unit", "BYTES=0-8");
  range("ows_commas", "bytes=0-1 , 5-6");
  range("empty_elements", "bytes=,0-1,,5-6,");
  range("huge_first", "bytes=99999999999999999999-");
  range("huge_last", "bytes=0-99999999999999999999");
  range("huge_suffix", "bytes=-99999999999999999999");
  range("two_disjoint", "bytes=0-1,5-6");
  range("two_reverse", "bytes=500-599,0-9");
  range("three_mixed", "bytes=-10,0-9,100-199");
  range("overlap", "bytes=0-10,5-20");
  range("adjacent", "bytes=0-9,10-19");
  range("halves", "bytes=0-499,500-999");
  range("whole_twice", "bytes=0-,0-");
  {
    auto disjoint = [](int count) {
      std::string value = "bytes=";
      for (int i = 0; i < count; ++i) {
        value += (i ? "," : "") + std::to_string(10 * i) + "-" + std::to_string(10 * i + 1);
      }
      return value;
    };
    std::string many = "bytes=";
    for (int i = 0; i < 500; ++i) many += i ? ",0-" : "0-";
    range("sixteen", disjoint(16));
    range("seventeen", disjoint(17));
    range("five_hundred_whole", many);
  }
  range("empty_file", "bytes=0-", "/empty.txt");
  range("empty_file_suffix", "bytes=-1", "/empty.txt");
  range("big_middle", "bytes=300000-399999", "/big.bin");
  range("big_two", "bytes=1000-1999,400000-400099", "/big.bin");
  range("big_suffix", "bytes=-70000", "/big.bin");
  head("range_head_single", "/data.txt", Hdr("Range", "bytes=10-19"));
  head("range_head_multi", "/data.txt", Hdr("Range", "bytes=0-1,5-6"));
  head("range_head_unsat", "/data.txt", Hdr("Range", "bytes=2000-"));

  // If-Range (RFC 9110 §13.1.5).
  const std::string lm = FormatImfFixdate(kFixedMtime);
  const std::string older = FormatImfFixdate(kFixedMtime - 1);
  const std::string newer = FormatImfFixdate(kFixedMtime + 86400);
  const std::string r100 = Hdr("Range", "bytes=100-199");
  get("if_range_etag", "/fixed.txt", r100 + Hdr("If-Range", "{ETAG}"));
  get("if_range_old_etag", "/fixed.txt", r100 + Hdr("If-Range", "\"0-0\""));
  get("if_range_weak_etag", "/fixed.txt", r100 + Hdr("If-Range", "W/{ETAG}"));
  get("if_range_date", "/fixed.txt", r100 + Hdr("If-Range", lm));
  get("if_range_older_date", "/fixed.txt", r100 + Hdr("If-Range", older));
  get("if_range_garbage", "/fixed.txt", r100 + Hdr("If-Range", "garbage"));

  // Conditionals (RFC 9110 §13), on fixed.txt whose ETag is {ETAG}.
  get("inm_etag", "/fixed.txt", Hdr("If-None-Match", "{ETAG}"));
  head("inm_etag_head", "/fixed.txt", Hdr("If-None-Match", "{ETAG}"));
  get("inm_star", "/fixed.txt", Hdr("If-None-Match", "*"));
  get("inm_weak", "/fixed.txt", Hdr("If-None-Match", "W/{ETAG}"));
  get("inm_list", "/fixed.txt", Hdr("If-None-Match", "\"x\", {ETAG}"));
  get("inm_other", "/fixed.txt", Hdr("If-None-Match", "\"x\""));
  get("inm_with_range", "/fixed.txt", Hdr("If-None-Match", "{ETAG}") + r100);
  get("ims_equal", "/fixed.txt", Hdr("If-Modified-Since", lm));
  head("ims_equal_head", "/fixed.txt", Hdr("If-Modified-Since", lm));
  get("ims_newer", "/fixed.txt", Hdr("If-Modified-Since", newer));
  get("ims_older", "/fixed.txt", Hdr("If-Modified-Since", older));
  get("ims_garbage", "/fixed.txt", Hdr("If-Modified-Since", "garbage"));
  get("ims_rfc850", "/fixed.txt", Hdr("If-Modified-Since", "Thursday, 04-Mar-21 05:06:07 GMT"));
  get("ims_asctime", "/fixed.txt", Hdr("If-Modified-Since", "Thu Mar  4 05:06:07 2021"));
  get("if_match_etag", "/fixed.txt", Hdr("If-Match", "{ETAG}"));
  get("if_match_other", "/fixed.txt", Hdr("If-Match", "\"x\""));
  get("if_match_star", "/fixed.txt", Hdr("If-Match", "*"));
  get("if_match_weak", "/fixed.txt", Hdr("If-Match", "W/{ETAG}"));
  get("ius_older", "/fixed.txt", Hdr("If-Unmodified-Since", older));
  get("ius_equal", "/fixed.txt", Hdr("If-Unmodified-Since", lm));
  get("ius_garbage", "/fixed.txt", Hdr("If-Unmodified-Since", "garbage"));
  get("if_match_and_old_ius", "/fixed.txt",
      Hdr("If-Match", "{ETAG}") + Hdr("If-Unmodified-Since", older));
  get("inm_match_ims_older", "/fixed.txt",
      Hdr("If-None-Match", "{ETAG}") + Hdr("If-Modified-Since", older));
  get("inm_other_ims_equal", "/fixed.txt",
      Hdr("If-None-Match", "\"x\"") + Hdr("If-Modified-Since", lm));
  get("dup_range", "/data.txt", Hdr("Range", "bytes=0-1") + Hdr("Range", "bytes=2-3"));
  get("dup_inm", "/fixed.txt", Hdr("If-None-Match", "{ETAG}") + Hdr("If-None-Match", "\"x\""));

  // Methods (RFC 9110 §9).
  for (const char* m : {"POST", "PUT", "DELETE", "PATCH", "TRACE", "BREW", "get", "PROPFIND"}) {
    raw(std::string("method_") + m, MakeRequest(m, "/data.txt"));
  }
  raw("method_POST_body", MakeRequest("POST", "/data.txt", Hdr("Content-Length", "5")) + "hello");
  raw("method_CONNECT", "CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n");
  raw("method_OPTIONS_path", MakeRequest("OPTIONS", "/data.txt"), "OPTIONS");
  raw("method_OPTIONS_star", MakeRequest("OPTIONS", "*"), "OPTIONS");

  // Framing (RFC 9112 §6) and field syntax (RFC 9112 §5).
  const std::string chunked_body = "5\r\nhello\r\n0\r\n\r\n";
  get("te_chunked_body", "/data.txt", Hdr("Transfer-Encoding", "chunked"));
  p.back().raw += chunked_body;
  get("te_and_cl", "/data.txt",
      Hdr("Transfer-Encoding", "chunked") +
          Hdr("Content-Length", std::to_string(chunked_body.size())));
  p.back().raw += chunked_body;
  raw("te_http10", "GET /data.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_body);
  get("te_gzip", "/data.txt", Hdr("Transfer-Encoding", "gzip"));
  get("cl_duplicate", "/data.txt", Hdr("Content-Length", "5") + Hdr("Content-Length", "5"));
  p.back().raw += "hello";
  get("cl_list", "/data.txt", Hdr("Content-Length", "5, 5"));
  p.back().raw += "hello";
  get("cl_negative", "/data.txt", Hdr("Content-Length", "-1"));
  get("cl_body_on_get", "/data.txt", Hdr("Content-Length", "5"));
  p.back().raw += "hello";
  get("cl_zero", "/data.txt", Hdr("Content-Length", "0"));
  get("expect_100_continue", "/data.txt", Hdr("Expect", "100-continue"));
  get("expect_other", "/data.txt", Hdr("Expect", "something"));
  raw("obs_fold", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n");
  raw("space_before_colon", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-A : 1\r\n\r\n");
  raw("bare_cr_value", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n");
  raw("bare_cr_request_line", "GET /data.txt\r HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("ctl_in_value", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01z\r\n\r\n");
  {
    static constexpr char kNul[] = "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-A: a\0z\r\n\r\n";
    raw("nul_in_value", std::string(kNul, sizeof(kNul) - 1));
  }
  raw("no_colon", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n");
  raw("bad_name_char", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX[A]: 1\r\n\r\n");
  raw("empty_name", "GET /data.txt HTTP/1.1\r\nHost: localhost\r\n: value\r\n\r\n");
  raw("missing_host", "GET /data.txt HTTP/1.1\r\n\r\n");
  raw("double_host", "GET /data.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  raw("host_with_port", "GET /data.txt HTTP/1.1\r\nHost: localhost:8080\r\n\r\n");
  raw("bare_lf", "GET /data.txt HTTP/1.1\nHost: localhost\n\n");
  raw("leading_crlf", "\r\nGET /data.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("two_spaces_request_line", "GET  /data.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("tab_request_line", "GET\t/data.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
  raw("trailing_space_version", "GET /data.txt HTTP/1.1 \r\nHost: localhost\r\n\r\n");
  raw("lowercase_version", "GET /data.txt http/1.1\r\nHost: localhost\r\n\r\n");
  raw("version_1_0", "GET /data.txt HTTP/1.0\r\n\r\n");
  raw("version_1_0_keep_alive", "GET /data.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  raw("version_1_2", "GET /data.txt HTTP/1.2\r\nHost: localhost\r\n\r\n");
  raw("version_2_0", "GET /data.txt HTTP/2.0\r\nHost: localhost\r\n\r\n");
  raw("version_3_0", "GET /data.txt HTTP/3.0\r\nHost: localhost\r\n\r\n");
  raw("version_1_10", "GET /data.txt HTTP/1.10\r\nHost: localhost\r\n\r\n");
  raw("version_short", "GET /data.txt HTTP/1\r\nHost: localhost\r\n\r\n");
  raw("version_0_9", "GET /data.txt\r\n\r\n");
  get("connection_close", "/data.txt", Hdr("Connection", "close"));
  {
    std::string many;
    for (int i = 0; i < 101; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    get("headers_101", "/data.txt", many);
    get("header_20k", "/data.txt", Hdr("X-Big", std::string(20000, 'b')));
    get("header_6k", "/data.txt", Hdr("X-Big", std::string(6000, 'b')));
  }

  // Content codings: foo.txt has .gz, .br and .zst siblings, gzonly.txt only .gz.
  const std::pair<const char*, const char*> encodings[] = {
      {"gzip", "gzip"},
      {"gzip_br", "gzip, br"},
      {"br", "br"},
      {"weighted", "br;q=0.1, gzip;q=0.9"},
      {"gzip_q0", "gzip;q=0"},
      {"x_gzip", "x-gzip"},
      {"star", "*"},
      {"identity", "identity"},
      {"deflate", "deflate"},
      {"upper", "GZIP"},
      {"empty", ""},
      {"zstd", "zstd"},
      {"zstd_gzip", "gzip, zstd"},
      {"zstd_q0_gzip", "zstd;q=0, gzip"},
  };
  for (const auto& [name, value] : encodings) {
    get(std::string("ae_") + name, "/foo.txt", Hdr("Accept-Encoding", value));
  }
  get("ae_none", "/foo.txt");
  head("ae_head_gzip", "/foo.txt", Hdr("Accept-Encoding", "gzip"));
  get("ae_gzip_range", "/foo.txt", Hdr("Accept-Encoding", "gzip") + Hdr("Range", "bytes=2-9"));
  get("ae_gzip_inm", "/foo.txt", Hdr("Accept-Encoding", "gzip") + Hdr("If-None-Match", "{GZETAG}"));
  get("ae_gzonly_gzip", "/gzonly.txt", Hdr("Accept-Encoding", "gzip"));
  get("ae_gzonly_br", "/gzonly.txt", Hdr("Accept-Encoding", "br"));
  get("ae_sibling_itself", "/foo.txt.gz", Hdr("Accept-Encoding", "gzip"));
  raw("ae_gzip_http10", "GET /foo.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n");
  return p;
}

// ----------------------------------------------- intentional differences --

// A request where sluice and nginx are expected to differ: both statuses are
// pinned, so a change on either side shows up. When the statuses are equal,
// the entry covers differing headers or bodies.
struct Difference {
  const char* probe;
  int sluice;
  int nginx;
  const char* why;  // With the RFC section behind sluice's answer.
};

const Difference kIntentionalDifferences[] = {
    // Media types: sluice follows the registrations, Debian's mime.types is older.
    {"get_js", 200, 200, "text/javascript (RFC 9239 §6) vs application/javascript"},
    {"head_js", 200, 200, "text/javascript (RFC 9239 §6) vs application/javascript"},
    {"get_markdown", 200, 200, "text/markdown (RFC 7763 §2) vs octet-stream"},
    {"head_markdown", 200, 200, "text/markdown (RFC 7763 §2) vs octet-stream"},
    {"get_gz_file", 200, 200, "application/gzip (RFC 6713 §3) vs octet-stream"},
    {"head_gz_file", 200, 200, "application/gzip (RFC 6713 §3) vs octet-stream"},
    {"ae_sibling_itself", 200, 200, "application/gzip (RFC 6713 §3) vs octet-stream"},
    // Confinement (README "Safety"; RFC 9110 §17.3, §15.5.5 may hide existence).
    {"path_noindex", 404, 403, "no listing: a directory without index.html is not found (§15.5.5)"},
    {"path_dotfile", 404, 200, "dotfiles never served (RFC 9110 §17.3, §15.5.5)"},
    {"path_dot_dir", 404, 200, "dot-directories never served (RFC 9110 §17.3, §15.5.5)"},
    {"path_sub_dotfile", 404, 200, "dotfiles never served (RFC 9110 §17.3, §15.5.5)"},
    {"path_symlink_out_file", 404, 200, "symlinks may not leave the root (RFC 9110 §17.3)"},
    {"path_symlink_out_dir", 404, 200, "symlinks may not leave the root (RFC 9110 §17.3)"},
    {"path_fifo", 403, 404, "exists but only regular files are served: 403 (RFC 9110 §15.5.4)"},
    {"path_fragment", 400, 200, "'#' is not allowed in a request-target (RFC 9112 §3.2, §3)"},
    // Ranges.
    {"range_syntax_letters", 200, 416, "invalid Range ignored, not rejected (RFC 9110 §14.2)"},
    {"range_syntax_reversed", 200, 416, "invalid Range ignored, not rejected (RFC 9110 §14.2)"},
    {"range_syntax_double_dash", 200, 416, "invalid Range ignored (RFC 9110 §14.2)"},
    {"range_syntax_two_dashes", 200, 416, "invalid Range ignored (RFC 9110 §14.2)"},
    {"range_syntax_no_dash", 200, 416, "invalid Range ignored (RFC 9110 §14.2)"},
    {"range_empty_elements", 206, 416, "empty list elements are valid (RFC 9110 §5.6.1)"},
    {"range_huge_last", 206, 416, "last-pos past the end means the rest (RFC 9110 §14.1.2)"},
    {"range_huge_suffix", 206, 416, "suffix longer than the file: all of it (RFC 9110 §14.1.2)"},
    {"range_overlap", 206, 206, "overlapping ranges coalesced (RFC 9110 §15.3.7.2)"},
    {"range_adjacent", 206, 206, "adjacent ranges coalesced (RFC 9110 §15.3.7.2)"},
    {"range_halves", 200, 206,
     "several ranges covering the file are ignored (range.h; RFC 9110 §14.2 MAY ignore)"},
    {"range_empty_file", 416, 200, "nothing of an empty file is satisfiable (RFC 9110 §14.1.1)"},
    {"range_empty_file_suffix", 416, 200,
     "no byte of an empty file can be selected (RFC 9110 §14.1.1, §15.5.17)"},
    {"ae_gzip_range", 206, 200,
     "ranges apply to the selected (gzip) representation (RFC 9110 §14.1.2)"},
    // Conditionals (nginx: if_modified_since exact, IUS before If-Match).
    {"ims_newer", 304, 200, "not modified since a later date (RFC 9110 §13.1.3)"},
    {"ius_garbage", 200, 412, "invalid If-Unmodified-Since ignored (RFC 9110 §13.1.4)"},
    {"if_match_and_old_ius", 200, 412,
     "If-Unmodified-Since ignored with If-Match (RFC 9110 §13.1.4, §13.2.2)"},
    {"inm_match_ims_older", 304, 200,
     "If-Modified-Since ignored with If-None-Match (RFC 9110 §13.1.3)"},
    {"dup_range", 400, 206, "Range is a singleton field: two are ambiguous (RFC 9110 §5.3)"},
    // Methods.
    {"method_BREW", 501, 405, "unknown method (RFC 9110 §9.1, §15.6.2)"},
    {"method_PROPFIND", 501, 405, "unimplemented method (RFC 9110 §9.1, §15.6.2)"},
    {"method_get", 501, 400, "methods are case-sensitive tokens: unknown (RFC 9110 §9.1)"},
    {"method_CONNECT", 405, 400, "known method not supported here (RFC 9110 §15.5.6)"},
    {"method_OPTIONS_path", 204, 405, "OPTIONS answered (RFC 9110 §9.3.7)"},
    {"method_OPTIONS_star", 204, 400, "asterisk-form OPTIONS (RFC 9112 §3.2.4, RFC 9110 §9.3.7)"},
    // Framing and syntax.
    {"te_chunked_body", 413, 200,
     "request content is never taken; chunked cannot be skipped unparsed (RFC 9110 §15.5.14)"},
    {"expect_other", 417, 200, "unknown expectation (RFC 9110 §10.1.1)"},
    {"ctl_in_value", 400, 200, "control byte in a field value (RFC 9110 §5.5)"},
    {"no_colon", 400, 200, "field line without a colon (RFC 9112 §5)"},
    {"bad_name_char", 400, 200, "field-name must be a token (RFC 9110 §5.1, RFC 9112 §5)"},
    {"two_spaces_request_line", 400, 200, "single SP separators (RFC 9112 §3)"},
    {"trailing_space_version", 400, 200, "single SP separators (RFC 9112 §3)"},
    {"version_1_10", 400, 200, "HTTP-version is DIGIT.DIGIT (RFC 9112 §2.3)"},
    {"version_0_9", 400, kNoResponse, "HTTP/0.9 not spoken; nginx answers without a status line"},
    {"headers_101", 431, 200, "more than --max_headers fields (RFC 6585 §5)"},
    {"header_20k", 431, 400, "head larger than --max_header_bytes (RFC 6585 §5)"},
    // Content codings: nginx-light has gzip_static but no brotli.
    {"ae_gzip_br", 200, 200, "sluice serves .br (preferred on a tie), nginx-light has no br"},
    {"ae_br", 200, 200, "sluice serves .br, nginx-light has no br"},
    {"ae_zstd", 200, 200, "sluice serves .zst (RFC 8878 §7.2), nginx has no zstd_static"},
    {"ae_zstd_gzip", 200, 200, "sluice prefers .zst to .gz on a tie (README), nginx has no zstd"},
    {"ae_star", 200, 200, "'*' accepts any coding (RFC 9110 §12.5.3)"},
    {"ae_x_gzip", 200, 200, "x-gzip is gzip (RFC 9110 §8.4.1.3)"},
    {"ae_gzip_http10", 200, 200, "codings do not depend on the HTTP version (RFC 9110 §12.5.3)"},
};

// ------------------------------------------------------------ comparing --

struct Outcome {
  int status = kNoResponse;
  std::optional<HttpResponse> response;
  std::string error;
};

struct Part {
  std::string content_type;
  std::string content_range;
  std::string bytes;
};

// Splits a multipart/byteranges body using the boundary parameter; part
// lengths come from each part's Content-Range.
bool SplitMultipart(const HttpResponse& r, std::vector<Part>* parts, std::string* error) {
  const std::string type = r.Header("Content-Type").value_or("");
  const size_t at = type.find("boundary=");
  if (at == std::string::npos) {
    *error = "no boundary in '" + type + "'";
    return false;
  }
  std::string boundary = type.substr(at + 9);
  boundary = boundary.substr(0, boundary.find(';'));
  if (boundary.size() >= 2 && boundary.front() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  const std::string delimiter = "--" + boundary;
  const std::string_view body = r.body;
  size_t pos = body.find(delimiter);
  if (pos == std::string_view::npos) {
    *error = "no delimiter";
    return false;
  }
  pos += delimiter.size();
  while (body.substr(pos, 2) == "\r\n") {
    const size_t end = body.find("\r\n\r\n", pos);
    if (end == std::string_view::npos) {
      *error = "unterminated part head";
      return false;
    }
    Part part;
    std::string_view head = body.substr(pos + 2, end - pos - 2);
    while (!head.empty()) {
      const size_t eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      const std::string name = Lower(line.substr(0, colon));
      if (name == "content-type") part.content_type = std::string(value);
      if (name == "content-range") part.content_range = std::string(value);
    }
    unsigned long long first = 0, last = 0, size = 0;
    if (std::sscanf(part.content_range.c_str(), "bytes %llu-%llu/%llu", &first, &last, &size) !=
            3 ||
        last < first) {
      *error = "bad part Content-Range '" + part.content_range + "'";
      return false;
    }
    pos = end + 4;
    part.bytes = std::string(body.substr(pos, last - first + 1));
    pos += last - first + 1;
    parts->push_back(std::move(part));
    if (body.substr(pos, 2 + delimiter.size()) != "\r\n" + delimiter) {
      *error = "no delimiter after part " + std::to_string(parts->size());
      return false;
    }
    pos += 2 + delimiter.size();
  }
  if (body.substr(pos, 2) != "--") {
    *error = "no close delimiter";
    return false;
  }
  return true;
}

// Everything that differs between the two answers to one request.
std::vector<std::string> Compare(const Outcome& s, const Outcome& n) {
  std::vector<std::string> diffs;
  if (s.status != n.status) {
    diffs.push_back("status " + std::to_string(s.status) + " vs " + std::to_string(n.status));
    return diffs;
  }
  if (s.status == kNoResponse) return diffs;
  const HttpResponse& a = *s.response;
  const HttpResponse& b = *n.response;
  const int status = s.status;
  const bool compared = (status >= 200 && status < 400) || status == 416;
  if (!compared) return diffs;
  auto header = [&diffs, &a, &b](const char* name, auto transform) {
    const std::optional<std::string> x = a.Header(name);
    const std::optional<std::string> y = b.Header(name);
    const std::string tx = x ? transform(*x) : "(none)";
    const std::string ty = y ? transform(*y) : "(none)";
    if (tx != ty) diffs.push_back(std::string(name) + " '" + tx + "' vs '" + ty + "'");
  };
  auto same = [](const std::string& v) { return v; };
  if (status == 416) {
    header("Content-Range", same);
    return diffs;
  }
  if (status >= 300 && status < 400) {
    if (status != 304) header("Location", LocationPath);
    return diffs;
  }
  const bool multipart = MediaType(a.Header("Content-Type").value_or("")) == "multipart/byteranges";
  header("Content-Type", MediaType);
  header("Content-Range", same);
  if (multipart && MediaType(b.Header("Content-Type").value_or("")) == "multipart/byteranges") {
    // Boundaries differ in length, so Content-Length does too: compare parts.
    if (a.body.empty() && b.body.empty()) return diffs;  // HEAD.
    std::vector<Part> pa, pb;
    std::string ea, eb;
    if (!SplitMultipart(a, &pa, &ea)) diffs.push_back("sluice multipart: " + ea);
    if (!SplitMultipart(b, &pb, &eb)) diffs.push_back("nginx multipart: " + eb);
    if (!diffs.empty()) return diffs;
    if (pa.size() != pb.size()) {
      diffs.push_back(std::to_string(pa.size()) + " parts vs " + std::to_string(pb.size()));
      return diffs;
    }
    for (size_t i = 0; i < pa.size(); ++i) {
      if (pa[i].content_range != pb[i].content_range || pa[i].bytes != pb[i].bytes ||
          MediaType(pa[i].content_type) != MediaType(pb[i].content_type)) {
        diffs.push_back("part " + std::to_string(i) + ": '" + pa[i].content_range + "' " +
                        pa[i].content_type + " vs '" + pb[i].content_range + "' " +
                        pb[i].content_type);
      }
    }
    return diffs;
  }
  header("Content-Length", same);
  if (a.body != b.body) {
    diffs.push_back("bodies differ (" + std::to_string(a.body.size()) + " vs " +
                    std::to_string(b.body.size()) + " bytes)");
  }
  return diffs;
}

class NginxDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct stat st;
    ASSERT_EQ(stat(kNginx, &st), 0)
        << kNginx << " is missing: install nginx-light (scripts/test does)";
    ASSERT_EQ(stat(kNginxMimeTypes, &st), 0)
        << kNginxMimeTypes << " is missing: install nginx-light (scripts/test does)";
    ASSERT_TRUE(root_.ok() && outside_.ok() && nginx_dir_.ok());
    BuildRoot();
    if (HasFatalFailure()) return;
    // Like with like: nginx runs without a master process, so it cannot
    // switch user and serves as whoever started it; as root, sluice stays
    // root too (--user=root) instead of its default drop to nobody.
    std::vector<std::string> flags = {"--root=" + root_.path(), "--threads=1"};
    if (geteuid() == 0) flags.push_back("--user=root");
    SLUICE_START_OR_SKIP(sluice_, flags);
    std::string error;
    const std::string server_body = "    root " + root_.path() +
                                    ";\n"
                                    "    index index.html;\n"
                                    "    gzip_static on;\n"
                                    "    etag on;\n"
                                    "    max_ranges 16;\n";
    ASSERT_TRUE(nginx_.Start(nginx_dir_.path(), server_body, &error)) << error;
  }

  void TearDown() override {
    nginx_.Stop();
    if (sluice_.running()) {
      EXPECT_TRUE(sluice_.Stop());
      EXPECT_TRUE(sluice_.ExitedWithCode(0)) << "sluice " << sluice_.DescribeExit();
    }
  }

  void BuildRoot() {
    const std::string text = [] {
      std::string t;
      for (int i = 0; t.size() < 1000; ++i) t += "line " + std::to_string(i) + " of data.txt\n";
      return t.substr(0, 1000);
    }();
    ASSERT_TRUE(root_.WriteFile("index.html", "<!doctype html><title>root</title>\n"));
    ASSERT_TRUE(root_.WriteFile("data.txt", text));
    ASSERT_TRUE(root_.WriteFile("fixed.txt", text));
    ASSERT_TRUE(root_.SetMtime("fixed.txt", kFixedMtime));
    ASSERT_TRUE(root_.WriteFile("style.css", "body { margin: 0; }\n"));
    ASSERT_TRUE(root_.WriteFile("app.js", "console.log('app');\n"));
    ASSERT_TRUE(root_.WriteFile("data.json", "{\"a\": 1}\n"));
    ASSERT_TRUE(root_.WriteFile("logo.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n"));
    ASSERT_TRUE(root_.WriteFile("image.png", "\x89PNG\r\n\x1a\n" + PseudoRandomBytes(500, 1)));
    ASSERT_TRUE(root_.WriteFile("photo.JPG", "\xff\xd8\xff\xe0" + PseudoRandomBytes(700, 2)));
    ASSERT_TRUE(root_.WriteFile("file.unknownext", PseudoRandomBytes(300, 3)));
    ASSERT_TRUE(root_.WriteFile("README", "no extension\n"));
    ASSERT_TRUE(root_.WriteFile("notes.md", "# notes\n"));
    ASSERT_TRUE(root_.WriteFile("archive.gz", PseudoRandomBytes(200, 4)));
    ASSERT_TRUE(root_.WriteFile("empty.txt", ""));
    ASSERT_TRUE(root_.WriteFile("a b.txt", "space in the name\n"));
    ASSERT_TRUE(root_.WriteFile("big.bin", PseudoRandomBytes(512 * 1024, 5)));
    ASSERT_TRUE(root_.WriteFile("sub/index.html", "<!doctype html><p>sub</p>\n"));
    ASSERT_TRUE(root_.WriteFile("sub/page.html", "<!doctype html><p>page</p>\n"));
    ASSERT_TRUE(root_.WriteFile("noindex/other.txt", "other\n"));
    ASSERT_TRUE(root_.WriteFile(".hidden", "hidden\n"));
    ASSERT_TRUE(root_.WriteFile(".git/config", "[core]\n"));
    ASSERT_TRUE(root_.WriteFile("sub/.env", "SECRET=1\n"));
    ASSERT_TRUE(root_.WriteFile("unreadable.txt", "unreadable\n"));
    ASSERT_TRUE(root_.Chmod("unreadable.txt", 0));
    ASSERT_TRUE(root_.Symlink("data.txt", "inner_link.txt"));
    ASSERT_TRUE(outside_.WriteFile("secret.txt", "outside the root\n"));
    ASSERT_TRUE(root_.Symlink(outside_.Path("secret.txt"), "escape_link"));
    ASSERT_TRUE(root_.Symlink(outside_.path(), "escape_dir"));
    ASSERT_TRUE(root_.MakeFifo("fifo"));
    ASSERT_TRUE(root_.WriteFile("foo.txt", "foo.txt identity\n"));
    ASSERT_TRUE(root_.WriteFile("foo.txt.gz", "GZ:" + PseudoRandomBytes(120, 6)));
    ASSERT_TRUE(root_.WriteFile("foo.txt.br", "BR:" + PseudoRandomBytes(80, 7)));
    ASSERT_TRUE(root_.WriteFile("foo.txt.zst", "ZST:" + PseudoRandomBytes(100, 9)));
    ASSERT_TRUE(root_.WriteFile("gzonly.txt", "gzonly.txt identity\n"));
    ASSERT_TRUE(root_.WriteFile("gzonly.txt.gz", "GZ:" + PseudoRandomBytes(90, 8)));
  }

  // The ETag `port` sends for `target` with `headers`, or "" (test fails).
  std::string EtagOf(uint16_t port, std::string_view target, std::string_view headers) {
    std::string error;
    const std::optional<HttpResponse> r =
        FetchOnce("127.0.0.1", port, MakeRequest("GET", target, headers), &error);
    if (!r || !r->HasHeader("ETag")) {
      ADD_FAILURE() << "no ETag for " << target << " on port " << port << ": "
                    << (r ? r->Describe() : error);
      return "";
    }
    return *r->Header("ETag");
  }

  Outcome Run(uint16_t port, const Probe& probe, const std::string& etag,
              const std::string& gz_etag) {
    std::string raw = probe.raw;
    ReplaceAll(&raw, "{ETAG}", etag);
    ReplaceAll(&raw, "{GZETAG}", gz_etag);
    Outcome out;
    HttpConnection c;
    if (!c.Connect("127.0.0.1", port, kRequestTimeout) || !c.Send(raw, kRequestTimeout)) {
      out.error = c.last_error();
      return out;
    }
    out.response = c.ReadResponse(probe.method, kRequestTimeout);
    // Interim 1xx responses (nginx sends 100 Continue even for a GET without
    // content) are not the answer: read on to the final one.
    for (int i = 0; i < 3 && out.response && out.response->status < 200; ++i) {
      out.response = c.ReadResponse(probe.method, kRequestTimeout);
    }
    if (out.response) {
      out.status = out.response->status;
    } else {
      out.error = c.last_error();
    }
    return out;
  }

  TestRoot root_;
  TestRoot outside_{"sluice-outside-"};
  TestRoot nginx_dir_{"sluice-nginx-"};
  ServerProcess sluice_;
  NginxProcess nginx_;
};

std::string Summary(const Outcome& o) {
  if (o.status == kNoResponse) return "no response (" + o.error.substr(0, 200) + ")";
  return o.response->Describe().substr(0, 1500);
}

TEST_F(NginxDiffTest, SameAnswersAsNginxExceptWhereTabled) {
  const auto start = Clock::now();
  const std::vector<Probe> corpus = Corpus();
  ASSERT_GE(corpus.size(), 150u);
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

  const uint16_t sport = sluice_.port();
  const uint16_t nport = nginx_.port();
  const std::string s_etag = EtagOf(sport, "/fixed.txt", "");
  const std::string n_etag = EtagOf(nport, "/fixed.txt", "");
  const std::string s_gz_etag = EtagOf(sport, "/foo.txt", "Accept-Encoding: gzip\r\n");
  const std::string n_gz_etag = EtagOf(nport, "/foo.txt", "Accept-Encoding: gzip\r\n");
  ASSERT_FALSE(HasFailure());

  int differing = 0;
  for (const Probe& p : corpus) {
    ASSERT_LT(Clock::now() - start, kTestBudget) << "out of time at probe " << p.name;
    const Outcome s = Run(sport, p, s_etag, s_gz_etag);
    const Outcome n = Run(nport, p, n_etag, n_gz_etag);
    const std::vector<std::string> diffs = Compare(s, n);
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
    EXPECT_EQ(s.status, d.sluice) << "probe " << p.name << " (sluice): " << Summary(s);
    EXPECT_EQ(n.status, d.nginx) << "probe " << p.name << " (nginx): " << Summary(n);
  }
  EXPECT_EQ(differing, 0);
  std::printf(
      "%zu probes, %zu intentional differences, %d untabled differences, %lld ms\n", corpus.size(),
      table.size(), differing,
      static_cast<long long>(std::chrono::duration_cast<Millis>(Clock::now() - start).count()));
}

}  // namespace
}  // namespace sluice::test
