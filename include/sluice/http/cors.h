// Cross-origin resource sharing for static files, per the Fetch standard's
// CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol). A
// CorsPolicy is built once from configuration and is immutable: any thread
// may share it. It decides which header fields a response carries; sending
// them (and the 204 of an allowed preflight) is the caller's job.
//
// Credentials are never allowed (no Access-Control-Allow-Credentials): a
// static server has no per-user answers, and without credentials "*" is a
// real wildcard for origins and request headers.
//
// Caching (Fetch §3.2.5): with origins "*" every response carries
// "Access-Control-Allow-Origin: *" whether or not the request had an Origin,
// so one cached copy suits everyone. With a list of origins the response
// depends on Origin, so every response, allowed or not, Origin or not,
// carries "Vary: Origin" (a field of its own; several Vary fields combine,
// RFC 9110 §5.3).
#ifndef SLUICE_HTTP_CORS_H_
#define SLUICE_HTTP_CORS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

struct HeaderField {
  std::string name;
  std::string value;
  bool operator==(const HeaderField&) const = default;
};

// What a configuration says, before validation.
struct CorsSpec {
  // "*" alone, or serialised origins "scheme://host[:port]" (http or https,
  // compared case-insensitively). "null" is refused: every sandboxed
  // document and file: page sends it, so allowing it allows anyone.
  std::vector<std::string> origins;
  // Methods a preflight may ask for, case-sensitive tokens (RFC 9110 §9.1).
  std::vector<std::string> methods = {"GET", "HEAD"};
  // Request header names a preflight may ask for (case-insensitive), or "*"
  // alone for any.
  std::vector<std::string> headers;
  // Response header names scripts may read (Access-Control-Expose-Headers).
  std::vector<std::string> expose_headers;
  // Access-Control-Max-Age in seconds; nullopt: not sent (browsers then use 5 s).
  std::optional<int64_t> max_age_seconds;
};

class CorsPolicy {
 public:
  static constexpr size_t kOriginsMax = 64;
  static constexpr size_t kOriginBytesMax = 256;
  static constexpr size_t kMethodsMax = 16;
  static constexpr size_t kHeadersMax = 64;  // Configured, and listed in one preflight.
  static constexpr size_t kHeaderNameBytesMax = 128;
  static constexpr int64_t kMaxAgeSecondsMax = 86400;  // Firefox's cap; Chromium's is 7200.

  // InvalidArgument, naming the entry at fault, for a spec outside the rules above.
  static absl::StatusOr<CorsPolicy> Create(const CorsSpec& spec);

  // Fields for the response to any request that is not a preflight (GET,
  // HEAD, a plain OPTIONS...). `origin` is the Origin field's value, empty
  // when absent.
  std::vector<HeaderField> ForActualRequest(std::string_view origin) const;

  struct Preflight {
    enum class Kind : uint8_t {
      kNotPreflight,  // No Origin or no Access-Control-Request-Method: an ordinary OPTIONS.
      kRejected,      // Answer as an ordinary OPTIONS, without CORS fields.
      kAllowed,       // Answer 204 with `headers`.
    };
    Kind kind = Kind::kNotPreflight;
    std::vector<HeaderField> headers;
    std::string_view reject_reason;  // For the log when kRejected; static text.
  };
  // An OPTIONS request: `origin` as above, `request_method` the
  // Access-Control-Request-Method value (nullopt when absent),
  // `request_headers` the Access-Control-Request-Headers value (empty when absent).
  Preflight ForPreflight(std::string_view origin, std::optional<std::string_view> request_method,
                         std::string_view request_headers) const;

  bool any_origin() const { return any_origin_; }

 private:
  CorsPolicy() = default;
  bool OriginAllowed(std::string_view origin) const;
  bool HeaderAllowed(std::string_view name) const;
  void AddOriginFields(std::string_view origin, std::vector<HeaderField>* out) const;

  bool any_origin_ = false;
  bool any_header_ = false;
  std::vector<std::string> origins_;  // Lower-case.
  std::vector<std::string> methods_;
  std::vector<std::string> headers_;  // Lower-case.
  std::string allow_methods_;         // "GET, HEAD".
  std::string allow_headers_;         // "content-type, x-token" ("" with any_header_).
  std::string expose_headers_;        // "" when none.
  std::string max_age_;               // "" when not sent.
};

}  // namespace sluice

#endif  // SLUICE_HTTP_CORS_H_
