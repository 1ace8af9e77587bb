// Cell: a counter or gauge written by one thread (relaxed stores, no
// read-modify-write: a single writer needs none) and read by any thread
// without locks. Metrics shards and the loop's in-flight counts use it.
#ifndef SLUICE_BASE_CELL_H_
#define SLUICE_BASE_CELL_H_

#include <atomic>
#include <cstdint>

#include "sluice/base/check.h"

namespace sluice {

// A counter or gauge with one writer thread.
class Cell {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Sub(uint64_t n = 1) {
    SLUICE_DCHECK(v_.load(std::memory_order_relaxed) >= n, "a gauge never goes below zero");
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void Set(uint64_t n) { v_.store(n, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace sluice

#endif  // SLUICE_BASE_CELL_H_
