#include "sluice/pipe_pool.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "sluice/log.h"

namespace sluice {

PipePool::~PipePool() {
  for (const Pipe& p : idle_) {
    close(p.read_fd);
    close(p.write_fd);
  }
}

bool PipePool::Acquire(Pipe* out) {
  if (!idle_.empty()) {
    *out = idle_.back();
    idle_.pop_back();
    ++lent_;
    return true;
  }
  int fds[2];
  // Non-blocking on both ends: a splice must never park an io-wq thread on
  // the pipe; we only ever move bytes we know are there (or room we know is).
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  // A larger pipe means fewer splices per body. Failing to grow it (limits,
  // pipe-user-pages-soft) is fine: the default 64 KiB works.
  fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(pipe_bytes_));
  const int size = fcntl(fds[1], F_GETPIPE_SZ);
  out->read_fd = fds[0];
  out->write_fd = fds[1];
  out->capacity = size > 0 ? static_cast<uint32_t>(size) : 4096;
  ++lent_;
  return true;
}

void PipePool::Release(const Pipe& pipe, bool empty) {
  --lent_;
#ifdef SLUICE_CHAOS
  // A pooled pipe is empty, or the next response sends this one's bytes.
  // The check costs a system call, so only the fault-injection build has it.
  int queued = 0;
  if (empty && ioctl(pipe.read_fd, FIONREAD, &queued) == 0 && queued != 0) {
    LogError(absl::StrCat("invariant broken: a pipe released as empty holds ", queued, " bytes"));
    std::abort();
  }
#endif
  if (empty && idle_.size() < idle_max_) {
    idle_.push_back(pipe);
    return;
  }
  close(pipe.read_fd);
  close(pipe.write_fd);
}

}  // namespace sluice
