// Fault injection at the ring boundary, compiled in only with the CMake
// option SLUICE_CHAOS (preset `chaos`). A worker's Loop owns one Chaos and calls it
// where SQEs go to the kernel and where CQEs come back; every decision is
// drawn from a PRNG seeded from SLUICE_CHAOS_SEED, so a failure can be
// replayed. Without SLUICE_CHAOS this header is not included anywhere and
// the worker's loop has no extra branch. Owned and touched by one worker
// thread, except ChaosOptions::FromEnv() (start-up).
//
// Faults (each one a bit of ChaosOptions::faults):
//  - delay: a reaped CQE is copied and delivered 1..delay_max loop
//    iterations later; later CQEs of the same user_data wait behind it, so a
//    multishot operation's completions stay in order.
//  - short: the length of a SEND, RECV, READ (file) or SPLICE is cut, on the
//    ring or in a plain splice() made in its place (InlineLength).
//  - again / error: an SQE is replaced by a NOP whose completion carries an
//    error the kernel could return for that operation (`again`: errors the
//    server must recover from without losing the response; `error`: errors
//    that end the connection). Never applied to a linked chain, CLOSE,
//    cancels or timeouts. The replaced operation never reached the kernel,
//    so nothing it would have done (a descriptor, a buffer, bytes) is lost.
//  - cancel_recv / cancel: an IORING_OP_ASYNC_CANCEL for a random in-flight
//    multishot RECV or ACCEPT (cancel_recv) or any connection operation.
//  - timer: deadline processing runs between the completions of a batch,
//    with the clock moved up to skew_max_s seconds ahead.
#ifndef SLUICE_IO_CHAOS_H_
#define SLUICE_IO_CHAOS_H_

#include <liburing.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sluice/io/operation.h"

namespace sluice {

enum ChaosFault : uint32_t {
  kChaosDelay = 1u << 0,
  kChaosShort = 1u << 1,
  kChaosAgain = 1u << 2,
  kChaosError = 1u << 3,
  kChaosCancelRecv = 1u << 4,
  kChaosCancel = 1u << 5,
  kChaosTimer = 1u << 6,
  kChaosAll = (1u << 7) - 1,
};

struct ChaosOptions {
  uint64_t seed = 0;
  double rate = 0.05;  // Probability of a fault at each decision point.
  uint32_t faults = kChaosAll;
  uint32_t delay_max = 4;  // Loop iterations a held CQE waits at most.
  int skew_max_s = 2;      // How far ahead early deadline processing looks.

  // SLUICE_CHAOS_SEED (default: random), SLUICE_CHAOS_RATE (0..1),
  // SLUICE_CHAOS_FAULTS (comma-separated names above, or "all"),
  // SLUICE_CHAOS_DELAY (iterations), SLUICE_CHAOS_SKEW (seconds).
  static ChaosOptions FromEnv();
  // FromEnv(), read once for the whole process (every worker and the
  // start-up log see the same seed).
  static const ChaosOptions& Process();
  // "seed=... rate=... faults=... delay=... skew=...", for the start-up log.
  std::string Describe() const;
};

// A completion as Dispatch() sees it, copied out of the CQ.
struct ChaosCqe {
  uint64_t user_data;
  int32_t res;
  uint32_t flags;
};

class Chaos {
 public:
  Chaos(const ChaosOptions& options, int worker_index);
  Chaos(const Chaos&) = delete;
  Chaos& operator=(const Chaos&) = delete;

  // Called with the SQEs prepared since the last submission still local
  // (between sq.sqe_head and sq.sqe_tail): shortens or replaces some.
  void BeforeSubmit(io_uring* ring);
  // A reaped CQE: applies an injected result, then returns true when the
  // completion was held back (it is delivered later by DeliverDue).
  bool Hold(ChaosCqe* cqe);
  // Once per loop iteration: hands every held CQE that is due to `deliver`.
  template <typename F>
  void DeliverDue(F&& deliver) {
    ++iteration_;
    if (held_.empty()) return;
    delivering_.swap(held_);
    for (const Held& h : delivering_) {
      if (h.due > iteration_) {
        held_.push_back(h);
        continue;
      }
      auto it = held_by_user_data_.find(h.cqe.user_data);
      if (--it->second.count == 0) held_by_user_data_.erase(it);
      deliver(h.cqe);
    }
    delivering_.clear();
  }
  // True while some completion is held: the loop must neither block nor end.
  bool holding() const { return !held_.empty(); }
  // A plain non-blocking syscall made in place of a ring operation (a
  // splice that cannot block), faulted as its SQE would be: InlineLength()
  // may cut its length (short); InlineFault() returns 0, -EAGAIN (again:
  // the caller must wait or take the ring instead) or an error the call
  // could return (error), which the caller then takes as the result.
  unsigned InlineLength(unsigned len);
  int InlineFault(bool to_socket);
  // An in-flight operation to cancel now, or null.
  Operation* PickCancel();
  // Whether to process deadlines now, between completions; `*skew_s` is how
  // far ahead of the clock.
  bool EarlyDeadlines(int* skew_s);
  // Faults injected so far, by kind, and CQEs held.
  std::string Summary() const;

 private:
  struct Held {
    ChaosCqe cqe;
    uint64_t due;  // Loop iteration at which it may be delivered.
  };
  struct HeldInfo {
    uint32_t count = 0;
    uint64_t last_due = 0;
  };
  struct Tracked {
    uint64_t user_data;
    bool recv_or_accept;  // A multishot RECV or an ACCEPT: cancel_recv may pick it.
  };
  enum Counter {
    kShortCount,
    kAgainCount,
    kErrorCount,
    kCancelCount,
    kTimerCount,
    kHeldCount,
    kCounters
  };

  uint64_t Next();
  bool Chance() { return (Next() >> 11) * 0x1.0p-53 < options_.rate; }
  bool Enabled(uint32_t fault) const { return (options_.faults & fault) != 0; }
  // An error for `sqe` (kind `kind`) from the list for `fault`, or 0 if none fits.
  int PickError(const io_uring_sqe* sqe, OpKind kind, bool connection_op, uint32_t fault);
  void Track(uint64_t user_data, bool recv_or_accept);
  void Untrack(uint64_t user_data);

  const ChaosOptions options_;
  const int worker_index_;
  uint64_t state_;
  uint64_t iteration_ = 0;
  std::vector<Held> held_;
  std::vector<Held> delivering_;
  absl::flat_hash_map<uint64_t, HeldInfo> held_by_user_data_;
  absl::flat_hash_map<uint64_t, int32_t> injected_;  // user_data → result of its NOP.
  std::vector<Tracked> tracked_;                     // In the kernel, cancellable.
  absl::flat_hash_map<uint64_t, size_t> tracked_index_;
  std::array<uint64_t, kCounters> counters_ = {};
};

}  // namespace sluice

#endif  // SLUICE_IO_CHAOS_H_
