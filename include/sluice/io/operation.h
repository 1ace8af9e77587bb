// Operation records: the io_uring user_data of every SQE we submit is the
// address of one of these, embedded in its owner (a Connection's slot, or the
// Worker's accept/wake/timer slots). The dispatcher reads the kind and calls
// the owner's On<Kind> handler. Owned and touched by one worker thread.
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
  kSpliceIn,   // file → pipe
  kSpliceOut,  // pipe → socket
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
  kInotify,      // READ of the open-file cache's inotify descriptor.
  kInotifyPoll,  // POLL_ADD on it.
  kRootOpen,     // OPENAT of the document root's path (a re-resolution).
  kRootStatx,    // STATX of what that opened.
  kRootCheck,    // The per-tick STATX of the document root's path.
  // Fire-and-forget: results unused, user_data is FireAndForgetTag(kind).
  kCloseFile,
  kCancel,
  kCount,
};

const char* OpKindName(OpKind kind);

// user_data for operations whose completion nobody waits for: a small
// integer (never a valid Operation address) that still names the kind, so
// in-flight counts stay exact.
inline uint64_t FireAndForgetTag(OpKind kind) { return static_cast<uint64_t>(kind) + 1; }
inline constexpr uint64_t kMaxFireAndForgetTag = 64;

// Identity is the address: not copyable, not movable.
struct Operation {
  Operation() = default;
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  OpKind kind = OpKind::kRecv;
  // The Connection or Worker that embeds this record.
  void* owner = nullptr;
  // True exactly while an SQE naming this record may still post a CQE.
  bool in_flight = false;
  // The owner's generation when submitted; a mismatch on completion means a
  // late CQE for a slot that was reused, which is ignored.
  uint32_t generation = 0;
};

}  // namespace sluice

#endif  // SLUICE_IO_OPERATION_H_
