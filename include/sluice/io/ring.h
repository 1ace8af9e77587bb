// io_uring set-up for one worker: flag fallback, NODROP check, io-wq bounds,
// and a person-readable reason when the kernel refuses io_uring. Called on
// the worker's own thread (SINGLE_ISSUER binds the ring to its creator).
#ifndef SLUICE_IO_RING_H_
#define SLUICE_IO_RING_H_

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

struct RingOptions {
  unsigned entries = 0;
  unsigned iowq_bounded = 0;    // io-wq workers for regular files.
  unsigned iowq_unbounded = 0;  // io-wq workers for sockets and pipes.
  // A kernel thread polls the SQ, so submitting needs no system call while
  // it is awake; it sleeps after `sqpoll_idle_ms` without work.
  bool sqpoll = false;
  unsigned sqpoll_idle_ms = 0;
};

// Initialises `ring` with SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1), falling
// back to COOP_TASKRUN (5.19), then to no flags; with `sqpoll`, SQPOLL with
// SINGLE_ISSUER, then SQPOLL alone (no fallback to a ring without it).
// Requires IORING_FEAT_NODROP. kUnavailable when io_uring itself is refused
// (the message says why and how to fix it); other codes for other failures.
// The kernel refused io_uring (EPERM/EACCES/ENOSYS): a status so marked
// (IsIoUringRefused) explains the cause and the fix in its message.
absl::Status SetupRing(io_uring* ring, const RingOptions& options, RingInfo* info);

inline constexpr char kIoUringRefusedPayload[] = "sluice/io_uring_refused";
inline bool IsIoUringRefused(const absl::Status& st) {
  return st.GetPayload(kIoUringRefusedPayload).has_value();
}

// One line naming the cause of an io_uring_queue_init failure and the fix.
std::string ExplainRingError(int err);

}  // namespace sluice

#endif  // SLUICE_IO_RING_H_
