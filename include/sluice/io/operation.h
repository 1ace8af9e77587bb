// Operation records: the io_uring user_data of every SQE we submit is the
// address of one of these, embedded in its owner (a connection, the open-file
// cache, the document root, the access log, the worker's accept/wake/tick).
// The loop (loop.h) hands each CQE, whole, to the owner's OnCompletion, which
// switches on the kind. Owned and touched by one worker thread.
#ifndef SLUICE_IO_OPERATION_H_
#define SLUICE_IO_OPERATION_H_

#include <cstdint>

namespace sluice {

enum class OpKind : uint8_t {
  // Connection operations.
  kRecv,
  kSend,
  kOpen,
  kStatx,
  kRead,
  kSpliceIn,  // file → pipe (pipe → socket is a plain splice(): never blocks)
  kPollOut,
  kShutdown,
  kClose,
  kLingerTimeout,  // IORING_OP_LINK_TIMEOUT bounding a lingering RECV.
  // Worker operations.
  kAccept,
  kWake,
  kTick,
  kAcceptRetry,
  kLogWrite,     // WRITE of a worker's access-log buffer.
  kInotifyPoll,  // POLL_ADD on the open-file cache's inotify descriptor.
  kRootOpen,     // OPENAT of the document root's path (a re-resolution).
  kRootStatx,    // STATX of what that opened.
  kRootCheck,    // The per-tick STATX of the document root's path.
  kPoolWake,     // READ of the blocking pool's eventfd: helper jobs are done.
  // Fire-and-forget: results unused, user_data is FireAndForgetTag(kind).
  kCloseFile,
  kCancel,
  kCount,
};

const char* OpKindName(OpKind kind);

// A connection's operations come first in OpKind; the rest belong to the
// worker's long-lived components.
inline bool IsConnectionOp(OpKind kind) { return kind < OpKind::kAccept; }

// user_data for operations whose completion nobody waits for: a small
// integer (never a valid Operation address) that still names the kind, so
// in-flight counts stay exact.
inline uint64_t FireAndForgetTag(OpKind kind) { return static_cast<uint64_t>(kind) + 1; }
inline constexpr uint64_t kMaxFireAndForgetTag = 64;

struct Operation;

// Whoever embeds Operation records. OnCompletion receives every CQE of its
// operations with its result and flags: on success, on error, after a cancel,
// late or not. It first takes what the completion carries (a descriptor, a
// provided buffer, bytes moved) and only then decides what happens next.
class CompletionHandler {
 public:
  virtual void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept = 0;

 protected:
  ~CompletionHandler() = default;
};

// Identity is the address: not copyable, not movable.
struct Operation {
  Operation() = default;
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  OpKind kind = OpKind::kRecv;
  // The component that embeds this record and handles its completions.
  CompletionHandler* owner = nullptr;
  // True exactly while an SQE naming this record may still post a CQE.
  bool in_flight = false;
  // The owner's generation when submitted (connections: the slot's use);
  // the owner checks it on completion, since a slot is reused only after
  // its last CQE.
  uint32_t generation = 0;
};

}  // namespace sluice

#endif  // SLUICE_IO_OPERATION_H_
