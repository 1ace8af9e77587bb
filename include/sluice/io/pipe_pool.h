// Per-worker pool of pipes for SPLICE (file → pipe → socket). A pipe is lent
// to one connection for one response body and comes back empty; a pipe that
// may still hold bytes is closed instead of reused. Only the owning worker
// thread touches a pool. Pipes are created with pipe2() on demand (a
// non-blocking syscall: liburing 2.3 has no io_uring_prep_pipe), grown with
// F_SETPIPE_SZ while the worker's page budget allows, and at most `idle_max`
// idle ones are kept.
//
// The budget exists because an unprivileged user's pipes share one
// allowance, fs.pipe-user-pages-soft (16,384 pages by default: 64 pipes of
// 1 MiB), over all of that user's processes: past it a new pipe gets two
// pages and F_SETPIPE_SZ fails with EPERM. SizePipes() divides what the
// process may have between the workers at start-up.
#ifndef SLUICE_IO_PIPE_POOL_H_
#define SLUICE_IO_PIPE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  uint32_t capacity = 0;  // Bytes the pipe holds (F_GETPIPE_SZ), whatever was asked.
};

// What the kernel lets this process's user have in pipes (read at start-up
// from /proc/sys/fs and the process's capabilities).
struct PipeLimits {
  uint64_t user_pages_soft = 0;       // fs.pipe-user-pages-soft; 0: no limit.
  uint64_t user_pages_hard = 0;       // fs.pipe-user-pages-hard; 0: no limit.
  uint64_t max_size_bytes = 1 << 20;  // fs.pipe-max-size.
  uint32_t page_bytes = 4096;
  // CAP_SYS_RESOURCE or CAP_SYS_ADMIN in the initial user namespace: none
  // of the limits above applies (fs/pipe.c, pipe_is_unprivileged_user()).
  bool privileged = false;
};

// The decision: every worker's pipes are `pipe_bytes` big, it keeps at most
// `idle_max` idle, and the pipes it holds at once (idle and lent) grow only
// within `budget_bytes` (0: no budget). workers × budget fits the limit.
struct PipeSizing {
  uint32_t pipe_bytes = 0;
  size_t idle_max = 0;
  uint64_t budget_bytes = 0;
  uint64_t limit_pages = 0;  // The user's limit that applies; 0: none.
};

// Pure: `wanted_bytes` and `wanted_idle` are the configured size and idle
// count. Under a limit, a worker is planned to hold twice its idle count at
// once (as many lent as kept idle); the idle count shrinks first, down to
// kMinIdlePipes, then the size halves, down to the kernel's default pipe.
inline constexpr size_t kMinIdlePipes = 4;
PipeSizing SizePipes(const PipeLimits& limits, int workers, uint32_t wanted_bytes,
                     size_t wanted_idle);

class PipePool {
 public:
  // `budget_bytes`: the most pipe capacity this pool holds in grown pipes;
  // a pipe beyond it keeps the size pipe2() gave it. 0: no budget.
  PipePool(uint32_t pipe_bytes, size_t idle_max, uint64_t budget_bytes = 0)
      : pipe_bytes_(pipe_bytes), idle_max_(idle_max), budget_bytes_(budget_bytes) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // False when no pipe can be had (EMFILE/ENFILE); errno is set. The pipe's
  // capacity is what the kernel gave, which may be less than pipe_bytes.
  bool Acquire(Pipe* out);
  // `empty`: the caller knows the pipe holds no bytes. Only empty pipes of
  // the full size are kept: a smaller one is closed, so the next Acquire
  // tries to grow a new one.
  void Release(const Pipe& pipe, bool empty);

  size_t idle() const { return idle_.size(); }
  size_t lent() const { return lent_; }
  // Capacity of the pipes held (idle and lent), in bytes.
  uint64_t held_bytes() const { return held_bytes_; }
  // Pipes whose F_SETPIPE_SZ failed (the user's limit, shared with its
  // other processes): used at the size they have.
  uint64_t resize_failed() const { return resize_failed_; }
  // Pipes left at their first size because the budget was spent.
  uint64_t over_budget() const { return over_budget_; }

 private:
  void Close(const Pipe& pipe);

  uint32_t pipe_bytes_;
  size_t idle_max_;
  uint64_t budget_bytes_;
  size_t lent_ = 0;
  uint64_t held_bytes_ = 0;
  uint64_t resize_failed_ = 0;
  uint64_t over_budget_ = 0;
  std::vector<Pipe> idle_;
};

}  // namespace sluice

#endif  // SLUICE_IO_PIPE_POOL_H_
