// One client connection: an explicit state machine advanced by completions.
//
// At most one data-path operation (io_op_) is in the kernel at a time, plus
// the linked timeout that bounds a lingering RECV (timer_op_); every state
// below names the operation in flight. A Connection goes back to its
// worker's pool only when nothing is in flight. Owned and touched by one
// worker thread only.
#ifndef SLUICE_CONNECTION_H_
#define SLUICE_CONNECTION_H_

#include <liburing.h>
#include <linux/openat2.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>

#include "sluice/http_parser.h"
#include "sluice/operation.h"
#include "sluice/path.h"
#include "sluice/pipe_pool.h"

namespace sluice {

class Worker;

class Connection {
 public:
  enum class State : uint8_t {
    kFree,             // In the pool: no socket, nothing in flight.
    kReading,          // RECV of (more of) a request head.
    kDrainingBody,     // RECV discarding a request body we do not use.
    kOpening,          // OPENAT2 of the target (or its index file).
    kStatting,         // STATX of the opened file.
    kReadingFile,      // READ of a small file into out_, after its head.
    kSending,          // SEND of out_[out_sent_, out_.size()).
    kSplicingIn,       // SPLICE file → pipe.
    kSplicingOut,      // SPLICE pipe → socket.
    kWaitingWritable,  // POLL_ADD(POLLOUT): the socket was full for a splice.
    kShuttingDown,     // SHUTDOWN(SHUT_WR) before lingering.
    kLingering,        // RECV (with a linked timeout) discarding input before close.
    kClosing,          // CLOSE of the socket.
  };

  explicit Connection(Worker* worker);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Takes an accepted socket and starts reading.
  void Start(int fd);
  // Routes one completion for io_op_ or timer_op_.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept;
  // The worker is draining: close now if idle, else close after this response.
  void OnWorkerStopping();
  // The drain deadline passed: cancel what is in flight and close.
  void Abort();

  State state() const { return state_; }
  uint32_t generation() const { return generation_; }
  // True when nothing is in flight (the pool may take it back).
  bool idle_in_kernel() const { return !io_op_.in_flight && !timer_op_.in_flight; }
  // Reading with no partial request buffered (an idle keep-alive connection).
  bool waiting_for_request() const;

 private:
  io_uring_sqe* Prep(Operation* op, OpKind kind);

  // Reading and parsing.
  void SubmitRecv();
  void OnRecv(int res);
  void Parse();
  void HandleRequest();
  void Dispatch();
  void SubmitDrainBody();
  void OnDrainBody(int res);

  // Files.
  void StartFile();
  void SubmitOpen();
  void OnOpen(int res);
  void SubmitStatx();
  void OnStatx(int res);
  void ServeRegularFile();
  void SubmitReadFile();
  void OnReadFile(int res);

  // Sending.
  void RespondError(int status, bool close, std::string_view extra_fields = {});
  void RespondRedirect();
  void RespondOptions();
  void SubmitSend();
  void OnSend(int res);
  void SubmitSpliceIn();
  void OnSpliceIn(int res);
  void SubmitSpliceOut();
  void OnSpliceOut(int res);
  void SubmitPollOut();
  void OnPollOut(int res);
  void ResponseDone();

  // Closing.
  void ReleaseFile();
  void LingerThenClose();
  void OnShutdown(int res);
  void SubmitLinger();
  void OnLingerStep();
  void Close();
  void OnClose(int res);

  Worker* const worker_;
  State state_ = State::kFree;
  int fd_ = -1;
  uint32_t generation_ = 0;
  Operation io_op_;
  Operation timer_op_;
  bool aborting_ = false;  // Abort() was called: close at the next completion.

  // Input: in_[req_start_, in_len_) is unparsed; a request's views point
  // into it until its response is done.
  std::unique_ptr<char[]> in_;
  size_t in_capacity_ = 0;
  size_t in_len_ = 0;
  size_t req_start_ = 0;
  RequestParser parser_;
  size_t consumed_ = 0;        // Bytes of in_ the current request used (head + body).
  uint64_t body_to_skip_ = 0;  // Request-body bytes still to read and discard.
  int linger_res_ = 0;         // Result of the last lingering RECV.
  uint64_t linger_bytes_ = 0;  // Bytes discarded while lingering.
  __kernel_timespec linger_ts_ = {};

  // The response being produced.
  bool keep_alive_ = true;
  bool head_only_ = false;
  bool client_http10_ = false;
  std::string out_;  // Head (and small bodies); reused.
  size_t out_sent_ = 0;
  bool body_follows_head_ = false;  // A spliced body comes after out_.
  ResolvedPath resolved_;           // The decoded target.
  std::string path_;                // NUL-terminated path for OPENAT2, relative to the root.
  bool opening_index_ = false;
  bool path_trailing_slash_ = false;
  open_how how_ = {};
  struct statx stx_ = {};
  int file_fd_ = -1;
  uint64_t file_offset_ = 0;
  uint64_t body_remaining_ = 0;  // File bytes still to move into the pipe.
  Pipe pipe_;
  bool has_pipe_ = false;
  uint32_t pipe_bytes_ = 0;  // Bytes in the pipe not yet spliced to the socket.
};

}  // namespace sluice

#endif  // SLUICE_CONNECTION_H_
