#include "sluice/io/pipe_pool.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include "sluice/base/check.h"

namespace sluice {
namespace {

// pipe2() gives PIPE_DEF_BUFFERS (16) pages while the user is under its
// soft limit.
constexpr uint64_t kDefaultPipePages = 16;

int PipeHolds(const Pipe& pipe) {
  int n = 0;
  return ioctl(pipe.read_fd, FIONREAD, &n) == 0 ? n : -1;
}

// The kernel rounds a requested size up to a power of two of pages
// (round_pipe_size()); plan with the largest such size not above `bytes`,
// so the plan is what the kernel will give and never above pipe-max-size.
uint64_t FloorPowerOfTwoPages(uint64_t bytes, uint64_t page) {
  uint64_t pages = 1;
  while (pages * 2 * page <= bytes) pages *= 2;
  return pages * page;
}

}  // namespace

PipeSizing SizePipes(const PipeLimits& limits, int workers, uint32_t wanted_bytes,
                     size_t wanted_idle) {
  PipeSizing s;
  s.pipe_bytes = wanted_bytes;
  s.idle_max = wanted_idle;
  if (limits.privileged || wanted_bytes == 0) return s;
  const uint64_t page = std::max<uint64_t>(limits.page_bytes, 1);
  uint64_t bytes = wanted_bytes;
  if (limits.max_size_bytes > 0) bytes = std::min(bytes, limits.max_size_bytes);
  bytes = FloorPowerOfTwoPages(bytes, page);
  uint64_t limit = limits.user_pages_soft;
  if (limits.user_pages_hard > 0 && (limit == 0 || limits.user_pages_hard < limit)) {
    limit = limits.user_pages_hard;
  }
  s.limit_pages = limit;
  if (limit == 0) {
    s.pipe_bytes = static_cast<uint32_t>(bytes);
    return s;
  }
  const uint64_t worker_pages = limit / static_cast<uint64_t>(std::max(workers, 1));
  const size_t idle_floor = std::min(kMinIdlePipes, wanted_idle);
  size_t idle = 0;
  for (;;) {
    const uint64_t pipes = worker_pages / (bytes / page);
    idle = static_cast<size_t>(std::min<uint64_t>(wanted_idle, pipes / 2));
    if (idle >= idle_floor || bytes <= kDefaultPipePages * page) break;
    bytes /= 2;
  }
  s.pipe_bytes = static_cast<uint32_t>(bytes);
  // Below even one default pipe per worker: keep one idle all the same
  // (pipes then stay at the size pipe2() gives).
  s.idle_max = std::max(idle, std::min<size_t>(wanted_idle, 1));
  s.budget_bytes = worker_pages * page;
  return s;
}

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
  int size = fcntl(fds[1], F_GETPIPE_SZ);
  const auto wanted = static_cast<int>(pipe_bytes_);
  // A larger pipe means fewer splices per body: grow it while the budget
  // allows (shrinking is always allowed). A pipe that cannot be grown all
  // the same (the user's other processes took the allowance) works at the
  // size it has: every splice is sized by `capacity`.
  if (size != wanted) {
    if (size > wanted || budget_bytes_ == 0 || held_bytes_ + pipe_bytes_ <= budget_bytes_) {
      if (fcntl(fds[1], F_SETPIPE_SZ, wanted) < 0) ++resize_failed_;
      size = fcntl(fds[1], F_GETPIPE_SZ);
    } else {
      ++over_budget_;
    }
  }
  out->read_fd = fds[0];
  out->write_fd = fds[1];
  out->capacity = size > 0 ? static_cast<uint32_t>(size) : 4096;
  held_bytes_ += out->capacity;
  ++lent_;
  return true;
}

void PipePool::Release(const Pipe& pipe, bool empty) {
  SLUICE_CHECK(lent_ > 0, "only a lent pipe comes back");
  --lent_;
  // The caller's count of bytes in the pipe must agree with the kernel's:
  // a pooled pipe with bytes in it would send them to the next client.
  SLUICE_DCHECK(!empty || PipeHolds(pipe) == 0, "a pipe released as empty is empty");
  if (empty && idle_.size() < idle_max_ && pipe.capacity >= pipe_bytes_) {
    idle_.push_back(pipe);
    return;
  }
  Close(pipe);
}

void PipePool::Close(const Pipe& pipe) {
  SLUICE_CHECK(held_bytes_ >= pipe.capacity, "a pool holds the pipes it counts");
  held_bytes_ -= pipe.capacity;
  close(pipe.read_fd);
  close(pipe.write_fd);
}

}  // namespace sluice
