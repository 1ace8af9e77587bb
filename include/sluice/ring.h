// io_uring set-up for one worker: flag fallback, NODROP check, io-wq bounds,
// and a person-readable reason when the kernel refuses io_uring. Called on
// the worker's own thread (SINGLE_ISSUER binds the ring to its creator).
#ifndef SLUICE_RING_H_
#define SLUICE_RING_H_

#include <liburing.h>

#include <string>

#include "absl/status/status.h"

namespace sluice {

struct RingInfo {
  unsigned setup_flags = 0;  // Flags actually obtained.
  std::string setup_flags_text;
  unsigned sq_entries = 0;
  unsigned cq_entries = 0;
};

// Initialises `ring` with SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1), falling
// back to COOP_TASKRUN (5.19), then to no flags. Requires IORING_FEAT_NODROP.
// kUnavailable when io_uring itself is refused (the message says why and how
// to fix it); other codes for other failures.
absl::Status SetupRing(io_uring* ring, unsigned entries, unsigned iowq_bounded,
                       unsigned iowq_unbounded, RingInfo* info);

// One line naming the cause of an io_uring_queue_init failure and the fix.
std::string ExplainRingError(int err);

}  // namespace sluice

#endif  // SLUICE_RING_H_
