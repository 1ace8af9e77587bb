#include "sluice/http/http_parser.h"

#include <array>
#include <cstring>

#include "sluice/http/field_syntax.h"

namespace sluice {
namespace {

// field-vchar / obs-text, SP and HTAB (RFC 9110 §5.5). CR, LF, NUL and the
// other controls are refused.
bool IsFieldValueByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

struct MethodEntry {
  std::string_view name;
  Method method;
};
constexpr MethodEntry kMethods[] = {
    {"GET", Method::kGet},     {"HEAD", Method::kHead},   {"OPTIONS", Method::kOptions},
    {"POST", Method::kPost},   {"PUT", Method::kPut},     {"DELETE", Method::kDelete},
    {"PATCH", Method::kPatch}, {"TRACE", Method::kTrace}, {"CONNECT", Method::kConnect},
};

struct ForwardingEntry {
  std::string_view name;  // Lower case.
  ForwardingField field;
};
constexpr ForwardingEntry kForwardingFields[] = {
    {"forwarded", ForwardingField::kForwarded},
    {"x-forwarded-for", ForwardingField::kXForwardedFor},
    {"x-real-ip", ForwardingField::kXRealIp},
};

struct FieldEntry {
  std::string_view name;  // Lower case.
  Field field;
};
constexpr FieldEntry kFields[] = {
    {"host", Field::kHost},
    {"connection", Field::kConnection},
    {"content-length", Field::kContentLength},
    {"transfer-encoding", Field::kTransferEncoding},
    {"expect", Field::kExpect},
    {"range", Field::kRange},
    {"if-range", Field::kIfRange},
    {"if-match", Field::kIfMatch},
    {"if-none-match", Field::kIfNoneMatch},
    {"if-modified-since", Field::kIfModifiedSince},
    {"if-unmodified-since", Field::kIfUnmodifiedSince},
    {"accept-encoding", Field::kAcceptEncoding},
    {"user-agent", Field::kUserAgent},
    {"referer", Field::kReferer},
    {"accept", Field::kAccept},
    {"x-request-id", Field::kXRequestId},
    {"origin", Field::kOrigin},
    {"access-control-request-method", Field::kAccessControlRequestMethod},
    {"access-control-request-headers", Field::kAccessControlRequestHeaders},
};

// Content-Length = 1*DIGIT (RFC 9110 §8.6). More than 18 digits is refused
// rather than risking overflow; no file we serve a body for is that large.
bool ParseContentLength(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 18) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

std::string_view MethodName(Method m) {
  for (const auto& e : kMethods) {
    if (e.method == m) return e.name;
  }
  return "UNKNOWN";
}

bool Request::KeepAlive() const {
  if (connection_close) return false;
  if (version_minor >= 1) return true;
  return connection_keep_alive;
}

void RequestParser::Reset() {
  // Every member of Request but the field values, which field() ignores
  // while their counts are zero (they are most of its size, and this runs
  // for every request).
  request_.method = Method::kUnknown;
  request_.method_text = {};
  request_.target = {};
  request_.version_minor = 1;
  std::memset(request_.field_counts, 0, sizeof(request_.field_counts));
  std::memset(request_.forwarding_counts, 0, sizeof(request_.forwarding_counts));
  request_.connection_close = false;
  request_.connection_keep_alive = false;
  request_.content_length = 0;
  request_.head_bytes = 0;
  pos_ = 0;
  have_request_line_ = false;
  field_count_ = 0;
  error_status_ = 0;
  error_reason_ = {};
}

RequestParser::Status RequestParser::Fail(int status, std::string_view reason) {
  error_status_ = status;
  error_reason_ = reason;
  return Status::kError;
}

RequestParser::Status RequestParser::Feed(const char* data, size_t len) {
  if (error_status_ != 0) return Status::kError;
  while (pos_ < len) {
    const char* start = data + pos_;
    const void* nl = std::memchr(start, '\n', len - pos_);
    if (nl == nullptr) {
      // A trailing CR may be the first half of the CRLF: not line content.
      const size_t pending = len - pos_ - (data[len - 1] == '\r' ? 1 : 0);
      if (!have_request_line_ && pending > limits_.request_line_bytes_max) {
        return Fail(414, "request line too long");
      }
      if (len > limits_.head_bytes_max) return Fail(431, "request head too large");
      return Status::kNeedMore;
    }
    const size_t line_end = static_cast<const char*>(nl) - data;  // Index of '\n'.
    size_t content_end = line_end;
    // CRLF ends a line; a bare LF is accepted as RFC 9112 §2.2 allows.
    if (content_end > pos_ && data[content_end - 1] == '\r') --content_end;
    std::string_view line(start, content_end - pos_);
    const size_t next = line_end + 1;

    // Limits before syntax, in the same order as for an unfinished line, so
    // the answer never depends on how the bytes were split into reads.
    if (!have_request_line_ && line.size() > limits_.request_line_bytes_max) {
      return Fail(414, "request line too long");
    }
    if (next > limits_.head_bytes_max) return Fail(431, "request head too large");
    if (!have_request_line_) {
      if (line.empty()) {
        // RFC 9112 §2.2: ignore empty lines before the request line, but
        // not without bound.
        if (next > 64) return Fail(400, "too many empty lines");
        pos_ = next;
        continue;
      }
      if (Status s = ParseRequestLine(line); s == Status::kError) return s;
      have_request_line_ = true;
    } else if (line.empty()) {
      request_.head_bytes = next;
      pos_ = next;
      return FinishHead();
    } else {
      if (Status s = ParseField(line); s == Status::kError) return s;
    }
    pos_ = next;
  }
  return Status::kNeedMore;
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
RequestParser::Status RequestParser::ParseRequestLine(std::string_view line) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Fail(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1);
  if (!IsHttpToken(method)) return Fail(400, "invalid method");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Fail(400, "missing HTTP version");
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (target.empty()) return Fail(400, "empty request target");
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f) return Fail(400, "invalid byte in request target");
  }
  // HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Fail(400, "malformed HTTP version");
  }
  if (version[5] != '1') return Fail(505, "HTTP version not supported");

  request_.method_text = method;
  request_.method = Method::kUnknown;
  for (const auto& e : kMethods) {
    if (e.name == method) {
      request_.method = e.method;
      break;
    }
  }
  request_.target = target;
  request_.version_minor = version[7] - '0';
  return Status::kNeedMore;
}

// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5).
RequestParser::Status RequestParser::ParseField(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    return Fail(400, "obsolete line folding");  // RFC 9112 §5.2.
  }
  if (++field_count_ > limits_.header_count_max) return Fail(431, "too many header fields");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return Fail(400, "header field without colon");
  const std::string_view name = line.substr(0, colon);
  // A space before the colon is refused (RFC 9112 §5.1), as is any non-token.
  if (!IsHttpToken(name)) return Fail(400, "invalid header field name");
  const std::string_view value = TrimOws(line.substr(colon + 1));
  for (unsigned char c : value) {
    if (!IsFieldValueByte(c)) return Fail(400, "invalid byte in header field value");
  }

  for (const auto& e : kForwardingFields) {
    if (e.name.size() != name.size() || !EqualsIgnoreCase(e.name, name)) continue;
    const auto i = static_cast<size_t>(e.field);
    uint8_t& count = request_.forwarding_counts[i];
    if (count < kForwardingLinesMax) request_.forwarding_lines[i][count] = value;
    if (count < 255) ++count;
    return Status::kNeedMore;
  }
  for (const auto& e : kFields) {
    if (e.name.size() != name.size() || !EqualsIgnoreCase(e.name, name)) continue;
    const auto i = static_cast<size_t>(e.field);
    request_.fields[i] = value;
    if (request_.field_counts[i] < 255) ++request_.field_counts[i];
    if (e.field == Field::kConnection) {
      // Comma-separated tokens, any case.
      std::string_view rest = value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view tok = TrimOws(rest.substr(0, comma));
        if (EqualsIgnoreCase(tok, "close")) request_.connection_close = true;
        if (EqualsIgnoreCase(tok, "keep-alive")) request_.connection_keep_alive = true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (e.field == Field::kContentLength) {
      if (request_.field_counts[i] > 1) return Fail(400, "duplicate Content-Length");
      if (!ParseContentLength(value, &request_.content_length)) {
        return Fail(400, "invalid Content-Length");
      }
    }
    break;
  }
  return Status::kNeedMore;
}

// Checks that need the whole head (RFC 9112 §3.2, §6.1, §6.3).
RequestParser::Status RequestParser::FinishHead() {
  const Request& r = request_;
  if (r.version_minor >= 1 && r.field_count(Field::kHost) != 1) {
    return Fail(400, r.has(Field::kHost) ? "duplicate Host" : "missing Host");
  }
  if (r.field_count(Field::kHost) > 1) return Fail(400, "duplicate Host");
  if (r.has(Field::kTransferEncoding)) {
    if (r.has(Field::kContentLength)) return Fail(400, "Transfer-Encoding with Content-Length");
    if (r.version_minor == 0) return Fail(400, "Transfer-Encoding in HTTP/1.0");
  }
  return Status::kDone;
}

}  // namespace sluice
