// Resumable HTTP/1.1 request-head parser (RFC 9112 §2-§5).
//
// Owns nothing: the parsed Request refers into the caller's buffer, which must
// stay in place (and keep its bytes) until the request has been answered.
// Used by one worker thread per connection; no shared state.
#ifndef SLUICE_HTTP_HTTP_PARSER_H_
#define SLUICE_HTTP_HTTP_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "sluice/http/field_syntax.h"  // EqualsIgnoreCase, IsHttpToken, TrimOws.

namespace sluice {

enum class Method : uint8_t {
  kGet,
  kHead,
  kOptions,
  kPost,
  kPut,
  kDelete,
  kPatch,
  kTrace,
  kConnect,
  kUnknown,  // A syntactically valid token we do not implement (501).
};

std::string_view MethodName(Method m);

struct ParserLimits {
  size_t request_line_bytes_max = 8192;  // Longer → 414.
  size_t head_bytes_max = 16384;         // Whole head (request line + fields) → 431.
  size_t header_count_max = 100;         // More fields → 431.
};

// The fields the server acts on. Others are syntax-checked and skipped, so a
// connection's parse state stays small whatever the client sends.
enum class Field : uint8_t {
  kHost,
  kConnection,
  kContentLength,
  kTransferEncoding,
  kExpect,
  kRange,
  kIfRange,
  kIfMatch,
  kIfNoneMatch,
  kIfModifiedSince,
  kIfUnmodifiedSince,
  kAcceptEncoding,
  kUserAgent,
  kReferer,
  kAccept,
  kXRequestId,  // X-Request-ID: a client's or proxy's id, for the access log.
  // CORS (http/cors.h): the request's origin, and a preflight's questions.
  kOrigin,
  kAccessControlRequestMethod,
  kAccessControlRequestHeaders,
  kCount,
};

// The fields that may name the client behind a proxy (client_address.h).
// Every field line of each is kept, not only the last: a list field may be
// split over several lines (RFC 9110 §5.3), and reading a chain from the
// right needs all of it.
enum class ForwardingField : uint8_t { kForwarded, kXForwardedFor, kXRealIp, kCount };
// Field lines kept per forwarding field. More is unusual (a proxy appends to
// one line); past it the field is reported as overflowing, so a caller can
// refuse to trust a chain it cannot see whole.
inline constexpr size_t kForwardingLinesMax = 8;

struct Request {
  Method method = Method::kUnknown;
  std::string_view method_text;
  std::string_view target;  // Raw request-target, not decoded.
  int version_minor = 1;    // HTTP/1.<minor>; 1.x with x > 1 is answered as 1.1.

  // Last value of each known field (OWS trimmed) and how often it came. A
  // value is meaningful only while its count is non-zero (Reset() clears
  // the counts alone): read it through field().
  std::string_view fields[static_cast<size_t>(Field::kCount)];
  uint8_t field_counts[static_cast<size_t>(Field::kCount)] = {};

  // Connection tokens seen in any Connection field (RFC 9110 §7.6.1).
  bool connection_close = false;
  bool connection_keep_alive = false;
  uint64_t content_length = 0;  // Valid when field_count(kContentLength) == 1.

  size_t head_bytes = 0;  // Bytes of the head, request line through the blank line.

  // Forwarded / X-Forwarded-For / X-Real-IP field lines in arrival order
  // (OWS trimmed), the first kForwardingLinesMax of each; counts saturate
  // at 255. Read through forwarding().
  std::string_view forwarding_lines[static_cast<size_t>(ForwardingField::kCount)]
                                   [kForwardingLinesMax];
  uint8_t forwarding_counts[static_cast<size_t>(ForwardingField::kCount)] = {};

  std::string_view field(Field f) const {
    return has(f) ? fields[static_cast<size_t>(f)] : std::string_view();
  }
  int field_count(Field f) const { return field_counts[static_cast<size_t>(f)]; }
  bool has(Field f) const { return field_count(f) > 0; }
  // The kept lines of a forwarding field (views into the request buffer).
  std::span<const std::string_view> forwarding(ForwardingField f) const {
    const auto i = static_cast<size_t>(f);
    return {forwarding_lines[i], forwarding_counts[i] < kForwardingLinesMax ? forwarding_counts[i]
                                                                            : kForwardingLinesMax};
  }
  // More lines came than were kept.
  bool forwarding_overflow(ForwardingField f) const {
    return forwarding_counts[static_cast<size_t>(f)] > kForwardingLinesMax;
  }
  // Persistence per RFC 9112 §9.3.
  bool KeepAlive() const;
};

// Incremental parser. Feed() is called with the whole buffered input (the same
// start pointer, growing length) until it returns kDone or kError; it only
// re-examines the bytes after the last complete line.
class RequestParser {
 public:
  enum class Status : uint8_t { kNeedMore, kDone, kError };

  explicit RequestParser(const ParserLimits& limits = {}) : limits_(limits) {}

  // data/len: everything received for this request so far (len never shrinks).
  Status Feed(const char* data, size_t len);

  // Valid after kDone.
  const Request& request() const { return request_; }
  // Valid after kError: the status to answer with (400, 414, 431, 505).
  int error_status() const { return error_status_; }
  // Short reason for logs and tests.
  std::string_view error_reason() const { return error_reason_; }

  void Reset();
  // True until the request line has been parsed (for 414 versus 431).
  bool in_request_line() const { return !have_request_line_; }

 private:
  Status Fail(int status, std::string_view reason);
  Status ParseRequestLine(std::string_view line);
  Status ParseField(std::string_view line);
  Status FinishHead();

  ParserLimits limits_;
  Request request_;
  size_t pos_ = 0;  // Start of the first line not yet parsed.
  bool have_request_line_ = false;
  size_t field_count_ = 0;
  int error_status_ = 0;
  std::string_view error_reason_;
};

}  // namespace sluice

#endif  // SLUICE_HTTP_HTTP_PARSER_H_
