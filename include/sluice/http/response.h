// Response-head writing (RFC 9110 §15, RFC 9112 §4). Pure functions on a
// caller-owned std::string that is reused between responses, so the steady
// state allocates nothing. Any thread.
#ifndef SLUICE_HTTP_RESPONSE_H_
#define SLUICE_HTTP_RESPONSE_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

inline constexpr std::string_view kServerName = "sluice";

std::string_view ReasonPhrase(int status);

// Fields every response carries.
struct CommonFields {
  int status = 200;
  std::string_view date;  // IMF-fixdate from DateCache.
  bool keep_alive = true;
  // HTTP/1.0 clients are told "Connection: keep-alive" when we keep theirs
  // open; HTTP/1.1 clients only hear "Connection: close".
  bool client_is_http10 = false;
};

// "HTTP/1.1 <status> <reason>\r\nServer: ...\r\nDate: ...\r\n" plus the
// Connection field when one is due.
void AppendStatusAndCommon(std::string* out, const CommonFields& common);
void AppendField(std::string* out, std::string_view name, std::string_view value);
void AppendFieldUint(std::string* out, std::string_view name, uint64_t value);
void EndHead(std::string* out);

// A strong validator from the file's identity, size and modification time.
// Writes the quoted value (e.g. "\"1b2c-3f-17a8d9e1f2a3b4c5\"") into `out`.
void AppendEtag(std::string* out, uint64_t inode, uint64_t size, int64_t mtime_sec,
                uint32_t mtime_nsec);

// A complete error (or other body-less-by-nature) response: status line,
// common fields, a small HTML body and its Content-Length. `extra_fields`
// is raw "Name: value\r\n" text (may be empty). With head_only the body is
// left out but Content-Length still describes it (RFC 9110 §9.3.2).
// Returns where the head ends in *out (the body, if any, follows).
size_t AppendErrorResponse(std::string* out, const CommonFields& common, bool head_only,
                           std::string_view extra_fields = {});

// errno of opening or reading a path beneath the root → status, as nginx's
// static module maps them: missing 404, forbidden 403, out of descriptors
// or memory 503, anything else 500.
int StatusForOpenError(int err);

}  // namespace sluice

#endif  // SLUICE_HTTP_RESPONSE_H_
