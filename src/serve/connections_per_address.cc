#include "sluice/serve/connections_per_address.h"

#include <algorithm>
#include <cstring>

#include "sluice/base/check.h"

namespace sluice {
namespace {

// The murmur3 64-bit finaliser: every input bit affects every output bit.
uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

}  // namespace

ConnectionsPerAddress::ConnectionsPerAddress(uint32_t limit, uint64_t seed)
    : limit_(limit), counters_(std::make_unique<std::atomic<uint32_t>[]>(kRows * kCounters)) {
  SLUICE_CHECK(limit >= 1, "a per-address limit counts at least one connection");
  for (size_t r = 0; r < kRows; ++r) {
    keys_[r] = Mix(seed + 0x9E3779B97F4A7C15ull * (r + 1));
  }
  for (size_t i = 0; i < kRows * kCounters; ++i) counters_[i].store(0, std::memory_order_relaxed);
}

ConnectionsPerAddress::Slots ConnectionsPerAddress::SlotsFor(const IpAddress& address) const {
  uint64_t lo = 0, hi = 0;
  std::memcpy(&lo, address.bytes().data(), 8);
  std::memcpy(&hi, address.bytes().data() + 8, 8);
  hi ^= static_cast<uint64_t>(address.family()) << 56;
  Slots s;
  for (size_t r = 0; r < kRows; ++r) {
    const uint64_t h = Mix(Mix(lo ^ keys_[r]) + hi);
    s.index[r] = static_cast<uint32_t>(r * kCounters + (h & (kCounters - 1)));
  }
  return s;
}

bool ConnectionsPerAddress::TryAcquire(const Slots& slots) {
  // Count first, then read every row back: the last of several concurrent
  // acquirers of one address (in the single order of seq_cst operations)
  // sees all their increments, so they cannot all pass the limit together,
  // as they could if each judged only the values its own increments
  // returned.
  for (uint32_t i : slots.index) counters_[i].fetch_add(1);
  uint32_t estimate = UINT32_MAX;
  for (uint32_t i : slots.index) estimate = std::min(estimate, counters_[i].load());
  if (estimate <= limit_) return true;
  Release(slots);
  return false;
}

void ConnectionsPerAddress::Release(const Slots& slots) {
  for (uint32_t i : slots.index) {
    const uint32_t before = counters_[i].fetch_sub(1);
    SLUICE_CHECK(before > 0, "a per-address counter is released only after it was acquired");
  }
}

uint32_t ConnectionsPerAddress::Estimate(const Slots& slots) const {
  uint32_t estimate = UINT32_MAX;
  for (uint32_t i : slots.index) {
    estimate = std::min(estimate, counters_[i].load());
  }
  return estimate;
}

}  // namespace sluice
