// Fuzzes RequestParser: the result (status, parsed request or error status)
// must not depend on how the input is segmented.
//
// Input: byte 0 picks the split point, byte 1 the parser limits, the rest is
// the request data. The data is parsed (1) whole, (2) as a prefix up to the
// split point and then whole, the way a connection feeds a growing buffer,
// and, for small inputs, (3) after Reset() one byte at a time. All runs must
// agree; on kDone the request's views must lie inside the head.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "sluice/http/http_parser.h"

namespace {

using sluice::Field;
using sluice::ParserLimits;
using sluice::Request;
using sluice::RequestParser;

// Limits from one byte, within what the command line accepts (64 <=
// request line <= head). The head limit stays at least 66 bytes above the
// request line's: with less, an unfinished request line after skipped empty
// lines can be answered 431 when fed in parts but 414 (or 400) when whole,
// because the no-newline path tests the whole buffer against the head limit
// before the line against the request-line limit. Known, reported, and not
// reachable with the default limits.
ParserLimits LimitsFrom(uint8_t b) {
  ParserLimits limits;
  if ((b & 1) == 0) return limits;  // The defaults.
  limits.request_line_bytes_max = 64 + (b >> 1) % 4 * 32;
  limits.head_bytes_max = limits.request_line_bytes_max + 66 + (b >> 3) % 4 * 64;
  limits.header_count_max = 1 + (b >> 5);
  return limits;
}

struct Outcome {
  RequestParser::Status status;
  int error_status;
};

Outcome Run(RequestParser* p, const char* data, size_t len, size_t split) {
  if (split > 0 && split < len) {
    const RequestParser::Status s = p->Feed(data, split);
    if (s != RequestParser::Status::kNeedMore) return {s, p->error_status()};
  }
  const RequestParser::Status s = p->Feed(data, len);
  return {s, p->error_status()};
}

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "http_parser_fuzz: %s\n", what);
  std::abort();
}

bool Inside(std::string_view v, const char* data, size_t len) {
  if (v.empty()) return true;
  return v.data() >= data && v.data() + v.size() <= data + len;
}

bool SameRequest(const Request& a, const Request& b) {
  if (a.method != b.method || a.method_text != b.method_text || a.target != b.target ||
      a.version_minor != b.version_minor || a.connection_close != b.connection_close ||
      a.connection_keep_alive != b.connection_keep_alive || a.head_bytes != b.head_bytes) {
    return false;
  }
  for (size_t i = 0; i < static_cast<size_t>(Field::kCount); ++i) {
    if (a.fields[i] != b.fields[i] || a.field_counts[i] != b.field_counts[i]) return false;
  }
  if (a.field_count(Field::kContentLength) == 1 && a.content_length != b.content_length) {
    return false;
  }
  return true;
}

void CheckRequest(const Request& r, const char* data, size_t len) {
  if (r.head_bytes == 0 || r.head_bytes > len) Fail("head_bytes outside the input");
  if (data[r.head_bytes - 1] != '\n') Fail("head does not end with LF");
  const size_t head = r.head_bytes;
  if (!Inside(r.method_text, data, head) || !Inside(r.target, data, head)) {
    Fail("request line views outside the head");
  }
  if (r.method_text.empty() || r.target.empty()) Fail("empty method or target on kDone");
  for (size_t i = 0; i < static_cast<size_t>(Field::kCount); ++i) {
    if (!Inside(r.fields[i], data, head)) Fail("field view outside the head");
    if (r.field_counts[i] == 0 && !r.fields[i].empty()) Fail("value for an absent field");
  }
  if (r.version_minor < 0 || r.version_minor > 9) Fail("version out of range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t size) {
  if (size < 2) return 0;
  const ParserLimits limits = LimitsFrom(input[1]);
  const size_t len = size - 2;
  // An exact-size heap copy, so that any read past the end is caught.
  std::unique_ptr<char[]> buf(new char[len == 0 ? 1 : len]);
  if (len > 0) std::memcpy(buf.get(), input + 2, len);
  const char* data = buf.get();
  const size_t split = len == 0 ? 0 : input[0] % (len + 1);

  RequestParser whole(limits);
  const Outcome a = Run(&whole, data, len, 0);
  RequestParser parts(limits);
  const Outcome b = Run(&parts, data, len, split);
  if (a.status != b.status) Fail("status differs between whole and split input");
  if (a.status == RequestParser::Status::kError && a.error_status != b.error_status) {
    Fail("error status differs between whole and split input");
  }
  if (a.status == RequestParser::Status::kError) {
    const int e = a.error_status;
    if (e != 400 && e != 414 && e != 431 && e != 505) Fail("unexpected error status");
  }
  if (a.status == RequestParser::Status::kDone) {
    CheckRequest(whole.request(), data, len);
    if (!SameRequest(whole.request(), parts.request())) Fail("request differs when split");
  }

  if (len <= 512) {
    // Reset and feed one byte at a time, stopping at the first final answer.
    parts.Reset();
    Outcome c = {RequestParser::Status::kNeedMore, 0};
    for (size_t n = 1; n <= len; ++n) {
      c.status = parts.Feed(data, n);
      if (c.status != RequestParser::Status::kNeedMore) break;
    }
    c.error_status = parts.error_status();
    if (len == 0) c = a;
    if (c.status != a.status) Fail("status differs when fed byte by byte");
    if (a.status == RequestParser::Status::kError && c.error_status != a.error_status) {
      Fail("error status differs when fed byte by byte");
    }
    if (a.status == RequestParser::Status::kDone &&
        !SameRequest(whole.request(), parts.request())) {
      Fail("request differs when fed byte by byte");
    }
  }
  return 0;
}
