#include "sluice/io/pipe_pool.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sluice/base/check.h"

namespace sluice {
namespace {

int PipeHolds(const Pipe& pipe) {
  int n = 0;
  return ioctl(pipe.read_fd, FIONREAD, &n) == 0 ? n : -1;
}

}  // namespace

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
  SLUICE_CHECK(lent_ > 0, "only a lent pipe comes back");
  --lent_;
  // The caller's count of bytes in the pipe must agree with the kernel's:
  // a pooled pipe with bytes in it would send them to the next client.
  SLUICE_DCHECK(!empty || PipeHolds(pipe) == 0, "a pipe released as empty is empty");
  if (empty && idle_.size() < idle_max_) {
    idle_.push_back(pipe);
    return;
  }
  close(pipe.read_fd);
  close(pipe.write_fd);
}

}  // namespace sluice
