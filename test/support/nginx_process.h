// Debian's nginx (package nginx-light) for the differential tests
// (integration_nginx_*_test.cc): one nginx in the foreground on 127.0.0.1,
// its configuration written from a server block the test supplies, every
// path it writes inside a directory the test owns. Only the process this
// object started is ever signalled. Plus the few header helpers both
// differential tests compare with.

#ifndef SLUICE_TEST_SUPPORT_NGINX_PROCESS_H_
#define SLUICE_TEST_SUPPORT_NGINX_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::test {

inline constexpr char kNginx[] = "/usr/sbin/nginx";
inline constexpr char kNginxMimeTypes[] = "/etc/nginx/mime.types";

class NginxProcess {
 public:
  NginxProcess() = default;
  NginxProcess(const NginxProcess&) = delete;
  NginxProcess& operator=(const NginxProcess&) = delete;
  ~NginxProcess() { Stop(); }

  // Writes dir/nginx.conf (one worker, no master, Debian's mime.types,
  // access log off, every temporary path in `dir`) with one server listening
  // on 127.0.0.1:PORT whose other directives are `server_body` (lines of a
  // server block), and starts nginx; retries with another port if the one
  // picked was taken meanwhile. On failure returns false, *error set.
  bool Start(const std::string& dir, const std::string& server_body, std::string* error);

  uint16_t port() const { return port_; }

  // SIGTERM, then SIGKILL after 5 s.
  void Stop();

 private:
  bool Spawn(const std::vector<std::string>& argv, const std::string& log, std::string* error);
  bool WaitFor(std::chrono::milliseconds timeout);
  bool WaitUntilListening(uint16_t port, std::chrono::milliseconds timeout);

  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// ASCII lower case.
std::string Lower(std::string_view s);

// A Content-Type value without its parameters, lower-cased.
std::string MediaType(std::string_view value);

// The path of a Location value: scheme and authority dropped, query dropped.
std::string LocationPath(std::string_view location);

// Replaces every `from` in *s with `to`.
void ReplaceAll(std::string* s, std::string_view from, std::string_view to);

}  // namespace sluice::test

#endif  // SLUICE_TEST_SUPPORT_NGINX_PROCESS_H_
