// Per-worker pool of pipes for SPLICE (file → pipe → socket). A pipe is lent
// to one connection for one response body and comes back empty; a pipe that
// may still hold bytes is closed instead of reused. Only the owning worker
// thread touches a pool. Pipes are created with pipe2() on demand (a
// non-blocking syscall: liburing 2.3 has no io_uring_prep_pipe) and at most
// `idle_max` idle ones are kept, because fs.pipe-user-pages-soft clamps a
// user's pipes once ~1024 default-sized ones exist.
#ifndef SLUICE_IO_PIPE_POOL_H_
#define SLUICE_IO_PIPE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  uint32_t capacity = 0;  // Bytes the pipe holds (F_GETPIPE_SZ).
};

class PipePool {
 public:
  PipePool(uint32_t pipe_bytes, size_t idle_max) : pipe_bytes_(pipe_bytes), idle_max_(idle_max) {}
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // False when no pipe can be had (EMFILE/ENFILE); errno is set.
  bool Acquire(Pipe* out);
  // `empty`: the caller knows the pipe holds no bytes.
  void Release(const Pipe& pipe, bool empty);

  size_t idle() const { return idle_.size(); }
  size_t lent() const { return lent_; }

 private:
  uint32_t pipe_bytes_;
  size_t idle_max_;
  size_t lent_ = 0;
  std::vector<Pipe> idle_;
};

}  // namespace sluice

#endif  // SLUICE_IO_PIPE_POOL_H_
