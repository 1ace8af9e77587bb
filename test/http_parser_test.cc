// Unit tests for the resumable request-head parser (RFC 9112 §2-§5).
#include "sluice/http/http_parser.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

using namespace std::string_view_literals;
using Status = RequestParser::Status;

// Names parameterised tests after the table entry.
struct CaseName {
  template <typename T>
  std::string operator()(const testing::TestParamInfo<T>& param_info) const {
    return param_info.param.name;
  }
};

constexpr size_t kFieldCount = static_cast<size_t>(Field::kCount);

// Compares everything the parser extracts; both requests must come from the
// same bytes (string_view comparison is by content).
void ExpectSameRequest(const Request& want, const Request& got) {
  EXPECT_EQ(want.method, got.method);
  EXPECT_EQ(want.method_text, got.method_text);
  EXPECT_EQ(want.target, got.target);
  EXPECT_EQ(want.version_minor, got.version_minor);
  for (size_t i = 0; i < kFieldCount; ++i) {
    SCOPED_TRACE(testing::Message() << "field index " << i);
    EXPECT_EQ(want.field(static_cast<Field>(i)), got.field(static_cast<Field>(i)));
    EXPECT_EQ(want.field_counts[i], got.field_counts[i]);
  }
  EXPECT_EQ(want.connection_close, got.connection_close);
  EXPECT_EQ(want.connection_keep_alive, got.connection_keep_alive);
  EXPECT_EQ(want.content_length, got.content_length);
  EXPECT_EQ(want.head_bytes, got.head_bytes);
  EXPECT_EQ(want.KeepAlive(), got.KeepAlive());
}

// ---------------------------------------------------------------------------
// Valid requests.

struct ValidCase {
  const char* name;
  std::string_view raw;
  Method method;
  std::string_view method_text;
  std::string_view target;
  int version_minor;
  bool keep_alive;
  size_t trailing = 0;  // Bytes after the head (body or next request).
};

const ValidCase kValidCases[] = {
    {"SimpleGet", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", Method::kGet, "GET", "/", 1, true},
    {"Head", "HEAD /index.html HTTP/1.1\r\nHost: h\r\n\r\n", Method::kHead, "HEAD", "/index.html",
     1, true},
    {"OptionsAsterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", Method::kOptions, "OPTIONS", "*",
     1, true},
    {"Post", "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", Method::kPost, "POST",
     "/f", 1, true, 5},
    {"Put", "PUT /f HTTP/1.1\r\nHost: h\r\n\r\n", Method::kPut, "PUT", "/f", 1, true},
    {"Delete", "DELETE /f HTTP/1.1\r\nHost: h\r\n\r\n", Method::kDelete, "DELETE", "/f", 1, true},
    {"Patch", "PATCH /f HTTP/1.1\r\nHost: h\r\n\r\n", Method::kPatch, "PATCH", "/f", 1, true},
    {"Trace", "TRACE /f HTTP/1.1\r\nHost: h\r\n\r\n", Method::kTrace, "TRACE", "/f", 1, true},
    {"Connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     Method::kConnect, "CONNECT", "example.com:443", 1, true},
    {"UnknownTokenMethod", "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", Method::kUnknown, "BREW",
     "/pot", 1, true},
    {"UnknownMethodWithTcharPunctuation", "M-SEARCH! * HTTP/1.1\r\nHost: h\r\n\r\n",
     Method::kUnknown, "M-SEARCH!", "*", 1, true},
    {"MethodIsCaseSensitive", "get / HTTP/1.1\r\nHost: h\r\n\r\n", Method::kUnknown, "get", "/", 1,
     true},
    {"OriginFormWithQuery", "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n", Method::kGet, "GET",
     "/a/b?x=1&y=%20", 1, true},
    {"AbsoluteForm", "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
     Method::kGet, "GET", "http://example.com/a?b", 1, true},
    {"Http10NoHost", "GET / HTTP/1.0\r\n\r\n", Method::kGet, "GET", "/", 0, false},
    {"Http10WithHost", "GET / HTTP/1.0\r\nHost: h\r\n\r\n", Method::kGet, "GET", "/", 0, false},
    {"Http10KeepAlive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Method::kGet, "GET",
     "/", 0, true},
    {"Http10KeepAliveTokenList", "GET / HTTP/1.0\r\nConnection: Keep-Alive, Upgrade\r\n\r\n",
     Method::kGet, "GET", "/", 0, true},
    {"Http10KeepAliveAndClose", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
     Method::kGet, "GET", "/", 0, false},
    {"Http10Close", "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", Method::kGet, "GET", "/", 0,
     false},
    {"Http11Close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", Method::kGet, "GET",
     "/", 1, false},
    {"Http11CloseUpperCase", "GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", Method::kGet,
     "GET", "/", 1, false},
    {"Http11CloseInTokenList", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade ,\tclose \r\n\r\n",
     Method::kGet, "GET", "/", 1, false},
    {"Http11CloseInSecondConnectionField",
     "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nConnection: close\r\n\r\n", Method::kGet,
     "GET", "/", 1, false},
    {"Http11KeepAliveTokenList",
     "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, Upgrade\r\n\r\n", Method::kGet, "GET",
     "/", 1, true},
    {"Http11NotCloseLookalike", "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, xclose\r\n\r\n",
     Method::kGet, "GET", "/", 1, true},
    {"Http12TreatedAs11", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", Method::kGet, "GET", "/", 2, true},
    {"Http19TreatedAs11", "GET / HTTP/1.9\r\nHost: h\r\n\r\n", Method::kGet, "GET", "/", 9, true},
    {"LeadingEmptyLinesCrlf", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Method::kGet, "GET", "/",
     1, true},
    {"LeadingEmptyLinesLf", "\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Method::kGet, "GET", "/", 1,
     true},
    {"LfOnly", "GET /x HTTP/1.1\nHost: h\nUser-Agent: t\n\n", Method::kGet, "GET", "/x", 1, true},
    {"MixedLineEndings", "GET /x HTTP/1.1\r\nHost: h\nAccept: */*\r\n\n", Method::kGet, "GET", "/x",
     1, true},
    {"HeaderNamesCaseInsensitive", "GET / HTTP/1.1\r\nhOsT: h\r\nCONNECTION: close\r\n\r\n",
     Method::kGet, "GET", "/", 1, false},
    {"OwsTrimmed", "GET / HTTP/1.1\r\nHost: \t h \t\r\n\r\n", Method::kGet, "GET", "/", 1, true},
    {"NoOws", "GET / HTTP/1.1\r\nHost:h\r\n\r\n", Method::kGet, "GET", "/", 1, true},
    {"UnknownFieldsSkipped",
     "GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nAccept-Language: en, fr;q=0.5\r\nX-Empty:\r\n\r\n",
     Method::kGet, "GET", "/", 1, true},
    {"ObsTextInValue", "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: caf\xc3\xa9 \xff\r\n\r\n",
     Method::kGet, "GET", "/", 1, true},
    {"TokenPunctuationInFieldName", "GET / HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+-.^_`|~: v\r\n\r\n",
     Method::kGet, "GET", "/", 1, true},
    {"TransferEncodingOnHttp11", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
     Method::kPost, "POST", "/", 1, true},
    {"PipelinedBytesAfterHead",
     "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", Method::kGet, "GET",
     "/1", 1, true, 28},
};

void PrintTo(const ValidCase& c, std::ostream* os) {
  *os << testing::PrintToString(std::string(c.raw));
}

class ParserValidTest : public testing::TestWithParam<ValidCase> {};

TEST_P(ParserValidTest, ParsesWholeBuffer) {
  const ValidCase& c = GetParam();
  RequestParser parser;
  ASSERT_EQ(parser.Feed(c.raw.data(), c.raw.size()), Status::kDone) << parser.error_reason();
  const Request& r = parser.request();
  EXPECT_EQ(r.method, c.method);
  EXPECT_EQ(r.method_text, c.method_text);
  EXPECT_EQ(r.target, c.target);
  EXPECT_EQ(r.version_minor, c.version_minor);
  EXPECT_EQ(r.KeepAlive(), c.keep_alive);
  EXPECT_EQ(r.head_bytes, c.raw.size() - c.trailing);
  EXPECT_EQ(parser.error_status(), 0);
  EXPECT_FALSE(parser.in_request_line());
  // The views point into the caller's buffer, not into a copy.
  EXPECT_GE(r.target.data(), c.raw.data());
  EXPECT_LE(r.target.data() + r.target.size(), c.raw.data() + c.raw.size());
}

// Feeding [0,k) and then [0,n) (same pointer, longer length) must give the
// same request as feeding [0,n) at once, for every k.
TEST_P(ParserValidTest, EverySplitPointGivesSameResult) {
  const ValidCase& c = GetParam();
  // A copy with no spare bytes behind it, so a read past `len` is caught by ASan.
  const std::vector<char> buf(c.raw.begin(), c.raw.end());
  RequestParser whole;
  ASSERT_EQ(whole.Feed(buf.data(), buf.size()), Status::kDone);
  const size_t head = whole.request().head_bytes;
  for (size_t k = 0; k < head; ++k) {
    SCOPED_TRACE(testing::Message() << "split at " << k);
    RequestParser parser;
    ASSERT_EQ(parser.Feed(buf.data(), k), Status::kNeedMore) << parser.error_reason();
    ASSERT_EQ(parser.Feed(buf.data(), buf.size()), Status::kDone) << parser.error_reason();
    ExpectSameRequest(whole.request(), parser.request());
  }
}

TEST_P(ParserValidTest, OneByteAtATime) {
  const ValidCase& c = GetParam();
  const std::vector<char> buf(c.raw.begin(), c.raw.end());
  RequestParser whole;
  ASSERT_EQ(whole.Feed(buf.data(), buf.size()), Status::kDone);
  const size_t head = whole.request().head_bytes;
  RequestParser parser;
  for (size_t k = 0; k < head; ++k) {
    ASSERT_EQ(parser.Feed(buf.data(), k), Status::kNeedMore)
        << "at " << k << ": " << parser.error_reason();
  }
  ASSERT_EQ(parser.Feed(buf.data(), head), Status::kDone) << parser.error_reason();
  ExpectSameRequest(whole.request(), parser.request());
}

INSTANTIATE_TEST_SUITE_P(Table, ParserValidTest, testing::ValuesIn(kValidCases), CaseName());

TEST(ParserFieldsTest, KnownFieldsExtractedAndCounted) {
  constexpr std::string_view kRaw =
      "GET /f HTTP/1.1\r\n"
      "Host: example.com:8080\r\n"
      "User-Agent: test/1.0\r\n"
      "Range: bytes=0-99\r\n"
      "If-Range: \"abc\"\r\n"
      "If-Match: \"m\"\r\n"
      "If-None-Match: \"a\", \"b\"\r\n"
      "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
      "If-Unmodified-Since: Mon, 07 Nov 1994 08:49:37 GMT\r\n"
      "Accept-Encoding: gzip\r\n"
      "accept-encoding: br\r\n"
      "Referer: http://r/\r\n"
      "Expect: 100-continue\r\n"
      "X-Other: ignored\r\n"
      "\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kRaw.data(), kRaw.size()), Status::kDone) << parser.error_reason();
  const Request& r = parser.request();
  EXPECT_EQ(r.field(Field::kHost), "example.com:8080");
  EXPECT_EQ(r.field(Field::kUserAgent), "test/1.0");
  EXPECT_EQ(r.field(Field::kRange), "bytes=0-99");
  EXPECT_EQ(r.field(Field::kIfRange), "\"abc\"");
  EXPECT_EQ(r.field(Field::kIfMatch), "\"m\"");
  EXPECT_EQ(r.field(Field::kIfNoneMatch), "\"a\", \"b\"");
  EXPECT_EQ(r.field(Field::kIfModifiedSince), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(r.field(Field::kIfUnmodifiedSince), "Mon, 07 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(r.field(Field::kAcceptEncoding), "br");  // Last value wins.
  EXPECT_EQ(r.field_count(Field::kAcceptEncoding), 2);
  EXPECT_EQ(r.field(Field::kReferer), "http://r/");
  EXPECT_EQ(r.field(Field::kExpect), "100-continue");
  EXPECT_EQ(r.field_count(Field::kHost), 1);
  EXPECT_EQ(r.field_count(Field::kRange), 1);
  EXPECT_TRUE(r.has(Field::kUserAgent));
  EXPECT_FALSE(r.has(Field::kConnection));
  EXPECT_FALSE(r.has(Field::kContentLength));
  EXPECT_FALSE(r.has(Field::kTransferEncoding));
  EXPECT_EQ(r.field(Field::kConnection), "");
  EXPECT_EQ(r.content_length, 0u);
  EXPECT_EQ(r.head_bytes, kRaw.size());
}

TEST(ParserFieldsTest, ForwardingFieldsKeepEveryLine) {
  constexpr std::string_view kRaw =
      "GET / HTTP/1.1\r\nHost: h\r\n"
      "X-Forwarded-For: 203.0.113.9, 10.0.0.2\r\n"
      "x-forwarded-for:10.0.0.3 \r\n"
      "Forwarded: for=192.0.2.60;proto=http\r\n"
      "X-Real-IP: 198.51.100.7\r\n"
      "\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kRaw.data(), kRaw.size()), Status::kDone) << parser.error_reason();
  const Request& r = parser.request();
  const auto xff = r.forwarding(ForwardingField::kXForwardedFor);
  ASSERT_EQ(xff.size(), 2u);
  EXPECT_EQ(xff[0], "203.0.113.9, 10.0.0.2");
  EXPECT_EQ(xff[1], "10.0.0.3");
  ASSERT_EQ(r.forwarding(ForwardingField::kForwarded).size(), 1u);
  EXPECT_EQ(r.forwarding(ForwardingField::kForwarded)[0], "for=192.0.2.60;proto=http");
  ASSERT_EQ(r.forwarding(ForwardingField::kXRealIp).size(), 1u);
  EXPECT_EQ(r.forwarding(ForwardingField::kXRealIp)[0], "198.51.100.7");
  EXPECT_FALSE(r.forwarding_overflow(ForwardingField::kXForwardedFor));
  // Reset forgets them.
  parser.Reset();
  constexpr std::string_view kPlain = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(parser.Feed(kPlain.data(), kPlain.size()), Status::kDone);
  EXPECT_TRUE(parser.request().forwarding(ForwardingField::kXForwardedFor).empty());
}

TEST(ParserFieldsTest, ForwardingFieldLinesBounded) {
  std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (size_t i = 0; i <= kForwardingLinesMax; ++i) {
    raw += "X-Forwarded-For: 10.0.0." + std::to_string(i) + "\r\n";
  }
  raw += "\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone) << parser.error_reason();
  const Request& r = parser.request();
  EXPECT_EQ(r.forwarding(ForwardingField::kXForwardedFor).size(), kForwardingLinesMax);
  EXPECT_TRUE(r.forwarding_overflow(ForwardingField::kXForwardedFor));
  EXPECT_EQ(r.forwarding(ForwardingField::kXForwardedFor)[0], "10.0.0.0");
}

TEST(ParserFieldsTest, ValueKeepsInteriorWhitespace) {
  constexpr std::string_view kRaw = "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent:  a \t b  \r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kRaw.data(), kRaw.size()), Status::kDone);
  EXPECT_EQ(parser.request().field(Field::kUserAgent), "a \t b");
}

TEST(ParserFieldsTest, EmptyKnownFieldValue) {
  constexpr std::string_view kRaw = "GET / HTTP/1.1\r\nHost: h\r\nRange:   \r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kRaw.data(), kRaw.size()), Status::kDone);
  EXPECT_TRUE(parser.request().has(Field::kRange));
  EXPECT_EQ(parser.request().field(Field::kRange), "");
}

TEST(ParserFieldsTest, ConnectionTokenFlags) {
  struct Case {
    std::string_view value;
    bool close;
    bool keep_alive;
  };
  const Case kCases[] = {
      {"close", true, false},
      {"Close", true, false},
      {"keep-alive", false, true},
      {"Keep-Alive, Upgrade", false, true},
      {"Upgrade, keep-alive", false, true},
      {"upgrade", false, false},
      {"  close  ,  keep-alive  ", true, true},
      {",,close,,", true, false},
      {"te, close", true, false},
      {"keepalive", false, false},
      {"", false, false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.value);
    const std::string raw =
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: " + std::string(c.value) + "\r\n\r\n";
    RequestParser parser;
    ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone) << parser.error_reason();
    EXPECT_EQ(parser.request().connection_close, c.close);
    EXPECT_EQ(parser.request().connection_keep_alive, c.keep_alive);
  }
}

TEST(ParserFieldsTest, KeepAliveMatrix) {
  struct Case {
    const char* version;
    const char* connection;  // nullptr: no Connection field.
    bool keep_alive;
  };
  const Case kCases[] = {
      {"HTTP/1.0", nullptr, false},     {"HTTP/1.0", "close", false},
      {"HTTP/1.0", "keep-alive", true}, {"HTTP/1.1", nullptr, true},
      {"HTTP/1.1", "close", false},     {"HTTP/1.1", "keep-alive", true},
      {"HTTP/1.1", "Keep-Alive", true}, {"HTTP/1.0", "Keep-Alive", true},
  };
  for (const Case& c : kCases) {
    std::string raw = std::string("GET / ") + c.version + "\r\nHost: h\r\n";
    if (c.connection != nullptr) raw += std::string("Connection: ") + c.connection + "\r\n";
    raw += "\r\n";
    SCOPED_TRACE(raw);
    RequestParser parser;
    ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone) << parser.error_reason();
    EXPECT_EQ(parser.request().KeepAlive(), c.keep_alive);
  }
}

TEST(ParserFieldsTest, ContentLengthParsed) {
  struct Case {
    std::string_view value;
    uint64_t expected;
  };
  const Case kCases[] = {
      {"0", 0},
      {"5", 5},
      {"  42\t", 42},
      {"000123", 123},
      {"4294967296", 4294967296ull},
      {"999999999999999999", 999999999999999999ull},  // 18 digits.
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.value);
    const std::string raw =
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::string(c.value) + "\r\n\r\n";
    RequestParser parser;
    ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone) << parser.error_reason();
    EXPECT_EQ(parser.request().field_count(Field::kContentLength), 1);
    EXPECT_EQ(parser.request().content_length, c.expected);
    EXPECT_EQ(parser.request().head_bytes, raw.size());
  }
}

TEST(ParserFieldsTest, Http1xAbove1IsTreatedAs11) {
  constexpr std::string_view kRaw = "GET / HTTP/1.7\r\nHost: h\r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kRaw.data(), kRaw.size()), Status::kDone);
  EXPECT_GE(parser.request().version_minor, 1);
  EXPECT_TRUE(parser.request().KeepAlive());
}

// ---------------------------------------------------------------------------
// Pipelining, Reset and state.

TEST(ParserPipelineTest, TwoRequestsInOneBuffer) {
  constexpr std::string_view kFirst = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
  constexpr std::string_view kSecond = "HEAD /two HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
  const std::string buf = std::string(kFirst) + std::string(kSecond);

  RequestParser parser;
  ASSERT_EQ(parser.Feed(buf.data(), buf.size()), Status::kDone);
  EXPECT_EQ(parser.request().head_bytes, kFirst.size());
  EXPECT_EQ(parser.request().method, Method::kGet);
  EXPECT_EQ(parser.request().target, "/one");
  EXPECT_EQ(parser.request().field(Field::kHost), "a");
  EXPECT_TRUE(parser.request().KeepAlive());

  const size_t used = parser.request().head_bytes;
  parser.Reset();
  ASSERT_EQ(parser.Feed(buf.data() + used, buf.size() - used), Status::kDone);
  EXPECT_EQ(parser.request().head_bytes, kSecond.size());
  EXPECT_EQ(parser.request().method, Method::kHead);
  EXPECT_EQ(parser.request().target, "/two");
  EXPECT_EQ(parser.request().field(Field::kHost), "b");
  EXPECT_EQ(parser.request().field_count(Field::kHost), 1);
  EXPECT_FALSE(parser.request().KeepAlive());
}

TEST(ParserPipelineTest, SecondRequestIncompleteNeedsMore) {
  constexpr std::string_view kBuf = "GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHo";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kBuf.data(), kBuf.size()), Status::kDone);
  const size_t used = parser.request().head_bytes;
  parser.Reset();
  EXPECT_EQ(parser.Feed(kBuf.data() + used, kBuf.size() - used), Status::kNeedMore);
}

TEST(ParserStateTest, ResetClearsEverything) {
  constexpr std::string_view kFirst =
      "GET / HTTP/1.0\r\nConnection: close\r\nContent-Length: 7\r\nRange: bytes=1-\r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kFirst.data(), kFirst.size()), Status::kDone);
  parser.Reset();
  EXPECT_TRUE(parser.in_request_line());
  constexpr std::string_view kSecond = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(parser.Feed(kSecond.data(), kSecond.size()), Status::kDone);
  const Request& r = parser.request();
  EXPECT_FALSE(r.connection_close);
  EXPECT_FALSE(r.has(Field::kContentLength));
  EXPECT_FALSE(r.has(Field::kRange));
  // The old values are never visible through field().
  EXPECT_EQ(r.field(Field::kRange), "");
  EXPECT_EQ(r.field(Field::kContentLength), "");
  EXPECT_EQ(r.field(Field::kConnection), "");
  EXPECT_EQ(r.method, Method::kGet);
  EXPECT_EQ(r.target, "/x");
  EXPECT_EQ(r.content_length, 0u);
  EXPECT_EQ(r.version_minor, 1);
  EXPECT_EQ(r.head_bytes, kSecond.size());
}

TEST(ParserStateTest, ErrorIsStickyUntilReset) {
  constexpr std::string_view kBad = "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.Feed(kBad.data(), kBad.size()), Status::kError);
  EXPECT_EQ(parser.error_status(), 400);
  EXPECT_FALSE(parser.error_reason().empty());
  constexpr std::string_view kGood = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(parser.Feed(kGood.data(), kGood.size()), Status::kError);
  parser.Reset();
  EXPECT_EQ(parser.error_status(), 0);
  EXPECT_EQ(parser.Feed(kGood.data(), kGood.size()), Status::kDone);
}

TEST(ParserStateTest, InRequestLineTracksProgress) {
  constexpr std::string_view kRaw = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestParser parser;
  EXPECT_TRUE(parser.in_request_line());
  EXPECT_EQ(parser.Feed(kRaw.data(), 10), Status::kNeedMore);
  EXPECT_TRUE(parser.in_request_line());
  EXPECT_EQ(parser.Feed(kRaw.data(), 16), Status::kNeedMore);
  EXPECT_FALSE(parser.in_request_line());
}

TEST(ParserStateTest, EmptyInputNeedsMore) {
  RequestParser parser;
  EXPECT_EQ(parser.Feed("", 0), Status::kNeedMore);
  EXPECT_EQ(parser.Feed("\r\n", 2), Status::kNeedMore);
  EXPECT_EQ(parser.Feed("\r\n\r\n", 4), Status::kNeedMore);
}

// ---------------------------------------------------------------------------
// Errors with default limits.

struct ErrorCase {
  const char* name;
  std::string_view raw;
  int status;
};

const ErrorCase kErrorCases[] = {
    // Request line.
    {"MissingVersion", "GET /\r\nHost: h\r\n\r\n", 400},
    {"MethodOnly", "GET\r\nHost: h\r\n\r\n", 400},
    {"LowercaseVersion", "GET / http/1.1\r\nHost: h\r\n\r\n", 400},
    {"VersionTrailingJunk", "GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
    {"VersionTrailingSpace", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
    {"VersionTwoDigitMinor", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400},
    {"VersionNoMinor", "GET / HTTP/1\r\nHost: h\r\n\r\n", 400},
    {"VersionNoDot", "GET / HTTP/11\r\nHost: h\r\n\r\n", 400},
    {"VersionLetters", "GET / HTTP/a.b\r\nHost: h\r\n\r\n", 400},
    {"VersionBadPrefix", "GET / HTTQ/1.1\r\nHost: h\r\n\r\n", 400},
    {"DoubleSpaceAfterMethod", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"DoubleSpaceBeforeVersion", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"LeadingSpace", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"TabAsSeparator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"InvalidMethodChar", "GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"SpaceInTarget", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"TabInTarget", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"NonAsciiInTarget", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"HighByteInTarget", "GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"ControlInTarget", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"EscInTarget", "GET /a\x1b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"DelInTarget", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"NulInTarget", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n"sv, 400},
    {"BareCrInTarget", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
    {"BareCrAfterVersion", "GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
    {"DoubleCrAfterVersion", "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 400},
    {"TooManyLeadingEmptyLines",
     "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
     "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
     "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
     400},
    // Version not supported.
    {"Http20", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
    {"Http09", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
    {"Http30", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505},
    {"Http21", "GET / HTTP/2.1\r\nHost: h\r\n\r\n", 505},
    // Field lines.
    {"SpaceBeforeColon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
    {"TabBeforeColon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400},
    {"ObsFoldSpace", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
    {"ObsFoldTab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400},
    {"FirstFieldLineIndented", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
    {"NoColon", "GET / HTTP/1.1\r\nHost: h\r\nX-NoColon\r\n\r\n", 400},
    {"EmptyName", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400},
    {"NameWithParen", "GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n", 400},
    {"NameWithAt", "GET / HTTP/1.1\r\nHost: h\r\nX@A: v\r\n\r\n", 400},
    {"NameWithQuote", "GET / HTTP/1.1\r\nHost: h\r\nX\"A: v\r\n\r\n", 400},
    {"NameWithSlash", "GET / HTTP/1.1\r\nHost: h\r\nX/A: v\r\n\r\n", 400},
    {"NameWithNonAscii", "GET / HTTP/1.1\r\nHost: h\r\nX\xc3\xa9: v\r\n\r\n", 400},
    {"NulInValue", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"sv, 400},
    {"BareCrInValue", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400},
    {"DelInValue", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", 400},
    {"ControlInValue", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01z\r\n\r\n", 400},
    {"CrLineAsBlank", "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n\r\n", 400},
    // Host.
    {"MissingHostHttp11", "GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", 400},
    {"MissingHostHttp19", "GET / HTTP/1.9\r\n\r\n", 400},
    {"TwoHostsHttp11", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"TwoHostsSameValue", "GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400},
    {"TwoHostsHttp10", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    // Content-Length.
    {"DuplicateContentLengthSame",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
     "Content-Length: 5\r\n\r\n",
     400},
    {"DuplicateContentLengthDifferent",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
     "content-length: 6\r\n\r\n",
     400},
    {"ContentLengthNegative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
    {"ContentLengthPlus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
    {"ContentLengthInnerSpace", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400},
    {"ContentLengthHex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
    {"ContentLengthEmpty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
    {"ContentLengthBlank", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:   \r\n\r\n", 400},
    {"ContentLength19Digits",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n", 400},
    {"ContentLength20Digits",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},
    {"ContentLengthList", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400},
    {"ContentLengthDecimal", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1.0\r\n\r\n", 400},
    {"ContentLengthLetters", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400},
    // Transfer-Encoding.
    {"TransferEncodingWithContentLength",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
    {"ContentLengthWithTransferEncoding",
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"TransferEncodingHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << testing::PrintToString(std::string(c.raw));
}

class ParserErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ParserErrorTest, WholeBuffer) {
  const ErrorCase& c = GetParam();
  RequestParser parser;
  ASSERT_EQ(parser.Feed(c.raw.data(), c.raw.size()), Status::kError);
  EXPECT_EQ(parser.error_status(), c.status) << parser.error_reason();
  EXPECT_FALSE(parser.error_reason().empty());
}

// Incremental feeding ends in the same error (possibly earlier).
TEST_P(ParserErrorTest, OneByteAtATime) {
  const ErrorCase& c = GetParam();
  const std::vector<char> buf(c.raw.begin(), c.raw.end());
  RequestParser parser;
  Status s = Status::kNeedMore;
  for (size_t k = 0; k <= buf.size() && s == Status::kNeedMore; ++k) {
    s = parser.Feed(buf.data(), k);
  }
  ASSERT_EQ(s, Status::kError);
  EXPECT_EQ(parser.error_status(), c.status) << parser.error_reason();
}

INSTANTIATE_TEST_SUITE_P(Table, ParserErrorTest, testing::ValuesIn(kErrorCases), CaseName());

// ---------------------------------------------------------------------------
// Limits.

ParserLimits SmallLimits() {
  ParserLimits l;
  l.request_line_bytes_max = 32;
  l.head_bytes_max = 128;
  l.header_count_max = 3;
  return l;
}

// "GET /aaa... HTTP/1.1" of exactly `len` bytes.
std::string RequestLine(size_t len) {
  const size_t fixed = std::string_view("GET / HTTP/1.1").size();
  return "GET /" + std::string(len - fixed, 'a') + " HTTP/1.1";
}

TEST(ParserLimitsTest, RequestLineAtLimitAccepted) {
  const std::string raw = RequestLine(32) + "\r\nHost: h\r\n\r\n";
  RequestParser parser(SmallLimits());
  ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone) << parser.error_reason();
  EXPECT_EQ(parser.request().target.size(), 19u);
}

TEST(ParserLimitsTest, RequestLineAtLimitAcceptedAtEverySplit) {
  for (const char* eol : {"\r\n", "\n"}) {
    const std::string raw = RequestLine(32) + eol + "Host: h" + eol + eol;
    for (size_t k = 0; k < raw.size(); ++k) {
      SCOPED_TRACE(testing::Message()
                   << "eol size " << std::string_view(eol).size() << ", split at " << k);
      RequestParser parser(SmallLimits());
      EXPECT_EQ(parser.Feed(raw.data(), k), Status::kNeedMore)
          << parser.error_status() << " " << parser.error_reason();
      EXPECT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone)
          << parser.error_status() << " " << parser.error_reason();
    }
  }
}

TEST(ParserLimitsTest, RequestLineOverLimitComplete) {
  const std::string raw = RequestLine(33) + "\r\nHost: h\r\n\r\n";
  RequestParser parser(SmallLimits());
  ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kError);
  EXPECT_EQ(parser.error_status(), 414);
}

TEST(ParserLimitsTest, RequestLineOverLimitIncomplete) {
  const std::string line = RequestLine(60);
  RequestParser parser(SmallLimits());
  EXPECT_EQ(parser.Feed(line.data(), 32), Status::kNeedMore);
  EXPECT_TRUE(parser.in_request_line());
  ASSERT_EQ(parser.Feed(line.data(), 33), Status::kError);
  EXPECT_EQ(parser.error_status(), 414);
}

TEST(ParserLimitsTest, RequestLineOverLimitIncompleteAfterEmptyLines) {
  const std::string raw = "\r\n\r\n" + RequestLine(60);
  RequestParser parser(SmallLimits());
  EXPECT_EQ(parser.Feed(raw.data(), 4 + 32), Status::kNeedMore);
  ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kError);
  EXPECT_EQ(parser.error_status(), 414);
}

TEST(ParserLimitsTest, DefaultRequestLineLimit) {
  const ParserLimits defaults;
  {
    const std::string raw = RequestLine(defaults.request_line_bytes_max) + "\r\nHost: h\r\n\r\n";
    RequestParser parser;
    EXPECT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone) << parser.error_reason();
  }
  {
    const std::string raw =
        RequestLine(defaults.request_line_bytes_max + 1) + "\r\nHost: h\r\n\r\n";
    RequestParser parser;
    ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kError);
    EXPECT_EQ(parser.error_status(), 414);
  }
  {
    const std::string raw = RequestLine(defaults.request_line_bytes_max + 100);
    RequestParser parser;
    ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kError);
    EXPECT_EQ(parser.error_status(), 414);
  }
}

// A head of exactly head_bytes_max bytes is accepted, one more byte is 431.
TEST(ParserLimitsTest, HeadAtAndOverLimit) {
  const std::string prefix = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
  const std::string suffix = "\r\n\r\n";
  const size_t pad = 128 - prefix.size() - suffix.size();
  const std::string at = prefix + std::string(pad, 'p') + suffix;
  const std::string over = prefix + std::string(pad + 1, 'p') + suffix;
  ASSERT_EQ(at.size(), 128u);
  {
    RequestParser parser(SmallLimits());
    EXPECT_EQ(parser.Feed(at.data(), at.size()), Status::kDone) << parser.error_reason();
  }
  {
    RequestParser parser(SmallLimits());
    ASSERT_EQ(parser.Feed(over.data(), over.size()), Status::kError);
    EXPECT_EQ(parser.error_status(), 431);
  }
  for (size_t k = 0; k < at.size(); ++k) {
    SCOPED_TRACE(testing::Message() << "split at " << k);
    RequestParser parser(SmallLimits());
    EXPECT_EQ(parser.Feed(at.data(), k), Status::kNeedMore);
    EXPECT_EQ(parser.Feed(at.data(), at.size()), Status::kDone);
  }
}

TEST(ParserLimitsTest, HeadOverLimitWhileFieldIncomplete) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + std::string(200, 'p');
  RequestParser parser(SmallLimits());
  EXPECT_EQ(parser.Feed(raw.data(), 128), Status::kNeedMore);
  ASSERT_EQ(parser.Feed(raw.data(), 129), Status::kError);
  EXPECT_EQ(parser.error_status(), 431);
  EXPECT_FALSE(parser.in_request_line());
}

TEST(ParserLimitsTest, HeadOverLimitManyCompleteFields) {
  std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n";
  ParserLimits limits = SmallLimits();
  limits.header_count_max = 1000;
  for (int i = 0; i < 20; ++i) raw += "X-F: 0123456789\r\n";
  raw += "\r\n";
  RequestParser parser(limits);
  ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kError);
  EXPECT_EQ(parser.error_status(), 431);
}

TEST(ParserLimitsTest, HeaderCount) {
  const std::string three = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
  const std::string four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  {
    RequestParser parser(SmallLimits());
    EXPECT_EQ(parser.Feed(three.data(), three.size()), Status::kDone) << parser.error_reason();
  }
  {
    RequestParser parser(SmallLimits());
    ASSERT_EQ(parser.Feed(four.data(), four.size()), Status::kError);
    EXPECT_EQ(parser.error_status(), 431);
  }
}

TEST(ParserLimitsTest, DefaultHeaderCount) {
  const ParserLimits defaults;
  std::string ok = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (size_t i = 1; i < defaults.header_count_max; ++i) ok += "A: 1\r\n";
  const std::string too_many = ok + "A: 1\r\n\r\n";
  ok += "\r\n";
  {
    RequestParser parser;
    EXPECT_EQ(parser.Feed(ok.data(), ok.size()), Status::kDone) << parser.error_reason();
  }
  {
    RequestParser parser;
    ASSERT_EQ(parser.Feed(too_many.data(), too_many.size()), Status::kError);
    EXPECT_EQ(parser.error_status(), 431);
  }
}

// ---------------------------------------------------------------------------
// Helpers.

TEST(MethodNameTest, RoundTrip) {
  const Method kMethods[] = {Method::kGet,   Method::kHead,  Method::kOptions,
                             Method::kPost,  Method::kPut,   Method::kDelete,
                             Method::kPatch, Method::kTrace, Method::kConnect};
  for (Method m : kMethods) {
    const std::string raw = std::string(MethodName(m)) + " / HTTP/1.1\r\nHost: h\r\n\r\n";
    SCOPED_TRACE(raw);
    RequestParser parser;
    ASSERT_EQ(parser.Feed(raw.data(), raw.size()), Status::kDone);
    EXPECT_EQ(parser.request().method, m);
  }
  EXPECT_EQ(MethodName(Method::kGet), "GET");
  EXPECT_EQ(MethodName(Method::kOptions), "OPTIONS");
  EXPECT_EQ(MethodName(Method::kUnknown), "UNKNOWN");
}

TEST(EqualsIgnoreCaseTest, Table) {
  struct Case {
    std::string_view a, b;
    bool equal;
  };
  const Case kCases[] = {
      {"", "", true},         {"Host", "host", true},  {"CONTENT-LENGTH", "content-length", true},
      {"Host", "Hos", false}, {"Host", "Hosu", false}, {"a-b", "A-B", true},
      {"@", "`", false},  // 0x40 / 0x60 differ by 32 but are not letters.
      {"[", "{", false},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(testing::Message() << c.a << " vs " << c.b);
    EXPECT_EQ(EqualsIgnoreCase(c.a, c.b), c.equal);
    EXPECT_EQ(EqualsIgnoreCase(c.b, c.a), c.equal);
  }
}

}  // namespace
}  // namespace sluice
