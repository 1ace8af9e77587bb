// One client connection: an explicit state machine advanced by completions.
//
// At most one data-path operation (io_op_) is in the kernel at a time, plus
// the linked timeout that bounds a lingering RECV (timer_op_); every state
// below names the operation in flight. A Connection goes back to its
// worker's pool only when nothing is in flight. Owned and touched by one
// worker thread only.
#ifndef SLUICE_SERVE_CONNECTION_H_
#define SLUICE_SERVE_CONNECTION_H_

#include <liburing.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sluice/base/ip_address.h"
#include "sluice/http/conditional.h"
#include "sluice/http/http_parser.h"
#include "sluice/http/path.h"
#include "sluice/http/range.h"
#include "sluice/http/response.h"
#include "sluice/io/operation.h"
#include "sluice/io/pipe_pool.h"
#include "sluice/io/timer_wheel.h"
#include "sluice/serve/connections_per_address.h"
#include "sluice/serve/directory_listing.h"
#include "sluice/serve/file_cache.h"
#include "sluice/serve/file_plan.h"
#include "sluice/serve/metrics.h"
#include "sluice/serve/request_state.h"

namespace sluice {

class ConnectionHost;

class Connection final : public CompletionHandler {
 public:
  enum class State : uint8_t {
    kFree,             // In the pool: no socket, nothing in flight.
    kReadingProxy,     // RECV of the PROXY protocol header (--proxy_protocol).
    kReading,          // RECV of (more of) a request head.
    kDrainingBody,     // RECV discarding a request body we do not use.
    kOpening,          // OPENAT2 of the target, its index file or a precompressed sibling.
    kStatting,         // STATX of the opened file.
    kReadingFile,      // READ of a small file into tx.out, after its head.
    kListing,          // Nothing in the ring: a helper thread reads the directory to list.
    kSending,          // SEND of the current memory segment of tx.out.
    kSplicingIn,       // SPLICE file → pipe.
    kSplicingOut,      // SPLICE pipe → socket.
    kWaitingWritable,  // POLL_ADD(POLLOUT): the socket was full for a splice.
    kShuttingDown,     // SHUTDOWN(SHUT_WR) before lingering.
    kLingering,        // RECV (with a linked timeout) discarding input before close.
    kClosing,          // CLOSE of the socket.
  };

  explicit Connection(ConnectionHost* host);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Takes an accepted socket and starts reading (the PROXY header first
  // under --proxy_protocol). A metrics-only connection came from
  // --metrics_listen and is answered nothing but metrics.
  void Start(int fd, bool metrics_only);
  // Routes one completion for io_op_, recv_op_ or timer_op_.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept override;
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
  bool idle_in_kernel() const {
    return !io_op_.in_flight && !timer_op_.in_flight && !recv_op_.in_flight;
  }
  // Reading with no partial request buffered (an idle keep-alive connection).
  bool waiting_for_request() const;
  // Reading a request head or a body to discard: input is what moves it on.
  bool waiting_for_input() const {
    return state_ == State::kReading || state_ == State::kDrainingBody ||
           state_ == State::kReadingProxy;
  }
  // Recv buffers are back after an ENOBUFS: arm the RECV again.
  void RetryRecv();
  // The document root is resolved again: issue the OPENAT2 that waited for
  // it (DocumentRoot::Wait). Ignored unless still waiting.
  void ResumeOpen();
  // A directory read by the helper pool (connection_listing.cc): `listing`,
  // or the errno that stopped it. Ignored (the caller frees the result)
  // unless this connection, in use `generation`, is still waiting for it.
  void OnListingRead(uint32_t generation, std::shared_ptr<const Listing> listing, int error);

 private:
  io_uring_sqe* Prep(Operation* op, OpKind kind);
  void SetDeadline(absl::Duration timeout);
  void ClearDeadline();
  void SetIdle(bool idle);
  void CancelInFlight();
  // Shutting down, lingering, closing or free.
  bool closing() const;
  // Called by every completion handler once it has taken what the CQE
  // carries: if a deadline or the drain interrupted the connection, ends it
  // (408 or close) and returns true.
  bool EndIfInterrupted();
  // After a timeout's cancel completed: a request head that arrived in full
  // meanwhile is answered, a partial one gets a 408, else close.
  void FinishTimeout();

  void EnsureRequestState();
  void ReturnRequestState();

  // Reading and parsing (connection_input.cc).
  void SubmitRecv();
  void OnRecv(int res, uint32_t cqe_flags);
  // The first bytes of a request arrived: borrow the request state, start
  // its clock, and after a keep-alive pause its header deadline.
  void BeginRequestInput();
  // Multishot RECV on the worker's buffer ring (recv_op_): armed once and
  // left armed across requests while the connection keeps up.
  void ArmMultishotRecv();
  // Arms it again, or closes (peer gone) or parks (no buffers) instead.
  void ResumeMultishotRecv();
  void OnMultishotRecv(int res, uint32_t cqe_flags);
  void TakeInput(const char* data, size_t len);
  // Parses what has arrived, the PROXY header first while in kReadingProxy.
  void ParseInput();
  // Moves the unparsed input to the front of `in`, then as much of `spill`
  // as fits after it.
  void CompactInput();
  void StopMultishotRecv();
  // Parses the buffered input. After the header deadline passed
  // (`deadline_passed`), a head still incomplete gets a 408 instead of a
  // wait for more.
  void Parse(bool deadline_passed = false);
  void HandleRequest();
  void Dispatch();
  void SubmitDrainBody();
  void OnDrainBody(int res);

  // Sites and rules (connection_rules.cc). ClearRules: at each request's
  // start. ApplySiteAndRules: picks the site by Host, holds its root, and
  // matches its rules; true when a rule answered (redirect, preflight).
  void ClearRules();
  bool ApplySiteAndRules();
  void RespondRuleRedirect();
  void RespondCleanRedirect();
  void RespondPreflight(const std::vector<HeaderField>& fields);
  // Rewrites the head in tx.out with the matching rules' header edits and
  // CORS fields, moving the memory segments after it (SendSegments).
  void ApplyRuleHeaders();

  // Files (file_response.cc).
  void StartFile();
  void Resolve();
  void SubmitOpen();
  void SubmitOpenAt();
  void OnOpen(int res);
  void SubmitStatx();
  void OnStatx(int res);
  void FinishLoad();
  void OnResolved(FileInfo* info);
  void TryNextCoding();
  // A lookup ended in `status`: the rules' clean-URL candidate, SPA
  // fallback or error page is looked up next, or the built-in error sent.
  void RespondLookupError(int status);
  // Looks up rs_->lookup.path for the fallback just chosen.
  void OpenFallback();
  // This request's directory without an index is listed.
  bool ListingsOn() const;
  // Plans the response for rs_->file (file_plan.h) and sends it.
  void ServeRepresentation();
  void SubmitReadFile();
  void OnReadFile(int res);

  // Directory listings (connection_listing.cc): the directory in
  // rs_->lookup.resolved has no index file and --directory_listing is on.
  void StartListing();
  void RespondListing(const Listing& listing);

  // Sending (connection_output.cc).
  void BeginResponse(int status);
  void FinishHead();  // Ends the head in tx.out and notes its length.
  // /metrics (metrics_endpoint.cc); the peer and the access log (connection_log.cc).
  bool IsMetricsTarget(std::string_view target) const;
  void HandleMetrics();
  bool PeerAllowedMetrics();
  // The socket peer's address, once per connection (getpeername), unless
  // a PROXY header named it.
  bool LoadPeer();
  // Client addresses and limits (connection_client.cc). The PROXY header in rs_->input: done → the
  // peer it names, then HTTP input; invalid → close; else receive more.
  void ParseProxyInput();
  // The current request's client: the peer, or whom a trusted peer's
  // forwarding fields name (client_, client_forwarded_).
  void ResolveClient();
  // Null when not even the peer is known.
  const IpAddress* Client();
  // --max_connections_per_ip. AdmitPeer: a new connection from an untrusted
  // peer is counted against its address, or closed (false). AdmitRequest:
  // a request whose client came from a trusted peer is counted while in
  // progress, or answered 429 (false).
  bool AdmitPeer();
  bool AdmitRequest();
  void ReleaseLimit();
  // /healthz and /readyz (health_endpoint.cc): answered from memory, to
  // anyone, before any file lookup. True when `target` was a probe.
  bool HandleProbe(std::string_view target);
  void LogAccess();
  CommonFields Common(int status) const;
  void AddMemorySegment(size_t begin);
  void AddFileSegment(uint64_t offset, uint64_t length);
  void RespondError(int status, bool close, std::string_view extra_fields = {});
  void RespondRedirect();
  void RespondOptions();
  // A response the server writes itself (/metrics, probes): `body` with
  // `content_type`, never cached by the client.
  void RespondFromMemory(int status, std::string_view content_type, std::string_view body);
  void SendSegments();
  void StartSegment();
  void NextSegment();
  bool MoreSegmentsFollow() const;
  // The connection closes once this response is out: its last bytes are
  // held in the socket (MSG_MORE) until the FIN joins them.
  bool ClosesAfterResponse() const;
  void SubmitSend();
  void OnSend(int res);
  // Moves the file segment's bytes file -> pipe -> socket, each step a
  // plain splice() where it cannot block, else through the ring.
  void PumpBody();
  void SubmitSpliceIn();
  void OnSpliceIn(int res);
  // A file -> pipe result: its bytes are in the pipe (CountSplicedIn); then
  // whether the body goes on (false: the connection is closing).
  void CountSplicedIn(int res);
  bool SpliceInGoesOn(int res);
  // Takes a pipe -> socket result (false: closing or waiting to write).
  bool TookSpliceOut(int res);
  // The file being spliced changed on disk: reset the connection (true).
  bool FileChanged();
  void SubmitPollOut();
  void OnPollOut(int res);
  void ResponseDone();

  // Closing.
  void ReleaseFile();
  void LingerThenClose();
  void OnShutdown(int res);
  void SubmitLinger();
  void OnLingerRecv(int res);
  void OnLingerTimeout();
  void OnLingerStep();
  void Close();
  void OnClose(int res);

  ConnectionHost* const host_;
  State state_ = State::kFree;
  int fd_ = -1;
  uint32_t generation_ = 0;
  Operation io_op_;
  Operation timer_op_;
  // The multishot RECV, in flight beside io_op_: input may arrive while a
  // response is being sent (pipelining); it is buffered, never acted on
  // until the response is done.
  Operation recv_op_;
  bool peer_closed_ = false;  // The multishot RECV saw EOF or an error.
  // shutdown(SHUT_WR) succeeded after the last segment of a closing
  // response: the FIN is queued behind (and in the segment of) its tail.
  bool fin_sent_ = false;
  bool recv_no_buffers_ = false;  // It ended with ENOBUFS: park before re-arming.
  // Why the connection must end, set by a deadline or the drain and acted
  // on by the next completion's handler after it has taken its result.
  enum class Interrupt : uint8_t {
    kNone,
    kTimedOut,  // OnTimeout()/CloseIdle() cancelled what was in flight: 408 or close.
    kAborted,   // Abort(): the drain deadline passed, close.
  };
  Interrupt interrupt_ = Interrupt::kNone;
  TimerNode timer_node_;  // In the worker's wheel while a deadline is set.
  ListNode idle_node_;    // In the worker's idle list while idle between requests.

  int linger_res_ = 0;              // Result of the last lingering RECV.
  uint64_t linger_bytes_ = 0;       // Bytes discarded while lingering.
  int64_t linger_deadline_ns_ = 0;  // Lingering ends by then, however input trickles.
  __kernel_timespec linger_ts_ = {};

  bool metrics_only_ = false;
  bool peer_known_ = false;
  IpAddress peer_;  // When peer_known_: the socket's peer or the PROXY source.
  // The current request's client, when a trusted peer's fields named one.
  IpAddress client_;
  bool client_forwarded_ = false;
  // What this connection counts in the per-address table, if anything:
  // its peer (for its lifetime) or its request's client (until the
  // response is done).
  ConnectionsPerAddress::Slots limit_slots_;
  bool limit_held_ = false;
  // Request and response state, lent by the worker while this connection
  // has a request in progress (an idle keep-alive connection holds none).
  RequestState* rs_ = nullptr;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_CONNECTION_H_
