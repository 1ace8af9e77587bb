#include "sluice/server/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/base/unique_fd.h"

namespace sluice {
namespace {

absl::Status Errno(std::string_view what, const SocketAddress& address) {
  const int err = errno;
  if (err == EADDRINUSE) {
    return absl::AlreadyExistsError(
        absl::StrCat("cannot listen on ", address.ToString(), ": address already in use"));
  }
  return absl::UnavailableError(
      absl::StrCat(std::string(what), " ", address.ToString(), ": ", strerror(err)));
}

}  // namespace

absl::Status CheckAddressFree(const SocketAddress& address) {
  if (address.port() == 0) return absl::OkStatus();
  const int fd = socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot create a socket for", address);
  UniqueFd closer(fd);
  const int one = 1;
  // SO_REUSEADDR only: TIME_WAIT leftovers are fine, a live listener is not.
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0) {
    return Errno("cannot bind", address);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> OpenListener(const SocketAddress& address, int backlog, int defer_accept_s,
                                 SocketAddress* bound) {
  const int fd = socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot create a socket for", address);
  UniqueFd closer(fd);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return Errno("cannot set SO_REUSEPORT on", address);
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (defer_accept_s > 0 &&
      setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_accept_s, sizeof(defer_accept_s)) != 0) {
    return Errno("cannot set TCP_DEFER_ACCEPT on", address);
  }
  if (address.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0) {
    return Errno("cannot bind", address);
  }
  if (listen(fd, backlog) != 0) return Errno("cannot listen on", address);
  bound->length = sizeof(bound->storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound->storage), &bound->length) != 0) {
    return Errno("getsockname failed for", address);
  }
  return closer.Release();
}

}  // namespace sluice
