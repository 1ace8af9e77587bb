// Unit tests for response-head writing.
#include "sluice/http/response.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {
namespace {

constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";

struct Head {
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> fields;  // In order.
  std::string body;
  bool complete = false;  // A blank line ended the head.
};

// Splits a response into status line, fields and body. Fails the test on a
// line that is not "Name: value".
Head SplitResponse(std::string_view text) {
  Head h;
  size_t pos = text.find("\r\n");
  if (pos == std::string_view::npos) {
    ADD_FAILURE() << "no CRLF in " << text;
    return h;
  }
  h.status_line = std::string(text.substr(0, pos));
  pos += 2;
  while (pos < text.size()) {
    const size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) {
      ADD_FAILURE() << "unterminated line in " << text;
      return h;
    }
    if (end == pos) {
      h.complete = true;
      h.body = std::string(text.substr(end + 2));
      return h;
    }
    const std::string_view line = text.substr(pos, end - pos);
    const size_t colon = line.find(": ");
    if (colon == std::string_view::npos || colon == 0) {
      ADD_FAILURE() << "bad field line: " << line;
    } else {
      h.fields.emplace_back(std::string(line.substr(0, colon)),
                            std::string(line.substr(colon + 2)));
    }
    pos = end + 2;
  }
  return h;
}

std::vector<std::string> Values(const Head& h, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [n, v] : h.fields) {
    if (n == name) out.push_back(v);
  }
  return out;
}

TEST(ReasonPhraseTest, EveryStatusTheServerUses) {
  struct Case {
    int status;
    std::string_view reason;
  };
  const Case kCases[] = {
      {200, "OK"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {412, "Precondition Failed"},
      {413, "Content Too Large"},
      {414, "URI Too Long"},
      {416, "Range Not Satisfiable"},
      {417, "Expectation Failed"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"},
      {100, "Continue"},
      {408, "Request Timeout"},
      {411, "Length Required"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.status);
    EXPECT_EQ(ReasonPhrase(c.status), c.reason);
  }
}

TEST(ReasonPhraseTest, UnknownStatus) {
  EXPECT_EQ(ReasonPhrase(299), "Unknown");
  EXPECT_EQ(ReasonPhrase(0), "Unknown");
}

TEST(AppendStatusAndCommonTest, StatusLineServerDate) {
  std::string out;
  AppendStatusAndCommon(&out, {.status = 404, .date = kDate});
  EXPECT_EQ(out,
            "HTTP/1.1 404 Not Found\r\nServer: sluice\r\nDate: " + std::string(kDate) + "\r\n");
}

TEST(AppendStatusAndCommonTest, AppendsToExistingText) {
  std::string out = "prefix";
  AppendStatusAndCommon(&out, {.status = 200, .date = kDate});
  EXPECT_TRUE(out.starts_with("prefixHTTP/1.1 200 OK\r\n")) << out;
}

TEST(AppendStatusAndCommonTest, ConnectionField) {
  struct Case {
    const char* name;
    bool keep_alive;
    bool client_is_http10;
    const char* connection;  // nullptr: no Connection field.
  };
  const Case kCases[] = {
      {"Http11KeepAlive", true, false, nullptr},
      {"Http11Close", false, false, "close"},
      {"Http10KeepAlive", true, true, "keep-alive"},
      {"Http10Close", false, true, "close"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::string out;
    AppendStatusAndCommon(&out, {.status = 200,
                                 .date = kDate,
                                 .keep_alive = c.keep_alive,
                                 .client_is_http10 = c.client_is_http10});
    EndHead(&out);
    const Head h = SplitResponse(out);
    EXPECT_TRUE(h.complete);
    EXPECT_EQ(h.status_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(Values(h, "Server"), std::vector<std::string>{"sluice"});
    EXPECT_EQ(Values(h, "Date"), std::vector<std::string>{std::string(kDate)});
    const std::vector<std::string> conn = Values(h, "Connection");
    if (c.connection == nullptr) {
      EXPECT_TRUE(conn.empty());
    } else {
      EXPECT_EQ(conn, std::vector<std::string>{c.connection});
    }
  }
}

TEST(AppendStatusAndCommonTest, StatusLineForEveryStatus) {
  for (int status : {200, 204, 206, 301, 304, 400, 403, 404, 405, 412, 413, 414, 416, 417, 431, 500,
                     501, 503, 505}) {
    std::string out;
    AppendStatusAndCommon(&out, {.status = status, .date = kDate});
    const std::string want =
        "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) + "\r\n";
    EXPECT_TRUE(out.starts_with(want)) << out;
  }
}

TEST(AppendFieldTest, Formats) {
  std::string out;
  AppendField(&out, "Content-Type", "text/plain");
  AppendFieldUint(&out, "Content-Length", 0);
  AppendFieldUint(&out, "X-Big", UINT64_MAX);
  AppendFieldUint(&out, "X-Mid", 1234567890);
  EndHead(&out);
  EXPECT_EQ(out,
            "Content-Type: text/plain\r\nContent-Length: 0\r\n"
            "X-Big: 18446744073709551615\r\nX-Mid: 1234567890\r\n\r\n");
}

// Parses a decimal Content-Length value; -1 when it is not one.
int64_t ParseLength(const std::string& v) {
  if (v.empty() || v.size() > 18) return -1;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

TEST(AppendErrorResponseTest, ContentLengthMatchesBody) {
  for (int status : {400, 403, 404, 405, 412, 413, 414, 416, 417, 431, 500, 501, 503, 505}) {
    SCOPED_TRACE(status);
    std::string out;
    AppendErrorResponse(&out, {.status = status, .date = kDate}, /*head_only=*/false);
    const Head h = SplitResponse(out);
    ASSERT_TRUE(h.complete);
    EXPECT_EQ(h.status_line,
              "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)));
    const std::vector<std::string> lengths = Values(h, "Content-Length");
    ASSERT_EQ(lengths.size(), 1u);
    EXPECT_EQ(ParseLength(lengths[0]), static_cast<int64_t>(h.body.size()));
    EXPECT_EQ(Values(h, "Content-Type"), std::vector<std::string>{"text/html; charset=utf-8"});
    EXPECT_EQ(Values(h, "Server").size(), 1u);
    EXPECT_EQ(Values(h, "Date").size(), 1u);
    // The body names the status.
    const std::string label = std::to_string(status) + " " + std::string(ReasonPhrase(status));
    EXPECT_NE(h.body.find("<title>" + label + "</title>"), std::string::npos) << h.body;
    EXPECT_NE(h.body.find("<h1>" + label + "</h1>"), std::string::npos) << h.body;
  }
}

TEST(AppendErrorResponseTest, HeadOnlyKeepsContentLengthDropsBody) {
  for (int status : {400, 404, 501}) {
    SCOPED_TRACE(status);
    std::string full = "kept";  // Appended to, not replaced.
    const size_t full_head_end =
        AppendErrorResponse(&full, {.status = status, .date = kDate}, /*head_only=*/false);
    full.erase(0, 4);
    std::string head;
    const size_t head_end =
        AppendErrorResponse(&head, {.status = status, .date = kDate}, /*head_only=*/true);
    // The returned offset is where the head ends, whatever preceded it.
    EXPECT_EQ(head_end, head.size());
    EXPECT_EQ(full_head_end, 4 + head.size());
    const Head f = SplitResponse(full);
    const Head h = SplitResponse(head);
    ASSERT_TRUE(h.complete);
    EXPECT_TRUE(h.body.empty());
    EXPECT_TRUE(head.ends_with("\r\n\r\n"));
    EXPECT_EQ(Values(h, "Content-Length"), Values(f, "Content-Length"));
    EXPECT_EQ(full.substr(0, head.size()), head);
    EXPECT_EQ(ParseLength(Values(h, "Content-Length").at(0)),
              static_cast<int64_t>(full.size() - head.size()));
  }
}

TEST(AppendErrorResponseTest, ExtraFieldsBeforeBlankLine) {
  std::string out;
  AppendErrorResponse(&out, {.status = 405, .date = kDate, .keep_alive = false},
                      /*head_only=*/false, "Allow: GET, HEAD, OPTIONS\r\nX-Test: 1\r\n");
  const Head h = SplitResponse(out);
  ASSERT_TRUE(h.complete);
  EXPECT_EQ(Values(h, "Allow"), std::vector<std::string>{"GET, HEAD, OPTIONS"});
  EXPECT_EQ(Values(h, "X-Test"), std::vector<std::string>{"1"});
  EXPECT_EQ(Values(h, "Connection"), std::vector<std::string>{"close"});
  EXPECT_EQ(h.body.find("X-Test"), std::string::npos);
  EXPECT_EQ(h.body.find("GET, HEAD"), std::string::npos);
  EXPECT_EQ(ParseLength(Values(h, "Content-Length").at(0)), static_cast<int64_t>(h.body.size()));
  const size_t blank = out.find("\r\n\r\n");
  EXPECT_LT(out.find("Allow: GET"), blank);
  EXPECT_LT(out.find("X-Test: 1"), blank);
}

TEST(AppendErrorResponseTest, ExtraFieldsWithHeadOnly) {
  std::string out;
  AppendErrorResponse(&out, {.status = 416, .date = kDate}, /*head_only=*/true,
                      "Content-Range: bytes */100\r\n");
  EXPECT_TRUE(out.ends_with("Content-Range: bytes */100\r\n\r\n")) << out;
}

TEST(AppendErrorResponseTest, ConnectionFieldFollowsCommon) {
  std::string out;
  AppendErrorResponse(&out, {.status = 400, .date = kDate, .keep_alive = false},
                      /*head_only=*/false);
  EXPECT_EQ(Values(SplitResponse(out), "Connection"), std::vector<std::string>{"close"});
  out.clear();
  AppendErrorResponse(&out, {.status = 404, .date = kDate, .client_is_http10 = true},
                      /*head_only=*/false);
  EXPECT_EQ(Values(SplitResponse(out), "Connection"), std::vector<std::string>{"keep-alive"});
  out.clear();
  AppendErrorResponse(&out, {.status = 404, .date = kDate}, /*head_only=*/false);
  EXPECT_TRUE(Values(SplitResponse(out), "Connection").empty());
}

std::string Etag(uint64_t inode, uint64_t size, int64_t sec, uint32_t nsec) {
  std::string out;
  AppendEtag(&out, inode, size, sec, nsec);
  return out;
}

TEST(AppendEtagTest, QuotedStrongAndWellFormed) {
  const std::string tag = Etag(0x1b2c, 0x3f, 1700000000, 123456789);
  ASSERT_GE(tag.size(), 3u);
  EXPECT_EQ(tag.front(), '"');
  EXPECT_EQ(tag.back(), '"');
  EXPECT_FALSE(tag.starts_with("W/"));
  // etagc (RFC 9110 §8.8.3): %x21 / %x23-7E / obs-text; no quote inside.
  for (size_t i = 1; i + 1 < tag.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(tag[i]);
    EXPECT_TRUE(c == 0x21 || (c >= 0x23 && c <= 0x7e)) << tag;
  }
}

TEST(AppendEtagTest, AppendsToExistingText) {
  std::string out = "ETag: ";
  AppendEtag(&out, 1, 2, 3, 4);
  EXPECT_TRUE(out.starts_with("ETag: \"")) << out;
  EXPECT_EQ(out.substr(6), Etag(1, 2, 3, 4));
}

TEST(AppendEtagTest, DeterministicAndSensitiveToEveryInput) {
  struct Case {
    const char* name;
    uint64_t inode;
    uint64_t size;
    int64_t sec;
    uint32_t nsec;
  };
  const Case kCases[] = {
      {"Base", 100, 2000, 1700000000, 500},
      {"Inode", 101, 2000, 1700000000, 500},
      {"Size", 100, 2001, 1700000000, 500},
      {"Sec", 100, 2000, 1700000001, 500},
      {"Nsec", 100, 2000, 1700000000, 501},
      {"ZeroNsec", 100, 2000, 1700000000, 0},
      {"MaxNsec", 100, 2000, 1700000000, 999999999},
      {"InodeSizeSwapped", 2000, 100, 1700000000, 500},
      {"Zeros", 0, 0, 0, 0},
      {"BigInode", UINT64_MAX, 2000, 1700000000, 500},
      {"BigSize", 100, UINT64_MAX, 1700000000, 500},
      {"EmptyFile", 100, 0, 1700000000, 500},
  };
  std::set<std::string> seen;
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const std::string tag = Etag(c.inode, c.size, c.sec, c.nsec);
    EXPECT_EQ(tag, Etag(c.inode, c.size, c.sec, c.nsec));
    EXPECT_TRUE(seen.insert(tag).second) << "duplicate " << tag;
  }
}

// Neighbouring instants across a second boundary get different tags.
TEST(AppendEtagTest, SecondsAndNanosecondsDoNotAlias) {
  EXPECT_NE(Etag(1, 1, 10, 999999999), Etag(1, 1, 11, 0));
  EXPECT_NE(Etag(1, 1, 10, 1), Etag(1, 1, 11, 1));
}

}  // namespace
}  // namespace sluice
