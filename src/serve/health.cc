#include "sluice/serve/health.h"

namespace sluice {

HealthState::HealthState(int workers, int64_t now_ns)
    : workers_(workers), beats_(std::make_unique<std::atomic<int64_t>[]>(workers)) {
  for (int i = 0; i < workers_; ++i) beats_[i].store(now_ns, std::memory_order_relaxed);
}

bool HealthState::Live(int64_t now_ns) const {
  for (int i = 0; i < workers_; ++i) {
    if (now_ns - beats_[i].load(std::memory_order_relaxed) > kStaleNs) return false;
  }
  return true;
}

}  // namespace sluice
