#include "sluice/io/recv_buffers.h"

#include <sys/mman.h>

#include "sluice/base/check.h"

namespace sluice {

RecvBuffers::~RecvBuffers() { TearDown(); }

bool RecvBuffers::SetUp(io_uring* ring, unsigned count, unsigned bytes) {
  if (count == 0) return false;
  // The ring of buffer descriptors must be page-aligned: mmap it (liburing
  // 2.3 has no io_uring_setup_buf_ring).
  const size_t ring_bytes = sizeof(io_uring_buf) * count;
  void* mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return false;
  io_uring_buf_reg reg = {};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = count;
  reg.bgid = kGroup;
  if (io_uring_register_buf_ring(ring, &reg, 0) != 0) {
    munmap(mem, ring_bytes);  // Linux < 5.19.
    return false;
  }
  ring_ = ring;
  ring_bytes_ = ring_bytes;
  count_ = count;
  bytes_ = bytes;
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(buf_ring_);
  memory_ = std::make_unique<char[]>(size_t{count_} * bytes_);
  const int mask = io_uring_buf_ring_mask(count_);
  for (unsigned i = 0; i < count_; ++i) {
    io_uring_buf_ring_add(buf_ring_, buffer(static_cast<uint16_t>(i)), bytes_,
                          static_cast<uint16_t>(i), mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(count_));
  return true;
}

void RecvBuffers::TearDown() {
  if (buf_ring_ == nullptr) return;
  io_uring_unregister_buf_ring(ring_, kGroup);
  munmap(buf_ring_, ring_bytes_);
  buf_ring_ = nullptr;
}

void RecvBuffers::Recycle(uint16_t bid) {
  SLUICE_CHECK(out_ > 0 && bid < count_,
               "only a buffer the kernel handed us goes back to the ring");
  --out_;
  io_uring_buf_ring_add(buf_ring_, buffer(bid), bytes_, bid, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(buf_ring_, 1);
  --lent_;
}

}  // namespace sluice
