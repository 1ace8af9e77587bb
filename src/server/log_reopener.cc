#include "sluice/server/log_reopener.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice {
namespace {

// The helper's reply: 0 and a descriptor, or an errno and none.
void Reply(int sock, int fd, int32_t err) {
  iovec iov = {&err, sizeof(err)};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

// The helper: nothing open but its socket (fd 3) and /dev/null on 0-2, deaf
// to the signals meant for the server (a `kill -USR1` of the process group
// must not end it), alive as long as the server is.
[[noreturn]] void HelperMain(int sock, pid_t parent, const std::string& path) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
  prctl(PR_SET_NAME, "sluice-logopen");
  const int null_fd = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3 && null_fd >= 0; ++fd) dup2(null_fd, fd);
  if (dup2(sock, 3) != 3) _exit(1);
  syscall(SYS_close_range, 4U, ~0U, 0U);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE}) signal(s, SIG_IGN);
  for (;;) {
    char request;
    const ssize_t n = recv(3, &request, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0);  // The server closed its end or is gone.
    const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    Reply(3, fd, fd < 0 ? errno : 0);
    if (fd >= 0) close(fd);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogReopener>> LogReopener::Start(const std::string& path) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    return absl::InternalError(absl::StrCat("log reopen helper: socketpair: ", strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pair[0]);
    close(pair[1]);
    return absl::InternalError(absl::StrCat("log reopen helper: fork: ", strerror(err)));
  }
  if (pid == 0) HelperMain(pair[1], parent, path);
  close(pair[1]);
  // The main thread waits for the helper on SIGUSR1 only: bound the wait.
  const timeval timeout = {5, 0};
  setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  return std::unique_ptr<LogReopener>(new LogReopener(pair[0], pid));
}

LogReopener::~LogReopener() {
  close(socket_);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

absl::StatusOr<int> LogReopener::Open() {
  const char request = 'o';
  if (send(socket_, &request, 1, MSG_NOSIGNAL) != 1) {
    return absl::UnavailableError(
        absl::StrCat("log reopen helper is gone (", strerror(errno), ")"));
  }
  int32_t err = 0;
  iovec iov = {&err, sizeof(err)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  while ((n = recvmsg(socket_, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof(err))) {
    return absl::UnavailableError(absl::StrCat("log reopen helper did not answer (",
                                               n < 0 ? strerror(errno) : "closed", ")"));
  }
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    }
  }
  if (err != 0 || fd < 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(strerror(err != 0 ? err : EBADF));
  }
  return fd;
}

}  // namespace sluice
