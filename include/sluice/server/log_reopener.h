// A tiny privileged helper process that reopens the access log after the
// server dropped root. logrotate typically leaves a root-owned directory
// (and `create 0640 root adm`), where the unprivileged server cannot create
// the new file; nginx's master reopens as root for the same reason. Forked
// while still root and before any thread exists, the helper keeps nothing
// but one end of a socketpair: on each one-byte request it opens the one
// path it was given (no path ever crosses the socket) and passes the
// descriptor back (SCM_RIGHTS). It exits when the server closes its end or
// dies (PR_SET_PDEATHSIG). Used on the main thread only.
#ifndef SLUICE_SERVER_LOG_REOPENER_H_
#define SLUICE_SERVER_LOG_REOPENER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace sluice {

class LogReopener {
 public:
  // Forks the helper for `path`. Call as root, before threads start.
  static absl::StatusOr<std::unique_ptr<LogReopener>> Start(const std::string& path);
  // Closes the socket (the helper exits on EOF) and reaps the helper.
  ~LogReopener();
  LogReopener(const LogReopener&) = delete;
  LogReopener& operator=(const LogReopener&) = delete;

  // Asks the helper to open the path (O_APPEND|O_CREAT, 0640 when new);
  // returns the descriptor, or why not. Waits at most a few seconds.
  absl::StatusOr<int> Open();
  pid_t pid() const { return pid_; }

 private:
  LogReopener(int socket, pid_t pid) : socket_(socket), pid_(pid) {}
  int socket_;
  pid_t pid_;
};

}  // namespace sluice

#endif  // SLUICE_SERVER_LOG_REOPENER_H_
