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
// TCP_NODELAY (inherited by accepted sockets). With `defer_accept_s` > 0,
// TCP_DEFER_ACCEPT: the kernel queues a connection for accept only once its
// first bytes arrive (or after about that many seconds without any), so a
// new connection wakes the worker once, not twice. `bound` gets the actual
// address (the port chosen by the kernel when the port was 0).
absl::StatusOr<int> OpenListener(const SocketAddress& address, int backlog, int defer_accept_s,
                                 SocketAddress* bound);

}  // namespace sluice

#endif  // SLUICE_SERVER_LISTENER_H_
