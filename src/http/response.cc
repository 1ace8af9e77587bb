#include "sluice/http/response.h"

#include <cerrno>
#include <charconv>

namespace sluice {

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void AppendFieldUint(std::string* out, std::string_view name, uint64_t value) {
  char digits[24];
  const auto res = std::to_chars(digits, digits + sizeof(digits), value);
  AppendField(out, name, std::string_view(digits, res.ptr - digits));
}

void AppendField(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

void AppendStatusAndCommon(std::string* out, const CommonFields& common) {
  char code[4];
  code[0] = static_cast<char>('0' + common.status / 100);
  code[1] = static_cast<char>('0' + common.status / 10 % 10);
  code[2] = static_cast<char>('0' + common.status % 10);
  code[3] = ' ';
  out->append("HTTP/1.1 ");
  out->append(code, 4);
  out->append(ReasonPhrase(common.status));
  out->append("\r\n");
  AppendField(out, "Server", kServerName);
  AppendField(out, "Date", common.date);
  if (!common.keep_alive) {
    AppendField(out, "Connection", "close");
  } else if (common.client_is_http10) {
    AppendField(out, "Connection", "keep-alive");
  }
}

void EndHead(std::string* out) { out->append("\r\n"); }

void AppendEtag(std::string* out, uint64_t inode, uint64_t size, int64_t mtime_sec,
                uint32_t mtime_nsec) {
  const uint64_t mtime_ns =
      static_cast<uint64_t>(mtime_sec) * 1000000000ull + static_cast<uint64_t>(mtime_nsec);
  const auto append_hex = [out](uint64_t v) {
    char digits[16];
    const auto res = std::to_chars(digits, digits + sizeof(digits), v, 16);
    out->append(digits, static_cast<size_t>(res.ptr - digits));
  };
  out->push_back('"');
  append_hex(inode);
  out->push_back('-');
  append_hex(size);
  out->push_back('-');
  append_hex(mtime_ns);
  out->push_back('"');
}

size_t AppendErrorResponse(std::string* out, const CommonFields& common, bool head_only,
                           std::string_view extra_fields) {
  char code[3] = {static_cast<char>('0' + common.status / 100),
                  static_cast<char>('0' + common.status / 10 % 10),
                  static_cast<char>('0' + common.status % 10)};
  const std::string_view status(code, 3);
  const std::string_view reason = ReasonPhrase(common.status);
  // <html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1></body></html>\n
  constexpr std::string_view kA = "<!DOCTYPE html>\n<html><head><title>";
  constexpr std::string_view kB = "</title></head>\n<body><h1>";
  constexpr std::string_view kC = "</h1><hr><p>sluice</p></body></html>\n";
  const size_t body_len =
      kA.size() + kB.size() + kC.size() + 2 * (status.size() + 1 + reason.size());

  AppendStatusAndCommon(out, common);
  AppendField(out, "Content-Type", "text/html; charset=utf-8");
  AppendFieldUint(out, "Content-Length", body_len);
  out->append(extra_fields);
  EndHead(out);
  const size_t head_end = out->size();
  if (head_only) return head_end;
  out->append(kA);
  out->append(status).append(" ").append(reason);
  out->append(kB);
  out->append(status).append(" ").append(reason);
  out->append(kC);
  return head_end;
}

// errno from OPENAT2 → status (as nginx's static module maps them).
int StatusForOpenError(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case EXDEV:  // RESOLVE_BENEATH: the path (via a symlink) leaves the root.
      return 404;
    case EACCES:
    case EPERM:
    case ELOOP:
    case ENXIO:  // A socket, or a device without a driver.
    case ENODEV:
    case EAGAIN:
      return 403;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return 503;
    default:
      return 500;
  }
}

}  // namespace sluice
