// HTTP semantics of the real sluice binary over raw loopback sockets: range
// requests (RFC 9110 §14), conditional requests (§13), precompressed
// siblings (§12.5.3, §8.4), methods (§9), message framing (RFC 9112 §6) and
// the --max_ranges, --cache_control, --precompressed and --mime_types flags.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "support/http_client.h"
#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

constexpr std::time_t kFixedMtime = 1614834367;  // Thu, 04 Mar 2021 05:06:07 GMT
constexpr char kTextType[] = "text/plain; charset=utf-8";
constexpr char kFooIdentity[] = "foo.txt: the identity representation, plain text\n";
constexpr Millis kCloseTimeout{5000};

// The media type of a Content-Type value, parameters removed, lower case.
std::string MediaType(std::string_view value) {
  std::string type(value.substr(0, value.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  for (char& c : type) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return type;
}

// One part of a multipart/byteranges body.
struct Part {
  std::string content_type;
  std::string content_range;
  std::string bytes;
};

// Parses "bytes FIRST-LAST/SIZE".
bool ParseContentRange(std::string_view value, uint64_t* first, uint64_t* last, uint64_t* size) {
  if (value.substr(0, 6) != "bytes ") return false;
  value.remove_prefix(6);
  uint64_t numbers[3] = {0, 0, 0};
  const char separators[3] = {'-', '/', '\0'};
  for (int i = 0; i < 3; ++i) {
    size_t n = 0;
    while (n < value.size() && value[n] >= '0' && value[n] <= '9') {
      numbers[i] = numbers[i] * 10 + static_cast<uint64_t>(value[n] - '0');
      ++n;
    }
    if (n == 0 || n > 19) return false;
    value.remove_prefix(n);
    if (separators[i] != '\0') {
      if (value.empty() || value[0] != separators[i]) return false;
      value.remove_prefix(1);
    }
  }
  if (!value.empty()) return false;
  *first = numbers[0];
  *last = numbers[1];
  *size = numbers[2];
  return *first <= *last && *last < *size;
}

// Splits a multipart/byteranges response (RFC 9110 §14.6, RFC 2046 §5.1.1)
// into parts, using each part's Content-Range for its length so that binary
// content can never be mistaken for a delimiter.
::testing::AssertionResult ParseMultipart(const HttpResponse& r, std::vector<Part>* parts) {
  parts->clear();
  const std::string type = r.Header("Content-Type").value_or("");
  if (MediaType(type) != "multipart/byteranges") {
    return ::testing::AssertionFailure() << "Content-Type is '" << type << "'";
  }
  const size_t at = type.find("boundary=");
  if (at == std::string::npos) return ::testing::AssertionFailure() << "no boundary: " << type;
  std::string boundary = type.substr(at + 9);
  boundary = boundary.substr(0, boundary.find(';'));
  if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
    boundary = boundary.substr(1, boundary.size() - 2);
  }
  if (boundary.empty() || boundary.size() > 70) {
    return ::testing::AssertionFailure() << "bad boundary '" << boundary << "'";
  }
  const std::string_view body = r.body;
  const std::string dash_boundary = "--" + boundary;
  // Preamble: nothing, or one CRLF (the delimiter's own).
  size_t pos = 0;
  if (body.substr(0, 2) == "\r\n") pos = 2;
  if (body.substr(pos, dash_boundary.size()) != dash_boundary) {
    return ::testing::AssertionFailure()
           << "body does not start with the boundary: " << EscapeBytes(body, 200);
  }
  pos += dash_boundary.size();
  while (true) {
    if (body.substr(pos, 2) == "--") {
      pos += 2;
      // Epilogue: nothing or CRLF.
      const std::string_view rest = body.substr(pos);
      if (!rest.empty() && rest != "\r\n") {
        return ::testing::AssertionFailure()
               << "text after the close delimiter: " << EscapeBytes(rest, 200);
      }
      return ::testing::AssertionSuccess();
    }
    if (body.substr(pos, 2) != "\r\n") {
      return ::testing::AssertionFailure() << "no CRLF after a delimiter at " << pos;
    }
    pos += 2;
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) {
      return ::testing::AssertionFailure() << "part head not terminated at " << pos;
    }
    Part part;
    std::string_view head = body.substr(pos, head_end - pos);
    pos = head_end + 4;
    while (!head.empty()) {
      const size_t eol = head.find("\r\n");
      const std::string_view line = head.substr(0, eol);
      head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        return ::testing::AssertionFailure() << "bad part header '" << line << "'";
      }
      std::string name(line.substr(0, colon));
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-type") part.content_type = std::string(value);
      if (name == "content-range") part.content_range = std::string(value);
    }
    uint64_t first = 0, last = 0, size = 0;
    if (!ParseContentRange(part.content_range, &first, &last, &size)) {
      return ::testing::AssertionFailure()
             << "bad part Content-Range '" << part.content_range << "'";
    }
    const uint64_t length = last - first + 1;
    if (pos + length > body.size()) {
      return ::testing::AssertionFailure() << "part runs past the body";
    }
    part.bytes = std::string(body.substr(pos, length));
    pos += length;
    parts->push_back(std::move(part));
    if (body.substr(pos, 2 + dash_boundary.size()) != "\r\n" + dash_boundary) {
      return ::testing::AssertionFailure() << "no delimiter after part " << parts->size();
    }
    pos += 2 + dash_boundary.size();
  }
}

std::string ContentRange(uint64_t first, uint64_t last, uint64_t size) {
  return "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size);
}

class SemanticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.ok());
    data_ = PseudoRandomBytes(1000, 11);
    ASSERT_TRUE(root_.WriteFile("data.txt", data_));
    ASSERT_TRUE(root_.WriteFile("fixed.txt", data_));
    ASSERT_TRUE(root_.SetMtime("fixed.txt", kFixedMtime));
    ASSERT_TRUE(root_.WriteFile("empty.txt", ""));
    ASSERT_TRUE(root_.WriteFile("style.css", "body { margin: 0; }\n"));
    ASSERT_TRUE(root_.WriteFile("thing.sluicetest", "a file with a made-up extension\n"));
    // Precompressed siblings: the server never decodes them, so any bytes do.
    gz_ = "GZ:" + PseudoRandomBytes(300, 21);
    br_ = "BR:" + PseudoRandomBytes(200, 22);
    ASSERT_TRUE(root_.WriteFile("foo.txt", kFooIdentity));
    ASSERT_TRUE(root_.WriteFile("foo.txt.gz", gz_));
    ASSERT_TRUE(root_.WriteFile("foo.txt.br", br_));
    zst_ = "ZST:" + PseudoRandomBytes(250, 23);
    ASSERT_TRUE(root_.WriteFile("foo.txt.zst", zst_));
    ASSERT_TRUE(root_.WriteFile("zstonly.txt", kFooIdentity));
    ASSERT_TRUE(root_.WriteFile("zstonly.txt.zst", zst_));
    ASSERT_TRUE(root_.WriteFile("gzonly.txt", kFooIdentity));
    ASSERT_TRUE(root_.WriteFile("gzonly.txt.gz", gz_));
    // A sibling that is not a regular file must be passed over.
    ASSERT_TRUE(root_.WriteFile("dirsib.txt", kFooIdentity));
    ASSERT_TRUE(root_.MakeDir("dirsib.txt.br"));
    ASSERT_TRUE(root_.WriteFile("dirsib.txt.gz", gz_));
    Start(&server_, {});
  }

  void TearDown() override {
    for (ServerProcess* s : {&server_, &other_}) {
      if (s->running()) {
        EXPECT_TRUE(s->Stop());
        EXPECT_TRUE(s->ExitedWithCode(0)) << "server " << s->DescribeExit();
      }
    }
  }

  // Starts `server` on this root with --threads=2 plus `flags`.
  void Start(ServerProcess* server, std::vector<std::string> flags) {
    flags.push_back("--root=" + root_.path());
    flags.push_back("--threads=2");
    SLUICE_START_OR_SKIP(*server, flags);
  }

  // Starts the second server; true if it runs.
  bool StartOther(std::vector<std::string> flags) {
    Start(&other_, std::move(flags));
    return other_.running();
  }

  ::testing::AssertionResult Connect(HttpConnection* c, const ServerProcess& s) {
    if (c->Connect(s.host(), s.port())) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << c->last_error();
  }
  ::testing::AssertionResult Connect(HttpConnection* c) { return Connect(c, server_); }

  // One request on a fresh connection to `s`.
  std::optional<HttpResponse> FetchFrom(const ServerProcess& s, const std::string& raw,
                                        std::string_view method = "GET") {
    std::string error;
    std::optional<HttpResponse> r = FetchOnce(s.host(), s.port(), raw, &error, method);
    if (!r) ADD_FAILURE() << "request '" << EscapeBytes(raw, 300) << "': " << error;
    return r;
  }
  std::optional<HttpResponse> Fetch(const std::string& raw, std::string_view method = "GET") {
    return FetchFrom(server_, raw, method);
  }
  std::optional<HttpResponse> Get(std::string_view target, std::string_view headers = "") {
    return Fetch(MakeRequest("GET", target, headers));
  }

  // The ETag and Last-Modified of `target` (as the server sends them).
  std::pair<std::string, std::string> Validators(std::string_view target,
                                                 std::string_view headers = "") {
    const std::optional<HttpResponse> r = Get(target, headers);
    if (!r || r->status != 200 || !r->HasHeader("ETag") || !r->HasHeader("Last-Modified")) {
      ADD_FAILURE() << "no validators for " << target;
      return {};
    }
    return {*r->Header("ETag"), *r->Header("Last-Modified")};
  }

  // Sends `raw` on a new connection and expects one response with `status`,
  // then the connection closed by the server with nothing more sent.
  void ExpectStatusThenClose(const std::string& raw, int status) {
    SCOPED_TRACE("request: " + EscapeBytes(raw, 300));
    HttpConnection c;
    ASSERT_TRUE(Connect(&c));
    ASSERT_TRUE(c.Send(raw)) << c.last_error();
    const std::optional<HttpResponse> r = c.ReadResponse();
    ASSERT_TRUE(r) << c.last_error();
    EXPECT_TRUE(IsErrorResponse(*r, status)) << r->Describe();
    EXPECT_TRUE(r->HeaderHasToken("Connection", "close")) << r->Describe();
    EXPECT_TRUE(c.WaitForClose(kCloseTimeout)) << c.last_error();
  }

  // Expects a 206 carrying exactly content[first..last] of a `size`-byte file.
  void ExpectSinglePart(const HttpResponse& r, const std::string& content, uint64_t first,
                        uint64_t last) {
    EXPECT_EQ(r.status, 206) << r.Describe();
    EXPECT_EQ(r.Header("Content-Range"), ContentRange(first, last, content.size())) << r.Describe();
    EXPECT_EQ(r.Header("Content-Length"), std::to_string(last - first + 1)) << r.Describe();
    EXPECT_TRUE(BytesEqual(r.body, std::string_view(content).substr(first, last - first + 1)));
  }

  // Expects a 200 with the whole of `content` and no Content-Range.
  void ExpectWhole(const HttpResponse& r, const std::string& content) {
    EXPECT_EQ(r.status, 200) << r.Describe();
    EXPECT_FALSE(r.HasHeader("Content-Range")) << r.Describe();
    EXPECT_EQ(r.Header("Content-Length"), std::to_string(content.size())) << r.Describe();
    EXPECT_TRUE(BytesEqual(r.body, content));
  }

  TestRoot root_;
  ServerProcess server_;
  ServerProcess other_;  // A second server with different flags, when a test needs one.
  std::string data_, gz_, br_, zst_;
};

// ------------------------------------------------------------- ranges --

TEST_F(SemanticsTest, SingleRangeIs206WithExactBytes) {
  struct Case {
    const char* range;
    uint64_t first;
    uint64_t last;
  };
  const Case cases[] = {
      {"bytes=0-8", 0, 8},     {"bytes=990-", 990, 999},
      {"bytes=-10", 990, 999}, {"bytes=500-5000", 500, 999},
      {"bytes=0-0", 0, 0},     {"bytes=999-999", 999, 999},
      {"BYTES=10-19", 10, 19}, {"bytes=-5000", 0, 999},
      {"bytes=1-2,,", 1, 2},   {"bytes=0-99999999999999999999", 0, 999},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.range);
    const std::optional<HttpResponse> r =
        Get("/data.txt", std::string("Range: ") + c.range + "\r\n");
    ASSERT_TRUE(r);
    ExpectSinglePart(*r, data_, c.first, c.last);
    EXPECT_EQ(r->Header("Content-Type"), kTextType);
    EXPECT_EQ(r->Header("Accept-Ranges"), "bytes");
    EXPECT_TRUE(r->HasHeader("ETag") && r->HasHeader("Last-Modified")) << r->Describe();
  }
}

TEST_F(SemanticsTest, WholeFileAnswersAdvertiseRanges) {
  const std::optional<HttpResponse> r = Get("/data.txt");
  ASSERT_TRUE(r);
  ExpectWhole(*r, data_);
  EXPECT_EQ(r->Header("Accept-Ranges"), "bytes");
}

TEST_F(SemanticsTest, MultipleRangesAreMultipartInRequestOrder) {
  const std::optional<HttpResponse> r = Get("/data.txt", "Range: bytes=500-599, 0-9,-5\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 206) << r->Describe();
  EXPECT_FALSE(r->HasHeader("Content-Range")) << "only parts carry Content-Range";
  std::vector<Part> parts;
  ASSERT_TRUE(ParseMultipart(*r, &parts)) << r->Describe();
  const std::pair<uint64_t, uint64_t> expected[] = {{500, 599}, {0, 9}, {995, 999}};
  ASSERT_EQ(parts.size(), 3u);
  for (size_t i = 0; i < parts.size(); ++i) {
    SCOPED_TRACE("part " + std::to_string(i));
    const auto [first, last] = expected[i];
    EXPECT_EQ(parts[i].content_type, kTextType);
    EXPECT_EQ(parts[i].content_range, ContentRange(first, last, data_.size()));
    EXPECT_TRUE(BytesEqual(parts[i].bytes, data_.substr(first, last - first + 1)));
  }
  // The client read exactly Content-Length bytes; ParseMultipart consumed
  // them all: the framing adds up.
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(r->body.size()));
}

TEST_F(SemanticsTest, OverlappingRangesAreMergedInAscendingOrder) {
  const std::optional<HttpResponse> r = Get("/data.txt", "Range: bytes=700-709,5-19,0-9,20-29\r\n");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 206) << r->Describe();
  std::vector<Part> parts;
  ASSERT_TRUE(ParseMultipart(*r, &parts)) << r->Describe();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].content_range, ContentRange(0, 29, 1000));
  EXPECT_EQ(parts[0].bytes, data_.substr(0, 30));
  EXPECT_EQ(parts[1].content_range, ContentRange(700, 709, 1000));
  EXPECT_EQ(parts[1].bytes, data_.substr(700, 10));
}

TEST_F(SemanticsTest, HeadWithRangeHasGetHeadersAndNoBody) {
  for (const char* range : {"bytes=10-19", "bytes=0-9,20-29"}) {
    SCOPED_TRACE(range);
    const std::string field = std::string("Range: ") + range + "\r\n";
    HttpConnection c;
    ASSERT_TRUE(Connect(&c));
    ASSERT_TRUE(c.Send(MakeRequest("GET", "/data.txt", field)));
    const std::optional<HttpResponse> get = c.ReadResponse();
    ASSERT_TRUE(get) << c.last_error();
    ASSERT_TRUE(c.Send(MakeRequest("HEAD", "/data.txt", field)));
    const std::optional<HttpResponse> head = c.ReadResponse("HEAD");
    ASSERT_TRUE(head) << c.last_error();
    EXPECT_EQ(head->status, 206) << head->Describe();
    for (const char* name : {"Content-Length", "Content-Range", "ETag", "Last-Modified"}) {
      EXPECT_EQ(head->Header(name), get->Header(name)) << name;
    }
    // The boundary is random per response; the media type must agree.
    EXPECT_EQ(MediaType(head->Header("Content-Type").value_or("")),
              MediaType(get->Header("Content-Type").value_or("")));
    EXPECT_TRUE(c.ExpectNoData(Millis(200))) << c.last_error();
    ASSERT_TRUE(c.Send(MakeRequest("GET", "/style.css")));
    const std::optional<HttpResponse> after = c.ReadResponse();
    ASSERT_TRUE(after) << c.last_error();
    EXPECT_EQ(after->status, 200) << after->Describe();
  }
}

TEST_F(SemanticsTest, UnsatisfiableRangeIs416WithContentRange) {
  for (const char* range : {"bytes=1000-", "bytes=-0", "bytes=5000-6000", "bytes=1000-,2000-",
                            "bytes=99999999999999999999-"}) {
    SCOPED_TRACE(range);
    const std::optional<HttpResponse> r = Get("/data.txt", std::string("Range: ") + range + "\r\n");
    ASSERT_TRUE(r);
    EXPECT_TRUE(IsErrorResponse(*r, 416)) << r->Describe();
    EXPECT_EQ(r->Header("Content-Range"), "bytes */1000") << r->Describe();
  }
  // An empty file has no satisfiable range at all (RFC 9110 §14.1.1).
  const std::optional<HttpResponse> empty = Get("/empty.txt", "Range: bytes=0-\r\n");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 416) << empty->Describe();
  EXPECT_EQ(empty->Header("Content-Range"), "bytes */0") << empty->Describe();
}

TEST_F(SemanticsTest, MalformedRangeIsIgnored) {
  for (const char* range : {"bytes=a-b", "bytes=5-1", "bytes=", "bytes 0-1", "items=0-1",
                            "bytes=--1", "bytes=1-2-3", "bytes=0-1;2-3"}) {
    SCOPED_TRACE(range);
    const std::optional<HttpResponse> r = Get("/data.txt", std::string("Range: ") + range + "\r\n");
    ASSERT_TRUE(r);
    ExpectWhole(*r, data_);
  }
}

TEST_F(SemanticsTest, IfRangeDecidesBetweenPartAndWhole) {
  const auto [etag, last_modified] = Validators("/fixed.txt");
  ASSERT_FALSE(etag.empty());
  ASSERT_EQ(last_modified, FormatImfFixdate(kFixedMtime));
  struct Case {
    std::string if_range;
    bool partial;
  };
  const Case cases[] = {
      {etag, true},
      {"\"0-0-0\"", false},
      {"W/" + etag, false},
      {last_modified, true},
      {FormatImfFixdate(kFixedMtime - 1), false},
      {FormatImfFixdate(kFixedMtime + 1), false},
      {"not a validator", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("If-Range: " + c.if_range);
    const std::optional<HttpResponse> r =
        Get("/fixed.txt", "Range: bytes=100-199\r\nIf-Range: " + c.if_range + "\r\n");
    ASSERT_TRUE(r);
    if (c.partial) {
      ExpectSinglePart(*r, data_, 100, 199);
    } else {
      ExpectWhole(*r, data_);
    }
  }
}

TEST_F(SemanticsTest, MoreRangesThanTheLimitGetTheWholeFile) {
  auto disjoint = [](int count) {
    std::string value = "Range: bytes=";
    for (int i = 0; i < count; ++i) {
      value += (i ? "," : "") + std::to_string(10 * i) + "-" + std::to_string(10 * i + 1);
    }
    return value + "\r\n";
  };
  const std::optional<HttpResponse> sixteen = Get("/data.txt", disjoint(16));
  ASSERT_TRUE(sixteen);
  EXPECT_EQ(sixteen->status, 206) << sixteen->Describe();
  std::vector<Part> parts;
  EXPECT_TRUE(ParseMultipart(*sixteen, &parts)) << sixteen->Describe();
  EXPECT_EQ(parts.size(), 16u);

  const std::optional<HttpResponse> seventeen = Get("/data.txt", disjoint(17));
  ASSERT_TRUE(seventeen);
  ExpectWhole(*seventeen, data_);

  // --max_ranges lowers the limit.
  ASSERT_TRUE(StartOther({"--max_ranges=2"}));
  const std::optional<HttpResponse> two =
      FetchFrom(other_, MakeRequest("GET", "/data.txt", disjoint(2)));
  ASSERT_TRUE(two);
  EXPECT_EQ(two->status, 206) << two->Describe();
  const std::optional<HttpResponse> three =
      FetchFrom(other_, MakeRequest("GET", "/data.txt", disjoint(3)));
  ASSERT_TRUE(three);
  ExpectWhole(*three, data_);
}

TEST_F(SemanticsTest, FiveHundredWholeFileRangesCostNoMoreThanOne) {
  std::string value = "Range: bytes=";
  for (int i = 0; i < 500; ++i) value += i ? ",0-" : "0-";
  for (const char* flag : {"", "--max_ranges=64"}) {
    SCOPED_TRACE(flag);
    ServerProcess* s = &server_;
    if (*flag != '\0') {
      ASSERT_TRUE(StartOther({flag}));
      s = &other_;
    }
    const std::optional<HttpResponse> r =
        FetchFrom(*s, MakeRequest("GET", "/data.txt", value + "\r\n"));
    ASSERT_TRUE(r);
    ASSERT_TRUE(r->status == 200 || r->status == 206) << r->Describe();
    EXPECT_EQ(r->Header("Content-Length"), "1000") << r->Describe();
    EXPECT_NE(MediaType(r->Header("Content-Type").value_or("")), "multipart/byteranges");
    if (r->status == 206) {
      EXPECT_EQ(r->Header("Content-Range"), ContentRange(0, 999, 1000));
    }
    EXPECT_TRUE(BytesEqual(r->body, data_));
  }
}

TEST_F(SemanticsTest, RangesOfALargeFileAreByteExact) {
  const std::string big = PseudoRandomBytes(8 << 20, 31);
  ASSERT_TRUE(root_.WriteFile("big.bin", big));
  const uint64_t size = big.size();
  struct Case {
    std::string range;
    uint64_t first;
    uint64_t last;
  };
  const Case cases[] = {
      {"bytes=3000000-5999999", 3000000, 5999999},
      {"bytes=4194303-4194304", 4194303, 4194304},
      {"bytes=-65537", size - 65537, size - 1},
      {"bytes=8000000-", 8000000, size - 1},
  };
  HttpConnection c;
  ASSERT_TRUE(Connect(&c));
  for (const Case& k : cases) {
    SCOPED_TRACE(k.range);
    ASSERT_TRUE(c.Send(MakeRequest("GET", "/big.bin", "Range: " + k.range + "\r\n")));
    const std::optional<HttpResponse> r = c.ReadResponse("GET", Millis(30000));
    ASSERT_TRUE(r) << c.last_error();
    ExpectSinglePart(*r, big, k.first, k.last);
  }
  // Several spliced parts of the big file in one response.
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/big.bin", "Range: bytes=7000000-7199999,1-100000\r\n")));
  const std::optional<HttpResponse> r = c.ReadResponse("GET", Millis(30000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 206) << r->Describe();
  std::vector<Part> parts;
  ASSERT_TRUE(ParseMultipart(*r, &parts)) << r->Describe();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].content_type, "application/octet-stream");
  EXPECT_EQ(parts[0].content_range, ContentRange(7000000, 7199999, size));
  EXPECT_TRUE(BytesEqual(parts[0].bytes, std::string_view(big).substr(7000000, 200000)));
  EXPECT_EQ(parts[1].content_range, ContentRange(1, 100000, size));
  EXPECT_TRUE(BytesEqual(parts[1].bytes, std::string_view(big).substr(1, 100000)));
}

// -------------------------------------------------------- conditionals --

TEST_F(SemanticsTest, IfNoneMatchGives304AndKeepsTheConnection) {
  const auto [etag, last_modified] = Validators("/data.txt");
  ASSERT_FALSE(etag.empty());
  HttpConnection c;
  ASSERT_TRUE(Connect(&c));
  for (const char* method : {"GET", "HEAD"}) {
    SCOPED_TRACE(method);
    ASSERT_TRUE(c.Send(MakeRequest(method, "/data.txt", "If-None-Match: " + etag + "\r\n")));
    const std::optional<HttpResponse> r = c.ReadResponse(method);
    ASSERT_TRUE(r) << c.last_error();
    EXPECT_EQ(r->status, 304) << r->Describe();
    EXPECT_EQ(r->Header("ETag"), etag);
    EXPECT_EQ(r->Header("Last-Modified"), last_modified);
    std::time_t date = 0;
    EXPECT_TRUE(ParseImfFixdate(r->Header("Date").value_or(""), &date)) << r->Describe();
    // A 304 has no body (RFC 9110 §15.4.5); a Content-Length, if any, is the 200's.
    if (r->HasHeader("Content-Length")) {
      EXPECT_EQ(r->Header("Content-Length"), "1000");
    }
    EXPECT_FALSE(r->HasHeader("Content-Range"));
    // Vary is sent on a 304 when the 200 would carry it (§15.4.5).
    EXPECT_TRUE(r->HeaderHasToken("Vary", "Accept-Encoding")) << r->Describe();
    EXPECT_FALSE(r->HeaderHasToken("Connection", "close")) << r->Describe();
    EXPECT_TRUE(c.ExpectNoData(Millis(200))) << c.last_error();
  }
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/data.txt")));
  const std::optional<HttpResponse> after = c.ReadResponse();
  ASSERT_TRUE(after) << c.last_error();
  ExpectWhole(*after, data_);
}

TEST_F(SemanticsTest, IfNoneMatchForms) {
  const auto [etag, last_modified] = Validators("/data.txt");
  struct Case {
    std::string value;
    int status;
  };
  const Case cases[] = {
      {"*", 304},
      {"W/" + etag, 304},  // Weak comparison (RFC 9110 §13.1.2).
      {"\"x\", " + etag, 304},
      {"\"x\", \"y\"", 200},
      {"\"0-0-0\"", 200},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("If-None-Match: " + c.value);
    const std::optional<HttpResponse> r = Get("/data.txt", "If-None-Match: " + c.value + "\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->Describe();
    if (c.status == 200) {
      EXPECT_TRUE(BytesEqual(r->body, data_));
    }
  }
}

TEST_F(SemanticsTest, IfModifiedSince) {
  struct Case {
    std::string value;
    int status;
  };
  const Case cases[] = {
      {FormatImfFixdate(kFixedMtime), 304},
      {FormatImfFixdate(kFixedMtime + 86400), 304},
      {FormatImfFixdate(kFixedMtime - 1), 200},
      {"Thursday, 04-Mar-21 05:06:07 GMT", 304},  // RFC 850 form (§5.6.7).
      {"garbage", 200},
      {"", 200},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("If-Modified-Since: " + c.value);
    const std::optional<HttpResponse> r =
        Get("/fixed.txt", "If-Modified-Since: " + c.value + "\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status) << r->Describe();
    if (c.status == 200) ExpectWhole(*r, data_);
  }
  // If-None-Match takes precedence: a non-matching tag beats a matching date.
  const std::optional<HttpResponse> r =
      Get("/fixed.txt",
          "If-None-Match: \"x\"\r\nIf-Modified-Since: " + FormatImfFixdate(kFixedMtime) + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->Describe();
}

TEST_F(SemanticsTest, IfMatchAndIfUnmodifiedSince) {
  const auto [etag, last_modified] = Validators("/fixed.txt");
  struct Case {
    std::string fields;
    int status;
  };
  const Case cases[] = {
      {"If-Match: " + etag + "\r\n", 200},
      {"If-Match: *\r\n", 200},
      {"If-Match: \"0-0-0\"\r\n", 412},
      {"If-Match: W/" + etag + "\r\n", 412},  // Strong comparison (§13.1.1).
      {"If-Unmodified-Since: " + FormatImfFixdate(kFixedMtime - 1) + "\r\n", 412},
      {"If-Unmodified-Since: " + last_modified + "\r\n", 200},
      {"If-Unmodified-Since: garbage\r\n", 200},
      // If-Match present: If-Unmodified-Since is not evaluated (§13.2.2).
      {"If-Match: " + etag + "\r\nIf-Unmodified-Since: " + FormatImfFixdate(kFixedMtime - 1) +
           "\r\n",
       200},
      // Step 1 before step 3.
      {"If-Match: \"0-0-0\"\r\nIf-None-Match: " + etag + "\r\n", 412},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fields);
    const std::optional<HttpResponse> r = Get("/fixed.txt", c.fields);
    ASSERT_TRUE(r);
    if (c.status == 412) {
      EXPECT_TRUE(IsErrorResponse(*r, 412)) << r->Describe();
    } else {
      ExpectWhole(*r, data_);
    }
  }
}

TEST_F(SemanticsTest, DuplicateRangeOrConditionalIs400AndClose) {
  const auto [etag, last_modified] = Validators("/data.txt");
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Range: bytes=0-1\r\nRange: bytes=2-3\r\n"),
                        400);
  ExpectStatusThenClose(
      MakeRequest("GET", "/data.txt", "If-None-Match: " + etag + "\r\nIf-None-Match: \"x\"\r\n"),
      400);
}

TEST_F(SemanticsTest, CacheControlFlagOn200And304) {
  const std::optional<HttpResponse> plain = Get("/data.txt");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->HasHeader("Cache-Control")) << plain->Describe();

  ASSERT_TRUE(StartOther({"--cache_control=max-age=60"}));
  const std::optional<HttpResponse> ok = FetchFrom(other_, MakeRequest("GET", "/data.txt"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->Header("Cache-Control"), "max-age=60") << ok->Describe();
  const std::optional<HttpResponse> not_modified =
      FetchFrom(other_, MakeRequest("GET", "/data.txt",
                                    "If-None-Match: " + ok->Header("ETag").value_or("") + "\r\n"));
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304) << not_modified->Describe();
  EXPECT_EQ(not_modified->Header("Cache-Control"), "max-age=60") << not_modified->Describe();
  const std::optional<HttpResponse> partial =
      FetchFrom(other_, MakeRequest("GET", "/data.txt", "Range: bytes=0-0\r\n"));
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->status, 206);
  EXPECT_EQ(partial->Header("Cache-Control"), "max-age=60") << partial->Describe();
}

// ------------------------------------------------------ precompressed --

TEST_F(SemanticsTest, PrecompressedSiblingsAreNegotiated) {
  struct Case {
    const char* accept_encoding;  // nullptr: no field.
    const char* coding;           // nullptr: identity.
  };
  const Case cases[] = {
      {"gzip, br", "br"},
      {"br", "br"},
      {"gzip", "gzip"},
      {"x-gzip", "gzip"},
      {"br;q=0.1, gzip;q=0.9", "gzip"},
      {"br;q=0.5, gzip", "gzip"},
      {"*", "br"},
      {"zstd", "zstd"},
      {"gzip, zstd", "zstd"},
      {"gzip, deflate, br, zstd", "br"},
      {"br;q=0.9, ZSTD", "zstd"},
      {"zstd;q=0, gzip", "gzip"},
      {"gzip;q=0, br;q=0", nullptr},
      {"gzip;q=0, br;q=0, zstd;q=0", nullptr},
      {"identity", nullptr},
      {"deflate", nullptr},
      {"", nullptr},
      {nullptr, nullptr},
  };
  std::vector<std::string> etags;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.accept_encoding ? c.accept_encoding : "(no Accept-Encoding)");
    const std::string fields =
        c.accept_encoding ? std::string("Accept-Encoding: ") + c.accept_encoding + "\r\n" : "";
    const std::optional<HttpResponse> r = Get("/foo.txt", fields);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_EQ(r->Header("Content-Type"), kTextType) << r->Describe();
    EXPECT_TRUE(r->HeaderHasToken("Vary", "Accept-Encoding")) << r->Describe();
    const std::string coding = c.coding ? c.coding : "";
    if (coding.empty()) {
      EXPECT_FALSE(r->HasHeader("Content-Encoding")) << r->Describe();
      EXPECT_EQ(r->body, kFooIdentity);
    } else {
      EXPECT_EQ(r->Header("Content-Encoding"), coding) << r->Describe();
      EXPECT_TRUE(BytesEqual(r->body, coding == "br" ? br_ : coding == "zstd" ? zst_ : gz_));
    }
    etags.push_back(coding + "=" + r->Header("ETag").value_or(""));
  }
  // One ETag per representation (RFC 9110 §8.8.3): br, zstd, gzip and
  // identity differ.
  std::sort(etags.begin(), etags.end());
  etags.erase(std::unique(etags.begin(), etags.end()), etags.end());
  ASSERT_EQ(etags.size(), 4u) << ::testing::PrintToString(etags);
  std::vector<std::string> values;
  for (const std::string& e : etags) values.push_back(e.substr(e.find('=') + 1));
  std::sort(values.begin(), values.end());
  EXPECT_EQ(std::unique(values.begin(), values.end()), values.end())
      << ::testing::PrintToString(etags);
}

TEST_F(SemanticsTest, PrecompressedFallsBackToWhatExists) {
  // Only a .gz sibling: br is not available, gzip is.
  const std::optional<HttpResponse> br_only = Get("/gzonly.txt", "Accept-Encoding: br\r\n");
  ASSERT_TRUE(br_only);
  EXPECT_FALSE(br_only->HasHeader("Content-Encoding")) << br_only->Describe();
  EXPECT_EQ(br_only->body, kFooIdentity);
  const std::optional<HttpResponse> both = Get("/gzonly.txt", "Accept-Encoding: br, gzip\r\n");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->Header("Content-Encoding"), "gzip") << both->Describe();
  EXPECT_TRUE(BytesEqual(both->body, gz_));
  // A directory named like a sibling is skipped.
  const std::optional<HttpResponse> dir = Get("/dirsib.txt", "Accept-Encoding: br, gzip\r\n");
  ASSERT_TRUE(dir);
  EXPECT_EQ(dir->Header("Content-Encoding"), "gzip") << dir->Describe();
  EXPECT_TRUE(BytesEqual(dir->body, gz_));
}

TEST_F(SemanticsTest, PrecompressedRepresentationSupportsHeadRangesAndConditionals) {
  const std::string gzip = "Accept-Encoding: gzip\r\n";
  const std::optional<HttpResponse> head = Fetch(MakeRequest("HEAD", "/foo.txt", gzip), "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->Header("Content-Length"), std::to_string(gz_.size())) << head->Describe();
  EXPECT_EQ(head->Header("Content-Encoding"), "gzip");

  // A range selects bytes of the gzip representation (RFC 9110 §14.1.2).
  const std::optional<HttpResponse> part = Get("/foo.txt", gzip + "Range: bytes=2-9\r\n");
  ASSERT_TRUE(part);
  ExpectSinglePart(*part, gz_, 2, 9);
  EXPECT_EQ(part->Header("Content-Encoding"), "gzip");
  EXPECT_EQ(part->Header("Content-Type"), kTextType);

  // Validators belong to the representation.
  const std::string gz_etag = head->Header("ETag").value_or("");
  const std::optional<HttpResponse> same =
      Get("/foo.txt", gzip + "If-None-Match: " + gz_etag + "\r\n");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 304) << same->Describe();
  EXPECT_EQ(same->Header("ETag"), gz_etag);
  const std::optional<HttpResponse> other =
      Get("/foo.txt", "Accept-Encoding: br\r\nIf-None-Match: " + gz_etag + "\r\n");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 200) << other->Describe();
  EXPECT_TRUE(BytesEqual(other->body, br_));
  const std::optional<HttpResponse> if_range =
      Get("/foo.txt", "Accept-Encoding: br\r\nRange: bytes=0-1\r\nIf-Range: " + gz_etag + "\r\n");
  ASSERT_TRUE(if_range);
  EXPECT_EQ(if_range->status, 200) << "If-Range with the gzip ETag on the br representation";
}

TEST_F(SemanticsTest, ZstdRepresentationHasItsOwnValidatorRangesAndVary) {
  const std::string zstd = "Accept-Encoding: zstd\r\n";
  const std::optional<HttpResponse> full = Get("/foo.txt", zstd);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 200) << full->Describe();
  EXPECT_EQ(full->Header("Content-Encoding"), "zstd") << full->Describe();
  EXPECT_EQ(full->Header("Content-Type"), kTextType);
  EXPECT_TRUE(full->HeaderHasToken("Vary", "Accept-Encoding")) << full->Describe();
  EXPECT_TRUE(BytesEqual(full->body, zst_));
  const std::string zst_etag = full->Header("ETag").value_or("");
  ASSERT_GE(zst_etag.size(), 6u);
  EXPECT_EQ(zst_etag.substr(zst_etag.size() - 5), "-zst\"") << zst_etag;

  const std::optional<HttpResponse> head = Fetch(MakeRequest("HEAD", "/foo.txt", zstd), "HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->Header("Content-Length"), std::to_string(zst_.size())) << head->Describe();
  EXPECT_EQ(head->Header("ETag"), zst_etag);

  // 304 for the zstd tag, with the representation's validator and Vary.
  const std::optional<HttpResponse> same =
      Get("/foo.txt", zstd + "If-None-Match: " + zst_etag + "\r\n");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 304) << same->Describe();
  EXPECT_EQ(same->Header("ETag"), zst_etag);
  EXPECT_TRUE(same->HeaderHasToken("Vary", "Accept-Encoding")) << same->Describe();
  // The zstd tag does not validate the gzip representation.
  const std::optional<HttpResponse> gzip =
      Get("/foo.txt", "Accept-Encoding: gzip\r\nIf-None-Match: " + zst_etag + "\r\n");
  ASSERT_TRUE(gzip);
  EXPECT_EQ(gzip->status, 200) << gzip->Describe();
  EXPECT_EQ(gzip->Header("Content-Encoding"), "gzip");

  // A range selects bytes of the zstd representation (RFC 9110 §14.1.2).
  const std::optional<HttpResponse> part = Get("/foo.txt", zstd + "Range: bytes=3-40\r\n");
  ASSERT_TRUE(part);
  ExpectSinglePart(*part, zst_, 3, 40);
  EXPECT_EQ(part->Header("Content-Encoding"), "zstd");
  EXPECT_EQ(part->Header("ETag"), zst_etag);
  const std::optional<HttpResponse> if_range =
      Get("/foo.txt", zstd + "Range: bytes=0-1\r\nIf-Range: " + zst_etag + "\r\n");
  ASSERT_TRUE(if_range);
  EXPECT_EQ(if_range->status, 206) << if_range->Describe();

  // Only a .zst sibling: served to a client that takes zstd, identity to others.
  const std::optional<HttpResponse> only =
      Get("/zstonly.txt", "Accept-Encoding: br, gzip, zstd\r\n");
  ASSERT_TRUE(only);
  EXPECT_EQ(only->Header("Content-Encoding"), "zstd") << only->Describe();
  EXPECT_TRUE(BytesEqual(only->body, zst_));
  const std::optional<HttpResponse> no_zstd = Get("/zstonly.txt", "Accept-Encoding: br, gzip\r\n");
  ASSERT_TRUE(no_zstd);
  EXPECT_FALSE(no_zstd->HasHeader("Content-Encoding")) << no_zstd->Describe();
  EXPECT_EQ(no_zstd->body, kFooIdentity);
}

TEST_F(SemanticsTest, PrecompressedOffMeansIdentityWithoutVary) {
  ASSERT_TRUE(StartOther({"--precompressed=false"}));
  for (const char* ae : {"gzip, br", "gzip", "br", "zstd", "*"}) {
    SCOPED_TRACE(ae);
    const std::optional<HttpResponse> r = FetchFrom(
        other_, MakeRequest("GET", "/foo.txt", std::string("Accept-Encoding: ") + ae + "\r\n"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_EQ(r->body, kFooIdentity);
    EXPECT_FALSE(r->HasHeader("Content-Encoding")) << r->Describe();
    EXPECT_FALSE(r->HasHeader("Vary")) << r->Describe();
  }
}

// ------------------------------------------------------------ methods --

TEST_F(SemanticsTest, OptionsIs204WithAllow) {
  HttpConnection c;
  ASSERT_TRUE(Connect(&c));
  for (const char* target : {"*", "/data.txt", "/missing"}) {
    SCOPED_TRACE(target);
    ASSERT_TRUE(c.Send(MakeRequest("OPTIONS", target)));
    const std::optional<HttpResponse> r = c.ReadResponse("OPTIONS");
    ASSERT_TRUE(r) << c.last_error();
    EXPECT_EQ(r->status, 204) << r->Describe();
    EXPECT_EQ(r->Header("Allow"), "GET, HEAD, OPTIONS") << r->Describe();
    EXPECT_TRUE(c.ExpectNoData(Millis(100))) << c.last_error();
  }
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/data.txt")));
  const std::optional<HttpResponse> r = c.ReadResponse();
  ASSERT_TRUE(r) << c.last_error();
  ExpectWhole(*r, data_);
}

TEST_F(SemanticsTest, OtherMethods) {
  struct Case {
    const char* method;
    int status;
  };
  const Case cases[] = {{"POST", 405},  {"PUT", 405},  {"DELETE", 405}, {"PATCH", 405},
                        {"TRACE", 405}, {"BREW", 501}, {"get", 501},    {"PROPFIND", 501}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method);
    const std::optional<HttpResponse> r = Fetch(MakeRequest(c.method, "/data.txt"));
    ASSERT_TRUE(r);
    EXPECT_TRUE(IsErrorResponse(*r, c.status)) << r->Describe();
    if (c.status == 405) {
      EXPECT_EQ(r->Header("Allow"), "GET, HEAD, OPTIONS") << r->Describe();
    }
  }
}

// ------------------------------------------------------------ framing --

TEST_F(SemanticsTest, TransferEncodingIsRefused) {
  // Both framings at once: request smuggling territory (RFC 9112 §6.3).
  ExpectStatusThenClose(
      MakeRequest("GET", "/data.txt", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") +
          "0\r\n\r\n",
      400);
  // Transfer-Encoding did not exist in HTTP/1.0 (RFC 9112 §6.1).
  ExpectStatusThenClose("GET /data.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                        400);
  // A chunked body is never decoded: 413, close, and the bytes after the
  // head (which hide a request) are not answered.
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Transfer-Encoding: chunked\r\n") +
                            "2a\r\n" + MakeRequest("GET", "/style.css") + "\r\n0\r\n\r\n" +
                            MakeRequest("GET", "/data.txt"),
                        413);
  // An unknown transfer coding: 501 (RFC 9112 §6.1).
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Transfer-Encoding: gzip\r\n"), 501);
}

TEST_F(SemanticsTest, ContentLengthErrors) {
  ExpectStatusThenClose(
      MakeRequest("GET", "/data.txt", "Content-Length: 5\r\nContent-Length: 5\r\n") + "hello", 400);
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Content-Length: 5, 5\r\n") + "hello", 400);
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Content-Length: -1\r\n"), 400);
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Content-Length: +5\r\n") + "hello", 400);
}

TEST_F(SemanticsTest, SmallBodyOnGetIsSkipped) {
  // The body looks like a request; it must be skipped, not answered.
  const std::string hidden = MakeRequest("GET", "/missing-hidden");
  const std::string first =
      MakeRequest("GET", "/data.txt", "Content-Length: " + std::to_string(hidden.size()) + "\r\n");
  for (bool split : {false, true}) {
    SCOPED_TRACE(split ? "body sent later" : "all at once");
    HttpConnection c;
    ASSERT_TRUE(Connect(&c));
    if (split) {
      ASSERT_TRUE(c.Send(first));
      std::this_thread::sleep_for(Millis(100));
      ASSERT_TRUE(c.Send(hidden.substr(0, 10)));
      std::this_thread::sleep_for(Millis(50));
      ASSERT_TRUE(c.Send(hidden.substr(10) + MakeRequest("GET", "/style.css")));
    } else {
      ASSERT_TRUE(c.Send(first + hidden + MakeRequest("GET", "/style.css")));
    }
    const std::optional<HttpResponse> r1 = c.ReadResponse();
    ASSERT_TRUE(r1) << c.last_error();
    ExpectWhole(*r1, data_);
    const std::optional<HttpResponse> r2 = c.ReadResponse();
    ASSERT_TRUE(r2) << c.last_error();
    EXPECT_EQ(r2->status, 200) << r2->Describe();
    EXPECT_EQ(r2->body, "body { margin: 0; }\n");
    EXPECT_TRUE(c.ExpectNoData(Millis(200))) << c.last_error();
  }
}

TEST_F(SemanticsTest, Expectations) {
  // 100-continue without a body: nothing to wait for, a plain 200.
  HttpConnection c;
  ASSERT_TRUE(Connect(&c));
  ASSERT_TRUE(c.Send(MakeRequest("GET", "/data.txt", "Expect: 100-continue\r\n")));
  const std::optional<HttpResponse> r = c.ReadResponse();
  ASSERT_TRUE(r) << c.last_error();
  ExpectWhole(*r, data_);
  EXPECT_TRUE(c.ExpectNoData(Millis(100))) << c.last_error();

  // 100-continue with a body that never comes: answered at once, then closed.
  HttpConnection waiting;
  ASSERT_TRUE(Connect(&waiting));
  ASSERT_TRUE(waiting.Send(
      MakeRequest("GET", "/data.txt", "Expect: 100-continue\r\nContent-Length: 10\r\n")));
  const std::optional<HttpResponse> w = waiting.ReadResponse("GET", Millis(5000));
  ASSERT_TRUE(w) << waiting.last_error();
  ExpectWhole(*w, data_);
  EXPECT_TRUE(w->HeaderHasToken("Connection", "close")) << w->Describe();
  EXPECT_TRUE(waiting.WaitForClose(kCloseTimeout)) << waiting.last_error();

  // Any other expectation: 417 (RFC 9110 §10.1.1).
  ExpectStatusThenClose(MakeRequest("GET", "/data.txt", "Expect: something\r\n"), 417);
}

TEST_F(SemanticsTest, MalformedFieldLinesAre400AndClose) {
  const std::string cases[] = {
      // obs-fold (RFC 9112 §5.2).
      "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n",
      // Space before the colon (RFC 9112 §5.1).
      "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nRange : bytes=0-1\r\n\r\n",
      // Bare CR in a field value and in the request line (RFC 9112 §2.2).
      "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n",
      "GET /data.txt\r HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "GET /data.txt HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\r\n\r\n",
      // No Host on HTTP/1.1, or two (RFC 9112 §3.2).
      "GET /data.txt HTTP/1.1\r\n\r\n",
      "GET /data.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
  };
  for (const std::string& raw : cases) ExpectStatusThenClose(raw, 400);
}

TEST_F(SemanticsTest, MimeTypesFileOverridesAndExtends) {
  TestRoot conf("sluice-mime-");
  ASSERT_TRUE(conf.ok());
  ASSERT_TRUE(conf.WriteFile("mime.types",
                             "# test types\n"
                             "types {\n"
                             "    text/x-test                txt;\n"
                             "    application/x-sluice-test  sluicetest;\n"
                             "}\n"));
  ASSERT_TRUE(StartOther({"--mime_types=" + conf.Path("mime.types")}));
  struct Case {
    const char* target;
    const char* media_type;
  };
  const Case cases[] = {
      {"/data.txt", "text/x-test"},
      {"/thing.sluicetest", "application/x-sluice-test"},
      {"/style.css", "text/css"},  // Built-in entries stay.
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    const std::optional<HttpResponse> r = FetchFrom(other_, MakeRequest("GET", c.target));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->Describe();
    EXPECT_EQ(MediaType(r->Header("Content-Type").value_or("")), c.media_type) << r->Describe();
  }
  // text/* from the file gets the charset like the built-in text types (mime.h).
  const std::optional<HttpResponse> txt = FetchFrom(other_, MakeRequest("GET", "/data.txt"));
  ASSERT_TRUE(txt);
  EXPECT_EQ(txt->Header("Content-Type"), "text/x-test; charset=utf-8");
  // Multipart parts carry the overridden type too.
  const std::optional<HttpResponse> multi =
      FetchFrom(other_, MakeRequest("GET", "/data.txt", "Range: bytes=0-0,2-2\r\n"));
  ASSERT_TRUE(multi);
  std::vector<Part> parts;
  ASSERT_TRUE(ParseMultipart(*multi, &parts)) << multi->Describe();
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(MediaType(parts[0].content_type), "text/x-test");
  // The default server still says text/plain.
  const std::optional<HttpResponse> plain = Get("/data.txt");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->Header("Content-Type"), kTextType);
}

}  // namespace
}  // namespace sluice::test
