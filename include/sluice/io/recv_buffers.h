// The provided-buffer ring idle connections receive into (Linux 5.19): the
// kernel picks a buffer when data arrives, so an idle connection holds no
// receive memory. Owned by the Loop; one worker thread only.
//
// Accounting: `lent` counts buffers the kernel has handed out (in a CQE with
// IORING_CQE_F_BUFFER) and we have not given back; `out` counts those of the
// completion being handled. The Loop checks `out` is 0 after every handler,
// so a buffer can never be kept past its completion.
#ifndef SLUICE_IO_RECV_BUFFERS_H_
#define SLUICE_IO_RECV_BUFFERS_H_

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace sluice {

class RecvBuffers {
 public:
  // The buffer group id every RECV with IOSQE_BUFFER_SELECT names.
  static constexpr uint16_t kGroup = 1;

  RecvBuffers() = default;
  RecvBuffers(const RecvBuffers&) = delete;
  RecvBuffers& operator=(const RecvBuffers&) = delete;
  ~RecvBuffers();

  // Registers `count` (a power of two; 0: none) buffers of `bytes` each with
  // `ring`. False when the kernel has no buffer rings (then connections keep
  // their own receive buffers).
  bool SetUp(io_uring* ring, unsigned count, unsigned bytes);
  // Before the ring is torn down.
  void TearDown();

  bool enabled() const { return buf_ring_ != nullptr; }
  unsigned count() const { return count_; }
  unsigned bytes() const { return bytes_; }
  char* buffer(uint16_t bid) { return memory_.get() + size_t{bid} * bytes_; }
  // Buffers the kernel may still fill (the ring is full when lent() is 0).
  size_t free() const { return enabled() ? count_ - lent_ : 0; }
  size_t lent() const { return lent_; }

  // A CQE carried buffer `bid`: it is the handler's until Recycle().
  void TakeFromCompletion() {
    ++lent_;
    ++out_;
  }
  unsigned out() const { return out_; }
  // Gives a buffer of the current completion back to the kernel.
  void Recycle(uint16_t bid);

 private:
  io_uring* ring_ = nullptr;
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t ring_bytes_ = 0;
  unsigned count_ = 0;
  unsigned bytes_ = 0;
  size_t lent_ = 0;
  unsigned out_ = 0;
  std::unique_ptr<char[]> memory_;
};

}  // namespace sluice

#endif  // SLUICE_IO_RECV_BUFFERS_H_
