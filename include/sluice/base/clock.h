// Monotonic time for deadlines and latency. Any thread; clock_gettime is a
// vDSO call, not a system call.
#ifndef SLUICE_BASE_CLOCK_H_
#define SLUICE_BASE_CLOCK_H_

#include <cstdint>
#include <ctime>

namespace sluice {

inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace sluice

#endif  // SLUICE_BASE_CLOCK_H_
