// A small raw-socket HTTP/1.1 client for integration tests.
//
// The socket is blocking, but every wait goes through poll() with a deadline
// and every send/recv uses MSG_DONTWAIT, so no call can block longer than its
// timeout. Only loopback addresses (127.0.0.1 and ::1) may be connected to.
// Responses are parsed strictly (CRLF line endings, no obs-fold, no space
// before a header colon) so that framing mistakes in the server show up.

#ifndef SLUICE_TEST_SUPPORT_HTTP_CLIENT_H_
#define SLUICE_TEST_SUPPORT_HTTP_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::test {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Generous enough for sanitizer builds on a loaded two-core machine.
inline constexpr Millis kDefaultIoTimeout{10000};

struct HttpResponse {
  std::string version;  // "HTTP/1.1"
  int status = 0;
  std::string reason;
  // In order of arrival; names as sent, values with surrounding OWS removed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string head;  // Raw status line and header block, including the final CRLF CRLF.
  std::string body;  // Decoded body (de-chunked if the response was chunked).
  bool chunked = false;

  // First value of the header `name` (case-insensitive), if present.
  std::optional<std::string> Header(std::string_view name) const;
  int HeaderCount(std::string_view name) const;
  bool HasHeader(std::string_view name) const { return HeaderCount(name) > 0; }
  // True if the comma-separated header `name` contains `token` (case-insensitive).
  bool HeaderHasToken(std::string_view name, std::string_view token) const;
  // Head plus an escaped prefix of the body, for failure messages.
  std::string Describe() const;
};

class HttpConnection {
 public:
  HttpConnection() = default;
  ~HttpConnection();
  HttpConnection(HttpConnection&& other) noexcept;
  HttpConnection& operator=(HttpConnection&& other) noexcept;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Connects to `host` ("127.0.0.1" or "::1" only) and `port`, from the
  // loopback address `source` when given (an IPv4 one in 127.0.0.0/8, so a
  // test can be many clients).
  bool Connect(std::string_view host, std::uint16_t port, Millis timeout = kDefaultIoTimeout,
               std::string_view source = {});
  bool connected() const { return fd_ >= 0; }

  // Sends all of `data`.
  bool Send(std::string_view data, Millis timeout = kDefaultIoTimeout);

  // Reads one complete response. `request_method` is the method of the
  // request it answers: a HEAD response has no body. A response without
  // Content-Length or chunked framing is read to EOF.
  std::optional<HttpResponse> ReadResponse(std::string_view request_method = "GET",
                                           Millis timeout = kDefaultIoTimeout);
  // Reads only the status line and headers; the body stays unread.
  std::optional<HttpResponse> ReadResponseHead(Millis timeout = kDefaultIoTimeout);
  // Reads exactly `size` bytes (buffered bytes first) and appends them to *out.
  bool ReadExactly(std::size_t size, std::string* out, Millis timeout = kDefaultIoTimeout);
  // Reads and discards exactly `size` bytes, keeping the last `tail_size` of them in *tail.
  bool DiscardExactly(std::uint64_t size, std::size_t tail_size, std::string* tail, Millis timeout);
  // Appends at most `max` bytes to *out, waiting up to `timeout` for the first
  // one. Returns the number of bytes read; 0 means EOF, timeout or an error
  // (see eof() and last_error()).
  std::size_t ReadSome(std::size_t max, std::string* out, Millis timeout);
  // Reads until EOF (or a connection reset) and appends everything to *out.
  bool ReadToEof(std::string* out, Millis timeout = kDefaultIoTimeout);

  // Waits until the peer closes the connection (EOF or reset). Returns false
  // on timeout or if any further byte arrives; extra bytes go to last_error().
  bool WaitForClose(Millis timeout = kDefaultIoTimeout);
  // Returns true if nothing arrives within `quiet` and the connection stays open.
  bool ExpectNoData(Millis quiet);

  void ShutdownWrite();
  void Close();

  bool eof() const { return eof_; }
  bool reset() const { return reset_; }
  const std::string& last_error() const { return last_error_; }
  // Bytes received but not consumed by a Read* call yet.
  const std::string& buffered() const { return buffer_; }
  int fd() const { return fd_; }

 private:
  // Receives up to `max` bytes into buffer_. Returns the number received,
  // 0 on EOF/reset, -1 on timeout or error (last_error_ set).
  ssize_t Fill(Clock::time_point deadline, std::size_t max = 256 * 1024);
  // Like Fill, but receives straight into `destination` (not into buffer_).
  ssize_t RecvInto(char* destination, std::size_t max, Clock::time_point deadline);
  bool ReadLine(Clock::time_point deadline, std::string* line);
  bool ReadBodyChunked(Clock::time_point deadline, std::string* body);
  std::optional<HttpResponse> ReadHeadUntil(Clock::time_point deadline);
  bool Fail(std::string message);

  int fd_ = -1;
  std::string buffer_;
  std::vector<char> scratch_;
  bool eof_ = false;
  bool reset_ = false;
  std::string last_error_;
};

// "METHOD target HTTP/1.1\r\nHost: localhost\r\n" + extra_headers + "\r\n".
// `extra_headers` must be empty or consist of complete "Name: value\r\n" lines.
std::string MakeRequest(std::string_view method, std::string_view target,
                        std::string_view extra_headers = "", std::string_view version = "HTTP/1.1");

// Opens a connection, sends `raw_request`, reads one response. On failure
// returns nullopt and stores a description in *error.
std::optional<HttpResponse> FetchOnce(std::string_view host, std::uint16_t port,
                                      std::string_view raw_request, std::string* error,
                                      std::string_view request_method = "GET",
                                      Millis timeout = kDefaultIoTimeout);

// Succeeds if `response` is a well-framed error response: status `status`, a
// non-empty body and exactly one Content-Length equal to the body size.
::testing::AssertionResult IsErrorResponse(const HttpResponse& response, int status);

// Compares two (possibly huge) byte strings, reporting the sizes and the
// first differing offset instead of dumping them.
::testing::AssertionResult BytesEqual(std::string_view actual, std::string_view expected);

// Escapes non-printable bytes; truncates to `max` characters.
std::string EscapeBytes(std::string_view data, std::size_t max = 2048);

}  // namespace sluice::test

#endif  // SLUICE_TEST_SUPPORT_HTTP_CLIENT_H_
