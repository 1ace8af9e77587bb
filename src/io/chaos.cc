#include "sluice/io/chaos.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace sluice {
namespace {

struct FaultName {
  uint32_t bit;
  const char* name;
};
constexpr FaultName kFaultNames[] = {
    {kChaosDelay, "delay"},
    {kChaosShort, "short"},
    {kChaosAgain, "again"},
    {kChaosError, "error"},
    {kChaosCancelRecv, "cancel_recv"},
    {kChaosCancel, "cancel"},
    {kChaosTimer, "timer"},
};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint32_t ParseFaults(const char* text) {
  uint32_t faults = 0;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    if (name == "all") faults |= kChaosAll;
    for (const FaultName& f : kFaultNames) {
      if (name == f.name) faults |= f.bit;
    }
  }
  return faults;
}

// Errors the kernel can post for each operation. `again`: the server must
// recover without losing the response; `error`: the connection may end.
int ErrorFor(uint8_t opcode, OpKind kind, bool buffer_select, bool multishot, bool again,
             uint64_t r) {
  auto pick = [r](std::initializer_list<int> list) {
    return list.size() == 0 ? 0 : -*(list.begin() + r % list.size());
  };
  switch (opcode) {
    case IORING_OP_RECV:
      if (again) return buffer_select ? -ENOBUFS : 0;
      return multishot ? pick({ECONNRESET, ENOBUFS}) : pick({ECONNRESET, EINTR, ECANCELED});
    case IORING_OP_SEND:
      return again ? 0 : pick({EPIPE, ECONNRESET, EINTR, ECANCELED});
    case IORING_OP_SPLICE:
      return again ? 0 : pick({EIO, EINTR, ECANCELED});
    case IORING_OP_READ:
      if (kind == OpKind::kWake) return again ? pick({EAGAIN, EINTR}) : 0;
      if (kind == OpKind::kRead) return again ? 0 : pick({EIO, EINTR, EAGAIN});
      return 0;
    case IORING_OP_OPENAT2:
    case IORING_OP_STATX:
      return again ? 0 : pick({EIO, EINTR, ECANCELED});
    case IORING_OP_POLL_ADD:
      return kind == OpKind::kPollOut && !again ? pick({ECANCELED, EINTR}) : 0;
    case IORING_OP_SHUTDOWN:
      return again ? 0 : pick({ENOTCONN, ECANCELED});
    case IORING_OP_ACCEPT:
      return again ? pick({ECONNABORTED, EINTR, EAGAIN}) : pick({EMFILE, ENFILE, ECANCELED});
    default:
      return 0;  // CLOSE, cancels, timeouts, writes, ...: never replaced.
  }
}

}  // namespace

ChaosOptions ChaosOptions::FromEnv() {
  ChaosOptions o;
  const char* seed = std::getenv("SLUICE_CHAOS_SEED");
  if (seed == nullptr || !absl::SimpleAtoi(seed, &o.seed)) {
    if (getrandom(&o.seed, sizeof(o.seed), GRND_NONBLOCK) != sizeof(o.seed)) o.seed = 1;
    o.seed %= 1000000000;  // Short enough to retype.
  }
  if (const char* rate = std::getenv("SLUICE_CHAOS_RATE")) {
    double r = 0;
    if (absl::SimpleAtod(rate, &r)) o.rate = std::clamp(r, 0.0, 1.0);
  }
  if (const char* faults = std::getenv("SLUICE_CHAOS_FAULTS")) o.faults = ParseFaults(faults);
  if (const char* delay = std::getenv("SLUICE_CHAOS_DELAY")) {
    uint32_t d = 0;
    if (absl::SimpleAtoi(delay, &d)) o.delay_max = std::max<uint32_t>(d, 1);
  }
  if (const char* skew = std::getenv("SLUICE_CHAOS_SKEW")) {
    int s = 0;
    if (absl::SimpleAtoi(skew, &s)) o.skew_max_s = std::max(s, 0);
  }
  return o;
}

const ChaosOptions& ChaosOptions::Process() {
  static const ChaosOptions options = FromEnv();
  return options;
}

std::string ChaosOptions::Describe() const {
  std::vector<std::string> names;
  for (const FaultName& f : kFaultNames) {
    if (faults & f.bit) names.push_back(f.name);
  }
  return absl::StrCat("seed=", seed, " rate=", rate,
                      " faults=", names.empty() ? "none" : absl::StrJoin(names, ","),
                      " delay=", delay_max, " skew=", skew_max_s);
}

Chaos::Chaos(const ChaosOptions& options, int worker_index)
    : options_(options),
      worker_index_(worker_index),
      state_(SplitMix64(options.seed + static_cast<uint64_t>(worker_index) * 0x1000193)) {}

uint64_t Chaos::Next() {
  state_ = SplitMix64(state_);
  return state_;
}

int Chaos::PickError(const io_uring_sqe* sqe, OpKind kind, bool connection_op, uint32_t fault) {
  // Of the worker's own operations only ACCEPT and the wake-up READ have
  // handlers that take errors; the others (inotify, access log) are left be.
  if (!connection_op && kind != OpKind::kAccept && kind != OpKind::kWake) return 0;
  const bool buffer_select = (sqe->flags & IOSQE_BUFFER_SELECT) != 0;
  const bool multishot = sqe->opcode == IORING_OP_RECV && (sqe->ioprio & IORING_RECV_MULTISHOT);
  return ErrorFor(sqe->opcode, kind, buffer_select, multishot, fault == kChaosAgain, Next());
}

void Chaos::BeforeSubmit(io_uring* ring) {
  io_uring_sq* sq = &ring->sq;
  bool previous_links = false;
  for (unsigned i = sq->sqe_head; i != sq->sqe_tail; ++i) {
    io_uring_sqe* sqe = &sq->sqes[i & sq->ring_mask];
    const uint8_t links = sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
    // In a chain (it links on, a link points at it, or it is a linked
    // timeout): a NOP in its place would change what the chain does.
    const bool chained = previous_links || links != 0 || sqe->opcode == IORING_OP_LINK_TIMEOUT;
    previous_links = links != 0;
    const uint64_t user_data = sqe->user_data;
    if (user_data < kMaxFireAndForgetTag) continue;  // CLOSE of a file, cancels.
    const auto* op = reinterpret_cast<const Operation*>(user_data);
    const OpKind kind = op->kind;
    const bool connection_op = IsConnectionOp(kind);
    const bool multishot_recv =
        sqe->opcode == IORING_OP_RECV && (sqe->ioprio & IORING_RECV_MULTISHOT);
    const bool cancellable =
        connection_op ? kind != OpKind::kClose && !chained : kind == OpKind::kAccept;
    if (!Chance()) {
      if (cancellable) Track(user_data, multishot_recv || kind == OpKind::kAccept);
      continue;
    }
    // One fault per SQE, chosen among those that fit it.
    const bool shortable = (sqe->opcode == IORING_OP_SEND || sqe->opcode == IORING_OP_RECV ||
                            sqe->opcode == IORING_OP_SPLICE ||
                            (sqe->opcode == IORING_OP_READ && kind == OpKind::kRead)) &&
                           sqe->len > 1;
    uint32_t choices[3];
    int n = 0;
    if (Enabled(kChaosShort) && shortable) choices[n++] = kChaosShort;
    if (!chained) {
      for (uint32_t f : {kChaosAgain, kChaosError}) {
        if (Enabled(f)) choices[n++] = f;
      }
    }
    const uint32_t fault = n == 0 ? 0 : choices[Next() % static_cast<uint64_t>(n)];
    if (fault == kChaosShort) {
      // Mostly a little short, sometimes down to one byte.
      const uint32_t len = sqe->len;
      sqe->len = (Next() & 3) == 0 ? 1 + static_cast<uint32_t>(Next() % 16 % (len - 1))
                                   : 1 + static_cast<uint32_t>(Next() % (len - 1));
      ++counters_[kShortCount];
    } else if (fault != 0) {
      const int res = PickError(sqe, kind, connection_op, fault);
      if (res != 0) {
        io_uring_prep_nop(sqe);  // Clears flags (buffer select) and keeps user_data.
        sqe->user_data = user_data;
        injected_[user_data] = res;
        ++counters_[fault == kChaosAgain ? kAgainCount : kErrorCount];
        continue;  // A NOP completes at once: nothing to cancel.
      }
    }
    if (cancellable) Track(user_data, multishot_recv || kind == OpKind::kAccept);
  }
}

bool Chaos::Hold(ChaosCqe* cqe) {
  if (!injected_.empty()) {
    auto it = injected_.find(cqe->user_data);
    if (it != injected_.end()) {
      cqe->res = it->second;
      injected_.erase(it);
    }
  }
  if (!(cqe->flags & IORING_CQE_F_MORE)) Untrack(cqe->user_data);
  auto it = held_by_user_data_.find(cqe->user_data);
  const bool behind = it != held_by_user_data_.end();
  if (!behind && !(Enabled(kChaosDelay) && Chance())) return false;
  uint64_t due = iteration_ + 1 + Next() % options_.delay_max;
  HeldInfo& info = behind ? it->second : held_by_user_data_[cqe->user_data];
  // Never before an earlier completion of the same operation.
  due = std::max(due, info.last_due);
  info.last_due = due;
  ++info.count;
  held_.push_back(Held{*cqe, due});
  ++counters_[kHeldCount];
  return true;
}

void Chaos::Track(uint64_t user_data, bool recv_or_accept) {
  if (tracked_index_.contains(user_data)) return;
  tracked_index_[user_data] = tracked_.size();
  tracked_.push_back(Tracked{user_data, recv_or_accept});
}

void Chaos::Untrack(uint64_t user_data) {
  auto it = tracked_index_.find(user_data);
  if (it == tracked_index_.end()) return;
  const size_t i = it->second;
  tracked_index_.erase(it);
  if (i + 1 != tracked_.size()) {
    tracked_[i] = tracked_.back();
    tracked_index_[tracked_[i].user_data] = i;
  }
  tracked_.pop_back();
}

Operation* Chaos::PickCancel() {
  if (tracked_.empty() || !(Enabled(kChaosCancel) || Enabled(kChaosCancelRecv)) || !Chance()) {
    return nullptr;
  }
  const Tracked& t = tracked_[Next() % tracked_.size()];
  if (!Enabled(kChaosCancel) && !t.recv_or_accept) return nullptr;
  ++counters_[kCancelCount];
  return reinterpret_cast<Operation*>(t.user_data);
}

bool Chaos::EarlyDeadlines(int* skew_s) {
  if (!Enabled(kChaosTimer) || !Chance()) return false;
  *skew_s = options_.skew_max_s == 0
                ? 0
                : static_cast<int>(Next() % static_cast<uint64_t>(options_.skew_max_s + 1));
  ++counters_[kTimerCount];
  return true;
}

unsigned Chaos::InlineLength(unsigned len) {
  if (len <= 1 || !Enabled(kChaosShort) || !Chance()) return len;
  ++counters_[kShortCount];
  return 1 + static_cast<unsigned>(Next() % (len - 1));
}

int Chaos::InlineFault(bool to_socket) {
  if (Enabled(kChaosAgain) && Chance()) {
    ++counters_[kAgainCount];
    return -EAGAIN;
  }
  if (Enabled(kChaosError) && Chance()) {
    ++counters_[kErrorCount];
    const uint64_t r = Next();
    return to_socket ? (r % 2 == 0 ? -EPIPE : -ECONNRESET) : -EIO;
  }
  return 0;
}

std::string Chaos::Summary() const {
  return absl::StrCat("chaos worker ", worker_index_, ": short=", counters_[kShortCount],
                      " again=", counters_[kAgainCount], " error=", counters_[kErrorCount],
                      " cancel=", counters_[kCancelCount], " timer=", counters_[kTimerCount],
                      " held=", counters_[kHeldCount]);
}

}  // namespace sluice
