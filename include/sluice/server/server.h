// The server: validates the configuration, opens the document root and the
// listening sockets, runs one Worker thread per --threads, and turns
// SIGINT/SIGTERM into a graceful drain. Runs on the main thread.
#ifndef SLUICE_SERVER_SERVER_H_
#define SLUICE_SERVER_SERVER_H_

#include "absl/status/status.h"
#include "sluice/serve/config.h"

namespace sluice {

inline constexpr char kVersion[] = "0.1.0";

// Blocks until the server has stopped. kUnavailable: io_uring was refused
// (the message says why); kInvalidArgument / kNotFound / kAlreadyExists:
// configuration problems found before anything was served.
absl::Status RunServer(const ServerConfig& config);

// CPUs this process may run on, in order.
int AvailableCpuCount();

}  // namespace sluice

#endif  // SLUICE_SERVER_SERVER_H_
