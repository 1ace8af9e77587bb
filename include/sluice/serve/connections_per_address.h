// --max_connections_per_ip: how many connections each client address has
// open, over all workers, in memory that does not grow with the number of
// addresses. Shared by every worker thread (atomics, no locks); created at
// start-up when the limit is on, and outlives the workers.
//
// A count-min sketch: two rows of kCounters atomic counters, each address
// counted in one counter per row (two independent keyed hashes), its count
// read as the smaller of the two. Collisions only ever add, so an address
// may be over-counted (refused while under the limit) but never
// under-counted: a client can never hold more than the limit. 2 x 65536 x 4
// bytes = 512 KiB, whatever connects.
#ifndef SLUICE_SERVE_CONNECTIONS_PER_ADDRESS_H_
#define SLUICE_SERVE_CONNECTIONS_PER_ADDRESS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "sluice/base/ip_address.h"

namespace sluice {

class ConnectionsPerAddress {
 public:
  static constexpr size_t kCounters = 65536;  // Per row; a power of two.
  static constexpr size_t kRows = 2;

  // `limit` >= 1: connections one address may hold. `seed` keys the hashes
  // (random at start-up, so nobody can pick colliding addresses offline).
  ConnectionsPerAddress(uint32_t limit, uint64_t seed);
  ConnectionsPerAddress(const ConnectionsPerAddress&) = delete;
  ConnectionsPerAddress& operator=(const ConnectionsPerAddress&) = delete;

  // Where an address is counted; computed once per connection.
  struct Slots {
    uint32_t index[kRows] = {};
  };
  Slots SlotsFor(const IpAddress& address) const;

  // Counts one more connection for the address, unless that would take it
  // past the limit: then counts nothing and returns false. Concurrent
  // acquires of one address may all fail near the limit, never all pass.
  bool TryAcquire(const Slots& slots);
  // Gives back what a successful TryAcquire took.
  void Release(const Slots& slots);

  uint32_t limit() const { return limit_; }
  // The address's count as the sketch sees it (at least its true count).
  uint32_t Estimate(const Slots& slots) const;

 private:
  const uint32_t limit_;
  uint64_t keys_[kRows];
  std::unique_ptr<std::atomic<uint32_t>[]> counters_;  // kRows * kCounters.
};

}  // namespace sluice

#endif  // SLUICE_SERVE_CONNECTIONS_PER_ADDRESS_H_
