// Socket addresses: listen addresses, CIDR ranges and their text forms.
// Pure functions, any thread.
#ifndef SLUICE_IO_ADDRESS_H_
#define SLUICE_IO_ADDRESS_H_

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

struct SocketAddress {
  sockaddr_storage storage = {};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  int port() const;
  std::string ToString() const;  // "127.0.0.1:8080" or "[::1]:8080".
};

// "HOST:PORT" with an IPv4 literal, "[V6]:PORT", or "localhost:PORT".
absl::StatusOr<SocketAddress> ParseListenAddress(std::string_view text);

}  // namespace sluice

#endif  // SLUICE_IO_ADDRESS_H_
