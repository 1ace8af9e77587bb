#include "support/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice::test {
namespace {

constexpr std::size_t kMaxHeadSize = 1 << 20;

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool ParseDecimal(std::string_view s, std::uint64_t* value) {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (const char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *value = v;
  return true;
}

bool ParseHex(std::string_view s, std::uint64_t* value) {
  if (s.empty() || s.size() > 15) return false;
  std::uint64_t v = 0;
  for (const char c : s) {
    int digit;
    if (IsDigit(c)) {
      digit = c - '0';
    } else if (AsciiLower(c) >= 'a' && AsciiLower(c) <= 'f') {
      digit = AsciiLower(c) - 'a' + 10;
    } else {
      return false;
    }
    v = v * 16 + static_cast<std::uint64_t>(digit);
  }
  *value = v;
  return true;
}

std::string ErrnoText(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, 1000 * 1000));
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return value;
  }
  return std::nullopt;
}

int HttpResponse::HeaderCount(std::string_view name) const {
  int count = 0;
  for (const auto& header : headers) {
    if (EqualsIgnoreCase(header.first, name)) ++count;
  }
  return count;
}

bool HttpResponse::HeaderHasToken(std::string_view name, std::string_view token) const {
  for (const auto& [key, value] : headers) {
    if (!EqualsIgnoreCase(key, name)) continue;
    std::string_view rest = value;
    while (true) {
      const std::size_t comma = rest.find(',');
      if (EqualsIgnoreCase(TrimOws(rest.substr(0, comma)), token)) return true;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return false;
}

std::string HttpResponse::Describe() const {
  return EscapeBytes(head, 4096) + "[body: " + std::to_string(body.size()) + " bytes] " +
         EscapeBytes(body, 512);
}

HttpConnection::~HttpConnection() { Close(); }

HttpConnection::HttpConnection(HttpConnection&& other) noexcept { *this = std::move(other); }

HttpConnection& HttpConnection::operator=(HttpConnection&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    buffer_ = std::move(other.buffer_);
    other.buffer_.clear();
    eof_ = other.eof_;
    reset_ = other.reset_;
    last_error_ = std::move(other.last_error_);
  }
  return *this;
}

bool HttpConnection::Fail(std::string message) {
  last_error_ = std::move(message);
  return false;
}

bool HttpConnection::Connect(std::string_view host, std::uint16_t port, Millis timeout,
                             std::string_view source) {
  Close();
  buffer_.clear();
  eof_ = reset_ = false;
  last_error_.clear();

  sockaddr_storage addr = {};
  socklen_t addr_len = 0;
  int family = 0;
  if (host == "127.0.0.1") {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    family = AF_INET;
    addr_len = sizeof(sockaddr_in);
  } else if (host == "::1") {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    in6->sin6_addr = in6addr_loopback;
    family = AF_INET6;
    addr_len = sizeof(sockaddr_in6);
  } else {
    return Fail("refusing to connect to non-loopback host '" + std::string(host) + "'");
  }

  const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Fail("socket: " + ErrnoText(errno));
  if (!source.empty()) {
    sockaddr_in from = {};
    from.sin_family = AF_INET;
    const std::string source_text(source);
    if (family != AF_INET || inet_pton(AF_INET, source_text.c_str(), &from.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0) {
      const int err = errno;
      close(fd);
      return Fail("bind to source " + source_text + ": " + ErrnoText(err));
    }
  }
  const auto deadline = Clock::now() + timeout;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    if (errno != EINPROGRESS) {
      const int err = errno;
      close(fd);
      return Fail("connect to port " + std::to_string(port) + ": " + ErrnoText(err));
    }
    while (true) {
      pollfd pfd = {fd, POLLOUT, 0};
      const int ready = poll(&pfd, 1, RemainingMs(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        close(fd);
        return Fail("connect to port " + std::to_string(port) + ": timed out");
      }
      break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      close(fd);
      return Fail("connect to port " + std::to_string(port) + ": " + ErrnoText(err));
    }
  }
  // Back to a blocking socket; all I/O below uses poll() plus MSG_DONTWAIT.
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fd_ = fd;
  return true;
}

bool HttpConnection::Send(std::string_view data, Millis timeout) {
  if (fd_ < 0) return Fail("send: not connected");
  const auto deadline = Clock::now() + timeout;
  std::size_t sent = 0;
  while (sent < data.size()) {
    pollfd pfd = {fd_, POLLOUT, 0};
    const int ready = poll(&pfd, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Fail("poll: " + ErrnoText(errno));
    if (ready == 0) {
      return Fail("send timed out after " + std::to_string(sent) + " of " +
                  std::to_string(data.size()) + " bytes");
    }
    const ssize_t n =
        send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return Fail("send: " + ErrnoText(errno));
    }
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

ssize_t HttpConnection::RecvInto(char* destination, std::size_t max, Clock::time_point deadline) {
  if (fd_ < 0) {
    Fail("recv: not connected");
    return -1;
  }
  if (eof_) return 0;
  while (true) {
    pollfd pfd = {fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      Fail("poll: " + ErrnoText(errno));
      return -1;
    }
    if (ready == 0) {
      Fail("timed out waiting for data (" + std::to_string(buffer_.size()) +
           " unconsumed bytes: " + EscapeBytes(buffer_, 256) + ")");
      return -1;
    }
    const ssize_t n = recv(fd_, destination, max, MSG_DONTWAIT);
    if (n > 0) return n;
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    if (errno == ECONNRESET) {
      eof_ = reset_ = true;
      return 0;
    }
    Fail("recv: " + ErrnoText(errno));
    return -1;
  }
}

ssize_t HttpConnection::Fill(Clock::time_point deadline, std::size_t max) {
  if (scratch_.size() < max) scratch_.resize(max);
  const ssize_t n = RecvInto(scratch_.data(), max, deadline);
  if (n > 0) buffer_.append(scratch_.data(), static_cast<std::size_t>(n));
  return n;
}

bool HttpConnection::ReadLine(Clock::time_point deadline, std::string* line) {
  while (true) {
    const std::size_t end = buffer_.find("\r\n");
    if (end != std::string::npos) {
      line->assign(buffer_, 0, end);
      buffer_.erase(0, end + 2);
      return true;
    }
    if (buffer_.size() > kMaxHeadSize) return Fail("line too long");
    const ssize_t n = Fill(deadline);
    if (n < 0) return false;
    if (n == 0) return Fail("connection closed in the middle of a line");
  }
}

std::optional<HttpResponse> HttpConnection::ReadHeadUntil(Clock::time_point deadline) {
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (buffer_.size() > kMaxHeadSize) {
      Fail("response head larger than 1 MiB");
      return std::nullopt;
    }
    const ssize_t n = Fill(deadline);
    if (n < 0) return std::nullopt;
    if (n == 0) {
      Fail(std::string(reset_ ? "connection reset" : "EOF") + " before a complete response head (" +
           std::to_string(buffer_.size()) + " bytes: " + EscapeBytes(buffer_, 512) + ")");
      return std::nullopt;
    }
  }
  HttpResponse response;
  response.head = buffer_.substr(0, end + 4);
  buffer_.erase(0, end + 4);

  const std::string_view head = response.head;
  const std::string_view bad = "malformed response head: ";
  std::size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  if (status_line.size() < 13 || status_line.substr(0, 5) != "HTTP/" || !IsDigit(status_line[5]) ||
      status_line[6] != '.' || !IsDigit(status_line[7]) || status_line[8] != ' ' ||
      !IsDigit(status_line[9]) || !IsDigit(status_line[10]) || !IsDigit(status_line[11]) ||
      status_line[12] != ' ') {
    Fail(std::string(bad) + "bad status line '" + EscapeBytes(status_line, 256) + "'");
    return std::nullopt;
  }
  response.version = std::string(status_line.substr(0, 8));
  response.status =
      (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 + (status_line[11] - '0');
  response.reason = std::string(status_line.substr(13));
  for (const char c : response.reason) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
      Fail(std::string(bad) + "control character in reason phrase");
      return std::nullopt;
    }
  }

  std::size_t pos = line_end + 2;
  while (pos < head.size() - 2) {
    line_end = head.find("\r\n", pos);
    const std::string_view line = head.substr(pos, line_end - pos);
    pos = line_end + 2;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      Fail(std::string(bad) + "header line without a name: '" + EscapeBytes(line, 256) + "'");
      return std::nullopt;
    }
    const std::string_view name = line.substr(0, colon);
    for (const char c : name) {
      if (!IsTokenChar(c)) {
        Fail(std::string(bad) + "invalid character in header name '" + EscapeBytes(name, 256) +
             "'");
        return std::nullopt;
      }
    }
    const std::string_view value = TrimOws(line.substr(colon + 1));
    for (const char c : value) {
      if (c == '\r' || c == '\n' || c == '\0') {
        Fail(std::string(bad) + "CR, LF or NUL in header value");
        return std::nullopt;
      }
    }
    response.headers.emplace_back(std::string(name), std::string(value));
  }
  return response;
}

std::optional<HttpResponse> HttpConnection::ReadResponseHead(Millis timeout) {
  return ReadHeadUntil(Clock::now() + timeout);
}

bool HttpConnection::ReadBodyChunked(Clock::time_point deadline, std::string* body) {
  std::string line;
  for (int chunks = 0;; ++chunks) {
    if (chunks > 1000000) return Fail("too many chunks");
    if (!ReadLine(deadline, &line)) return false;
    std::string_view size_text = line;
    size_text = size_text.substr(0, size_text.find(';'));
    std::uint64_t size = 0;
    if (!ParseHex(TrimOws(size_text), &size)) {
      return Fail("bad chunk size line '" + EscapeBytes(line, 256) + "'");
    }
    if (size == 0) break;
    if (!ReadExactly(size, body, std::chrono::duration_cast<Millis>(deadline - Clock::now()))) {
      return false;
    }
    if (!ReadLine(deadline, &line)) return false;
    if (!line.empty()) return Fail("chunk data not followed by CRLF");
  }
  // Trailer section.
  for (int trailers = 0; trailers < 1000; ++trailers) {
    if (!ReadLine(deadline, &line)) return false;
    if (line.empty()) return true;
  }
  return Fail("too many trailer fields");
}

std::optional<HttpResponse> HttpConnection::ReadResponse(std::string_view request_method,
                                                         Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  std::optional<HttpResponse> response = ReadHeadUntil(deadline);
  if (!response) return std::nullopt;
  const int status = response->status;
  if (request_method == "HEAD" || (status >= 100 && status < 200) || status == 204 ||
      status == 304) {
    return response;
  }
  if (response->HasHeader("Transfer-Encoding")) {
    if (!response->HeaderHasToken("Transfer-Encoding", "chunked")) {
      Fail("unsupported Transfer-Encoding: " + *response->Header("Transfer-Encoding"));
      return std::nullopt;
    }
    response->chunked = true;
    if (!ReadBodyChunked(deadline, &response->body)) return std::nullopt;
    return response;
  }
  if (response->HasHeader("Content-Length")) {
    if (response->HeaderCount("Content-Length") != 1) {
      Fail("several Content-Length fields in response: " + EscapeBytes(response->head));
      return std::nullopt;
    }
    std::uint64_t length = 0;
    if (!ParseDecimal(*response->Header("Content-Length"), &length)) {
      Fail("invalid Content-Length '" + *response->Header("Content-Length") + "'");
      return std::nullopt;
    }
    if (length > (std::uint64_t{1} << 31)) {
      Fail("Content-Length " + std::to_string(length) +
           " too large to buffer; use ReadResponseHead");
      return std::nullopt;
    }
    if (!ReadExactly(static_cast<std::size_t>(length), &response->body,
                     std::chrono::duration_cast<Millis>(deadline - Clock::now()))) {
      last_error_ = "reading a " + std::to_string(length) + "-byte body: " + last_error_ +
                    "; head was: " + EscapeBytes(response->head, 1024);
      return std::nullopt;
    }
    return response;
  }
  // No framing: the body runs to EOF.
  if (!ReadToEof(&response->body, std::chrono::duration_cast<Millis>(deadline - Clock::now()))) {
    return std::nullopt;
  }
  return response;
}

bool HttpConnection::ReadExactly(std::size_t size, std::string* out, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::size_t from_buffer = std::min(size, buffer_.size());
  out->append(buffer_, 0, from_buffer);
  buffer_.erase(0, from_buffer);
  std::size_t position = out->size();
  const std::size_t end = position + (size - from_buffer);
  out->resize(end);
  while (position < end) {
    const ssize_t n = RecvInto(out->data() + position, end - position, deadline);
    if (n <= 0) {
      const std::size_t missing = end - position;
      out->resize(position);
      if (n < 0) {
        return Fail(last_error_ + " (" + std::to_string(missing) + " of " + std::to_string(size) +
                    " bytes still missing)");
      }
      return Fail(std::string(reset_ ? "connection reset" : "EOF") + " with " +
                  std::to_string(missing) + " of " + std::to_string(size) + " bytes still missing");
    }
    position += static_cast<std::size_t>(n);
  }
  return true;
}

bool HttpConnection::DiscardExactly(std::uint64_t size, std::size_t tail_size, std::string* tail,
                                    Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  tail->clear();
  std::uint64_t missing = size;
  // Appends the part of `data` that falls into the last tail_size bytes of the body.
  auto consume = [&](std::string_view data) {
    missing -= data.size();
    if (missing < tail_size) {
      const std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), tail_size - missing));
      tail->append(data.substr(data.size() - take));
    }
  };
  const std::size_t from_buffer =
      static_cast<std::size_t>(std::min<std::uint64_t>(size, buffer_.size()));
  consume(std::string_view(buffer_).substr(0, from_buffer));
  buffer_.erase(0, from_buffer);
  constexpr std::size_t kChunk = 1 << 20;
  if (scratch_.size() < kChunk) scratch_.resize(kChunk);
  while (missing > 0) {
    const ssize_t n =
        RecvInto(scratch_.data(),
                 static_cast<std::size_t>(std::min<std::uint64_t>(missing, kChunk)), deadline);
    if (n < 0) {
      return Fail(last_error_ + " (" + std::to_string(missing) + " of " + std::to_string(size) +
                  " bytes still missing)");
    }
    if (n == 0) {
      return Fail(std::string(reset_ ? "connection reset" : "EOF") + " with " +
                  std::to_string(missing) + " of " + std::to_string(size) + " bytes still missing");
    }
    consume(std::string_view(scratch_.data(), static_cast<std::size_t>(n)));
  }
  return true;
}

std::size_t HttpConnection::ReadSome(std::size_t max, std::string* out, Millis timeout) {
  if (buffer_.empty()) {
    if (Fill(Clock::now() + timeout, max) <= 0) return 0;
  }
  const std::size_t take = std::min(max, buffer_.size());
  out->append(buffer_, 0, take);
  buffer_.erase(0, take);
  return take;
}

bool HttpConnection::ReadToEof(std::string* out, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    out->append(buffer_);
    buffer_.clear();
    const ssize_t n = Fill(deadline);
    if (n < 0) return Fail("waiting for EOF: " + last_error_);
    if (n == 0) return true;
    if (out->size() > (std::size_t{1} << 31)) return Fail("more than 2 GiB before EOF");
  }
}

bool HttpConnection::WaitForClose(Millis timeout) {
  if (!buffer_.empty()) {
    return Fail("expected the connection to close, but unread bytes are pending: " +
                EscapeBytes(buffer_, 512));
  }
  const ssize_t n = Fill(Clock::now() + timeout);
  if (n < 0) return Fail("expected the connection to close: " + last_error_);
  if (n > 0) {
    return Fail("expected the connection to close, but got more bytes: " +
                EscapeBytes(buffer_, 512));
  }
  return true;
}

bool HttpConnection::ExpectNoData(Millis quiet) {
  if (!buffer_.empty()) return Fail("unexpected extra bytes: " + EscapeBytes(buffer_, 512));
  if (fd_ < 0) return Fail("not connected");
  while (true) {
    pollfd pfd = {fd_, POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(quiet.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Fail("poll: " + ErrnoText(errno));
    if (ready == 0) return true;
    break;
  }
  const ssize_t n = Fill(Clock::now() + quiet);
  if (n == 0)
    return Fail(reset_ ? "connection reset unexpectedly" : "connection closed unexpectedly");
  if (n > 0) return Fail("unexpected extra bytes: " + EscapeBytes(buffer_, 512));
  return false;
}

void HttpConnection::ShutdownWrite() {
  if (fd_ >= 0) shutdown(fd_, SHUT_WR);
}

void HttpConnection::Close() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

std::string MakeRequest(std::string_view method, std::string_view target,
                        std::string_view extra_headers, std::string_view version) {
  std::string request;
  request.reserve(method.size() + target.size() + extra_headers.size() + 64);
  request.append(method).append(" ").append(target).append(" ").append(version);
  request.append("\r\nHost: localhost\r\n").append(extra_headers).append("\r\n");
  return request;
}

std::optional<HttpResponse> FetchOnce(std::string_view host, std::uint16_t port,
                                      std::string_view raw_request, std::string* error,
                                      std::string_view request_method, Millis timeout) {
  HttpConnection connection;
  std::optional<HttpResponse> response;
  if (!connection.Connect(host, port, timeout) || !connection.Send(raw_request, timeout) ||
      !(response = connection.ReadResponse(request_method, timeout))) {
    *error = connection.last_error();
    return std::nullopt;
  }
  return response;
}

::testing::AssertionResult IsErrorResponse(const HttpResponse& response, int status) {
  if (response.status != status) {
    return ::testing::AssertionFailure() << "expected status " << status << ", got "
                                         << response.status << ": " << response.Describe();
  }
  if (response.HeaderCount("Content-Length") != 1) {
    return ::testing::AssertionFailure()
           << "expected exactly one Content-Length: " << response.Describe();
  }
  if (*response.Header("Content-Length") != std::to_string(response.body.size())) {
    return ::testing::AssertionFailure()
           << "Content-Length does not match the body: " << response.Describe();
  }
  if (response.body.empty()) {
    return ::testing::AssertionFailure()
           << "error response has an empty body: " << response.Describe();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult BytesEqual(std::string_view actual, std::string_view expected) {
  const std::size_t common = std::min(actual.size(), expected.size());
  std::size_t offset = 0;
  while (offset < common && actual[offset] == expected[offset]) ++offset;
  if (offset == common && actual.size() == expected.size()) {
    return ::testing::AssertionSuccess();
  }
  auto failure = ::testing::AssertionFailure();
  failure << "got " << actual.size() << " bytes, expected " << expected.size() << " bytes";
  if (offset < common) {
    failure << "; first difference at offset " << offset << ": got '"
            << EscapeBytes(actual.substr(offset, 32)) << "', expected '"
            << EscapeBytes(expected.substr(offset, 32)) << "'";
  } else {
    failure << "; one is a prefix of the other";
  }
  return failure;
}

std::string EscapeBytes(std::string_view data, std::size_t max) {
  std::string out;
  for (const char c : data) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace sluice::test
