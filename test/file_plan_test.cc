// PlanFileResponse without a socket: precedence of 304/412/416, validators
// per coding, Vary, ranges, HEAD, and bytes from memory versus the file.
#include "sluice/serve/file_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

constexpr std::string_view kEtag = "\"abc-10\"";
constexpr std::string_view kLastModified = "Sun, 06 Nov 1994 08:49:37 GMT";  // 784111777
constexpr int64_t kMtime = 784111777;

struct Result {
  FilePlan plan;
  std::string out;
  std::vector<ResponseSegment> segments;
  std::string head() const { return out.substr(0, plan.head_len); }
};

class PlanTest : public ::testing::Test {
 protected:
  // Plans the response to `fields` (raw "Name: value\r\n" lines) for a
  // 100-byte file "a.txt", kept in memory when `in_memory`.
  Result Plan(std::string_view fields, bool in_memory = false, Coding coding = Coding::kIdentity,
              std::string_view method = "GET") {
    raw_ = std::string(method) + " /a.txt HTTP/1.1\r\nHost: x\r\n" + std::string(fields) + "\r\n";
    parser_.Reset();
    EXPECT_EQ(parser_.Feed(raw_.data(), raw_.size()), RequestParser::Status::kDone);
    FilePlanInput in;
    in.request = &parser_.request();
    in.file.size = content_.size();
    in.file.mtime_sec = kMtime;
    in.file.etag = kEtag;
    in.file.last_modified = kLastModified;
    in.file.content = in_memory ? &content_ : nullptr;
    in.coding = coding;
    in.path = "a.txt";
    in.common.date = "Mon, 07 Dec 2026 10:00:00 GMT";
    in.head_only = method == "HEAD";
    in.random = 0x0123456789abcdefull;
    in.cache_control = cache_control_;
    Result r;
    r.plan = PlanFileResponse(in, &r.out, &r.segments);
    return r;
  }

  std::string content_ = std::string(100, 'x');
  std::string cache_control_;
  std::string raw_;
  RequestParser parser_;
};

struct PrecedenceCase {
  std::string_view name;
  std::string_view fields;
  int status;
};

TEST_F(PlanTest, PreconditionsAndRangesInRfc9110Order) {
  const PrecedenceCase cases[] = {
      {"plain", "", 200},
      {"if-none-match hit", "If-None-Match: \"abc-10\"\r\n", 304},
      {"weak comparison", "If-None-Match: W/\"abc-10\"\r\n", 304},
      {"if-match miss beats if-none-match", "If-Match: \"zz\"\r\nIf-None-Match: \"abc-10\"\r\n",
       412},
      {"if-match miss beats an unsatisfiable range", "If-Match: \"zz\"\r\nRange: bytes=500-\r\n",
       412},
      {"304 beats an unsatisfiable range", "If-None-Match: *\r\nRange: bytes=500-\r\n", 304},
      {"unsatisfiable range", "Range: bytes=500-\r\n", 416},
      {"single range", "Range: bytes=0-9\r\n", 206},
      {"if-range match lets the range through", "If-Range: \"abc-10\"\r\nRange: bytes=0-9\r\n",
       206},
      {"if-range miss gives the whole file", "If-Range: \"zz\"\r\nRange: bytes=0-9\r\n", 200},
      {"if-unmodified-since in the past", "If-Unmodified-Since: Sat, 05 Nov 1994 08:49:37 GMT\r\n",
       412},
      {"if-modified-since not newer", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n", 304},
  };
  for (const PrecedenceCase& c : cases) {
    EXPECT_EQ(Plan(c.fields).plan.status, c.status) << c.name;
  }
}

TEST_F(PlanTest, WholeFileFromTheFileIsHeadThenOneFileSegment) {
  Result r = Plan("");
  EXPECT_TRUE(r.plan.uses_file);
  ASSERT_EQ(r.segments.size(), 2u);
  EXPECT_FALSE(r.segments[0].from_file);
  EXPECT_EQ(r.segments[0].length, r.plan.head_len);
  EXPECT_TRUE(r.segments[1].from_file);
  EXPECT_EQ(r.segments[1].offset, 0u);
  EXPECT_EQ(r.segments[1].length, 100u);
  EXPECT_NE(r.head().find("Content-Length: 100\r\n"), std::string::npos);
  EXPECT_NE(r.head().find("Content-Type: text/plain"), std::string::npos);
  EXPECT_NE(r.head().find("Vary: Accept-Encoding\r\n"), std::string::npos);
  EXPECT_NE(r.head().find("ETag: \"abc-10\"\r\n"), std::string::npos);
}

TEST_F(PlanTest, SmallFileInMemoryGoesOutInOneSegmentWithItsHead) {
  Result r = Plan("Range: bytes=10-19\r\n", /*in_memory=*/true);
  EXPECT_EQ(r.plan.status, 206);
  EXPECT_FALSE(r.plan.uses_file);
  ASSERT_EQ(r.segments.size(), 1u);
  EXPECT_EQ(r.out.size(), r.plan.head_len + 10);
  EXPECT_NE(r.head().find("Content-Range: bytes 10-19/100\r\n"), std::string::npos);
}

TEST_F(PlanTest, HeadSendsNoBodyButTheSameLength) {
  Result r = Plan("", /*in_memory=*/false, Coding::kIdentity, "HEAD");
  EXPECT_FALSE(r.plan.uses_file);
  EXPECT_EQ(r.out.size(), r.plan.head_len);
  EXPECT_NE(r.head().find("Content-Length: 100\r\n"), std::string::npos);
}

TEST_F(PlanTest, EachCodingHasItsOwnValidator) {
  Result br = Plan("", false, Coding::kBrotli);
  EXPECT_NE(br.head().find("ETag: \"abc-10-br\"\r\n"), std::string::npos);
  EXPECT_NE(br.head().find("Content-Encoding: br\r\n"), std::string::npos);
  Result gz = Plan("If-None-Match: \"abc-10-gz\"\r\n", false, Coding::kGzip);
  EXPECT_EQ(gz.plan.status, 304);
  // The identity tag does not validate the gzip representation.
  EXPECT_EQ(Plan("If-None-Match: \"abc-10\"\r\n", false, Coding::kGzip).plan.status, 200);
  Result zst = Plan("", false, Coding::kZstd);
  EXPECT_NE(zst.head().find("ETag: \"abc-10-zst\"\r\n"), std::string::npos) << zst.head();
  EXPECT_NE(zst.head().find("Content-Encoding: zstd\r\n"), std::string::npos) << zst.head();
  EXPECT_EQ(Plan("If-None-Match: \"abc-10-zst\"\r\n", false, Coding::kZstd).plan.status, 304);
  EXPECT_EQ(Plan("If-None-Match: \"abc-10-gz\"\r\n", false, Coding::kZstd).plan.status, 200);
}

TEST_F(PlanTest, NotModifiedCarriesValidatorsAndCachePolicyButNoBody) {
  cache_control_ = "max-age=60";
  Result r = Plan("If-None-Match: \"abc-10\"\r\n");
  EXPECT_EQ(r.plan.status, 304);
  EXPECT_EQ(r.out.size(), r.plan.head_len);
  EXPECT_NE(r.head().find("Cache-Control: max-age=60\r\n"), std::string::npos);
  EXPECT_NE(r.head().find("Last-Modified: "), std::string::npos);
  EXPECT_EQ(r.head().find("Content-Length"), std::string::npos);
}

TEST_F(PlanTest, UnsatisfiableRangeNamesTheSize) {
  Result r = Plan("Range: bytes=100-\r\n");
  EXPECT_EQ(r.plan.status, 416);
  EXPECT_NE(r.head().find("Content-Range: bytes */100\r\n"), std::string::npos);
  EXPECT_FALSE(r.plan.uses_file);
}

TEST_F(PlanTest, MultipartFromTheFileAlternatesPartHeadsAndFileRanges) {
  Result r = Plan("Range: bytes=0-9,50-59\r\n");
  EXPECT_EQ(r.plan.status, 206);
  EXPECT_TRUE(r.plan.uses_file);
  ASSERT_EQ(r.segments.size(), 5u);  // head+part1 head, file, part2 head, file, close.
  EXPECT_TRUE(r.segments[1].from_file);
  EXPECT_EQ(r.segments[1].offset, 0u);
  EXPECT_TRUE(r.segments[3].from_file);
  EXPECT_EQ(r.segments[3].offset, 50u);
  uint64_t memory = 0, file = 0;
  for (const ResponseSegment& s : r.segments) (s.from_file ? file : memory) += s.length;
  EXPECT_EQ(memory, r.out.size());
  EXPECT_EQ(file, 20u);
  const size_t cl = r.head().find("Content-Length: ");
  ASSERT_NE(cl, std::string::npos);
  EXPECT_EQ(std::stoull(r.head().substr(cl + 16)), memory + file - r.plan.head_len);
}

TEST_F(PlanTest, MultipartFromMemoryMatchesTheFileBytes) {
  content_ = "0123456789abcdefghij";
  Result r = Plan("Range: bytes=0-1,10-11\r\n", /*in_memory=*/true);
  ASSERT_EQ(r.plan.status, 206);
  EXPECT_FALSE(r.plan.uses_file);
  const std::string body = r.out.substr(r.plan.head_len);
  EXPECT_NE(body.find("Content-Range: bytes 0-1/20\r\n\r\n01\r\n"), std::string::npos);
  EXPECT_NE(body.find("Content-Range: bytes 10-11/20\r\n\r\nab\r\n"), std::string::npos);
  const std::string head = r.head();
  const size_t b = head.find("boundary=");
  ASSERT_NE(b, std::string::npos);
  const std::string boundary = head.substr(b + 9, head.find("\r\n", b) - b - 9);
  EXPECT_EQ(boundary.size(), 16u);
  EXPECT_EQ(body.substr(body.size() - boundary.size() - 6), "--" + boundary + "--\r\n");
}

}  // namespace
}  // namespace sluice
