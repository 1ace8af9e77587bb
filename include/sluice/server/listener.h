// Listening sockets: one SO_REUSEPORT socket per worker.
// Start-up only (ordinary blocking syscalls), on the main thread.
#ifndef SLUICE_SERVER_LISTENER_H_
#define SLUICE_SERVER_LISTENER_H_

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/io/address.h"

namespace sluice {

// Fails with a clear message when something else already listens on the
// address (SO_REUSEPORT would otherwise let us share it silently).
absl::Status CheckAddressFree(const SocketAddress& address);

// A non-blocking, close-on-exec, SO_REUSEPORT listening socket with
// TCP_NODELAY (inherited by accepted sockets). `bound` gets the actual
// address (the port chosen by the kernel when the port was 0).
absl::StatusOr<int> OpenListener(const SocketAddress& address, int backlog, SocketAddress* bound);

}  // namespace sluice

#endif  // SLUICE_SERVER_LISTENER_H_
