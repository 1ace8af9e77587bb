#include "sluice/io/operation.h"

namespace sluice {

const char* OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRecv:
      return "recv";
    case OpKind::kSend:
      return "send";
    case OpKind::kOpen:
      return "openat";
    case OpKind::kStatx:
      return "statx";
    case OpKind::kRead:
      return "read";
    case OpKind::kSpliceIn:
      return "splice_in";
    case OpKind::kPollOut:
      return "poll";
    case OpKind::kShutdown:
      return "shutdown";
    case OpKind::kClose:
      return "close";
    case OpKind::kLingerTimeout:
      return "timeout";
    case OpKind::kAccept:
      return "accept";
    case OpKind::kWake:
      return "wake";
    case OpKind::kTick:
      return "tick";
    case OpKind::kAcceptRetry:
      return "accept_retry";
    case OpKind::kLogWrite:
      return "log_write";
    case OpKind::kInotifyPoll:
      return "inotify_poll";
    case OpKind::kRootOpen:
      return "root_openat";
    case OpKind::kRootStatx:
      return "root_statx";
    case OpKind::kRootCheck:
      return "root_check";
    case OpKind::kPoolWake:
      return "pool_wake";
    case OpKind::kCloseFile:
      return "close_file";
    case OpKind::kCancel:
      return "cancel";
    case OpKind::kCount:
      break;
  }
  return "unknown";
}

}  // namespace sluice
