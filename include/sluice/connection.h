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
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sluice/conditional.h"
#include "sluice/file_cache.h"
#include "sluice/http_parser.h"
#include "sluice/metrics.h"
#include "sluice/operation.h"
#include "sluice/path.h"
#include "sluice/pipe_pool.h"
#include "sluice/range.h"
#include "sluice/response.h"
#include "sluice/timer_wheel.h"

namespace sluice {

class Worker;

class Connection {
 public:
  enum class State : uint8_t {
    kFree,             // In the pool: no socket, nothing in flight.
    kReading,          // RECV of (more of) a request head.
    kDrainingBody,     // RECV discarding a request body we do not use.
    kOpening,          // OPENAT2 of the target, its index file or a precompressed sibling.
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

  // Takes an accepted socket and starts reading. A metrics-only connection
  // came from --metrics_listen and is answered nothing but metrics.
  void Start(int fd, bool metrics_only);
  // Routes one completion for io_op_ or timer_op_.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept;
  // The worker is draining: close now if idle, else close after this response.
  void OnWorkerStopping();
  // The drain deadline passed: cancel what is in flight and close.
  void Abort();
  // Our deadline (header, keep-alive or send timeout) passed.
  void OnTimeout();
  // The worker needs this idle keep-alive connection's slot.
  void CloseIdle();

  State state() const { return state_; }
  uint32_t generation() const { return generation_; }
  // True when nothing is in flight (the pool may take it back).
  bool idle_in_kernel() const { return !io_op_.in_flight && !timer_op_.in_flight; }
  // Reading with no partial request buffered (an idle keep-alive connection).
  bool waiting_for_request() const;

 private:
  io_uring_sqe* Prep(Operation* op, OpKind kind);
  void SetDeadline(absl::Duration timeout);
  void ClearDeadline();
  void SetIdle(bool idle);
  void CancelInFlight();

  // Reading and parsing.
  void SubmitRecv();
  void OnRecv(int res);
  void Parse();
  void HandleRequest();
  void Dispatch();
  void SubmitDrainBody();
  void OnDrainBody(int res);

  // Files (file_response.cc).
  void StartFile();
  void Resolve();
  void SubmitOpen();
  void OnOpen(int res);
  void SubmitStatx();
  void OnStatx(int res);
  void FinishLoad();
  void OnResolved(FileInfo* info);
  void TryNextCoding();
  void ServeRepresentation();
  void AppendRepresentationFields();
  void BuildMultipart(const RangeSet& ranges);
  void RespondNotModified();
  void SubmitReadFile();
  void OnReadFile(int res);

  // Sending.
  struct Segment {
    uint64_t offset;  // Into out_ (memory) or the file.
    uint64_t length;
    bool from_file;
  };
  void BeginResponse(int status);
  void FinishHead();  // Ends the head in out_ and notes its length.
  // /metrics (metrics_endpoint.cc).
  bool IsMetricsTarget(std::string_view target) const;
  void HandleMetrics();
  bool PeerAllowedMetrics();
  bool LoadPeer();
  void LogAccess();
  CommonFields Common(int status) const;
  void AddMemorySegment(size_t begin);
  void AddFileSegment(uint64_t offset, uint64_t length);
  void RespondError(int status, bool close, std::string_view extra_fields = {});
  void RespondRedirect();
  void RespondOptions();
  void SendSegments();
  void StartSegment();
  void NextSegment();
  bool MoreSegmentsFollow() const;
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
  bool aborting_ = false;   // Abort() was called: close at the next completion.
  bool timed_out_ = false;  // OnTimeout() cancelled io_op_: act at its completion.
  TimerNode timer_node_;    // In the worker's wheel while a deadline is set.
  ListNode idle_node_;      // In the worker's idle list while idle between requests.

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

  // For metrics and the access log.
  bool metrics_only_ = false;
  MethodClass method_class_ = MethodClass::kOther;
  int status_ = 0;
  size_t head_len_ = 0;          // Bytes of the HTTP head at the start of out_.
  uint64_t response_bytes_ = 0;  // Bytes of this response handed to the kernel.
  int64_t request_start_ns_ = 0;
  bool request_line_seen_ = false;
  bool peer_known_ = false;
  sockaddr_storage peer_ = {};

  // The response being produced.
  bool keep_alive_ = true;
  bool head_only_ = false;
  bool client_http10_ = false;
  std::string out_;                // Head, multipart part heads, small bodies; reused.
  std::vector<Segment> segments_;  // What the response is made of, in order.
  size_t segment_index_ = 0;
  size_t out_sent_ = 0;    // Progress within the current memory segment.
  ResolvedPath resolved_;  // The decoded target.
  std::string path_;       // The file to serve, relative to the root.
  std::string open_path_;  // What OPENAT2 opens now: path_, or a sibling.
  bool opening_index_ = false;
  bool probing_sibling_ = false;
  CodingChoice codings_;
  int coding_next_ = 0;  // Next entry of codings_.order to try.
  Coding coding_ = Coding::kIdentity;
  open_how how_ = {};
  struct statx stx_ = {};        // STATX result for loading_.
  FileInfo* loading_ = nullptr;  // Being filled by OPENAT2/STATX/READ (pinned).
  FileInfo* file_ = nullptr;     // The representation being sent (pinned).
  std::string etag_;             // Its validator (with the coding's suffix).
  uint64_t file_offset_ = 0;
  uint64_t body_remaining_ = 0;  // File bytes still to move into the pipe.
  Pipe pipe_;
  bool has_pipe_ = false;
  uint32_t pipe_bytes_ = 0;  // Bytes in the pipe not yet spliced to the socket.
};

}  // namespace sluice

#endif  // SLUICE_CONNECTION_H_
