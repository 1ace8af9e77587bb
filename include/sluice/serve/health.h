// Liveness and readiness of the whole server, for /healthz and /readyz.
// Each worker stamps its own heartbeat on its tick (a relaxed store into its
// own slot); any worker answering a probe reads every slot (relaxed loads,
// no lock, no allocation). Readiness is one flag the main thread clears when
// a drain starts. Shared by all threads; lives as long as the workers.
#ifndef SLUICE_SERVE_HEALTH_H_
#define SLUICE_SERVE_HEALTH_H_

#include <atomic>
#include <cstdint>
#include <memory>

namespace sluice {

class HealthState {
 public:
  // A worker whose heartbeat is older than this is stuck: its loop stopped
  // turning (the tick runs every 250 ms, so 5 s is 20 missed ticks).
  static constexpr int64_t kStaleNs = int64_t{5} * 1000 * 1000 * 1000;

  // `workers` slots, each stamped `now_ns` (monotonic) as a start.
  HealthState(int workers, int64_t now_ns);

  // Worker `index`'s thread: its loop turned at `now_ns`.
  void Beat(int index, int64_t now_ns) { beats_[index].store(now_ns, std::memory_order_relaxed); }
  // Every worker's loop turned within kStaleNs of `now_ns`.
  bool Live(int64_t now_ns) const;

  // Ready while accepting: false from the moment a drain starts.
  bool ready() const { return ready_.load(std::memory_order_relaxed); }
  void set_ready(bool ready) { ready_.store(ready, std::memory_order_relaxed); }

 private:
  const int workers_;
  std::unique_ptr<std::atomic<int64_t>[]> beats_;
  std::atomic<bool> ready_{true};
};

}  // namespace sluice

#endif  // SLUICE_SERVE_HEALTH_H_
