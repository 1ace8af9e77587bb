// What a connection needs only while a request is in progress, in four
// parts that follow the data path: the input and its parser, the lookup of
// the file to serve, the response's decisions and accounting, and the
// transfer of its bytes (memory segments, the file and the splice pipe).
// Lent from the worker's pool and returned when the connection goes idle,
// so idle keep-alive connections stay small. One worker thread.
#ifndef SLUICE_SERVE_REQUEST_STATE_H_
#define SLUICE_SERVE_REQUEST_STATE_H_

#include <linux/openat2.h>
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/http/conditional.h"
#include "sluice/http/http_parser.h"
#include "sluice/http/path.h"
#include "sluice/http/response.h"
#include "sluice/io/pipe_pool.h"
#include "sluice/serve/file_cache.h"
#include "sluice/serve/metrics.h"
#include "sluice/serve/sites.h"

namespace sluice {

class RootFiles;

// Input: in[req_start, in_len) is unparsed; a request's views point into it
// until its response is done.
struct RequestInput {
  RequestInput(const ParserLimits& limits, size_t capacity)
      : in(std::make_unique<char[]>(capacity)), in_capacity(capacity), parser(limits) {}
  void Reset() {
    in_len = req_start = consumed = 0;
    body_to_skip = 0;
    parser.Reset();
    spill.clear();
  }

  std::unique_ptr<char[]> in;
  size_t in_capacity;
  size_t in_len = 0;
  size_t req_start = 0;
  RequestParser parser;
  size_t consumed = 0;        // Bytes of in the current request used (head + body).
  uint64_t body_to_skip = 0;  // Request-body bytes still to read and discard.
  // Input that arrived (multishot RECV) while `in` had no room: it follows
  // in[in_len) and moves into `in` once the current request is done.
  // Bounded: the RECV is cancelled as soon as anything spills.
  std::string spill;
};

// Finding the file: the configuration and site the request is answered
// by, the rules that fit it, the target, the candidates tried (index file,
// precompressed siblings) and the entry being loaded.
struct FileLookup {
  void Reset() {
    loading = nullptr;
    files = nullptr;
    site = nullptr;
    rules.Clear();
    fallback = Fallback::kNone;
  }

  // What the current lookup is for, when not the request's own path: the
  // rules' clean-URL ".html" candidate, the SPA fallback file, or the
  // error page for `error_status`.
  enum class Fallback : uint8_t { kNone, kCleanHtml, kSpa, kErrorPage };

  // The generation the request started with (kept while it lasts; a spare
  // state may keep it until its next request) and the site in it.
  std::shared_ptr<const ServeGeneration> generation;
  const SiteConfig* site = nullptr;
  RootFiles* files = nullptr;  // The site's root and cache, held for the request.
  RuleMatch rules;
  std::string match_path;  // "/" + the decoded path: what rules match.
  Fallback fallback = Fallback::kNone;
  int error_status = 0;   // With kErrorPage.
  ResolvedPath resolved;  // The decoded target.
  std::string path;       // The file to serve, relative to the root.
  std::string open_path;  // What OPENAT2 opens now: path, or a sibling.
  bool opening_index = false;
  bool probing_sibling = false;
  CodingChoice codings;
  int coding_next = 0;  // Next entry of codings.order to try.
  Coding coding = Coding::kIdentity;
  open_how how = {};
  struct statx stx = {};        // STATX result for loading.
  FileInfo* loading = nullptr;  // Being filled by OPENAT2/STATX/READ (pinned).
};

// What was decided about the response, and what it cost (metrics, log).
struct ResponseFacts {
  void Reset() {
    keep_alive = true;
    head_only = client_http10 = linger = false;
  }

  MethodClass method_class = MethodClass::kOther;
  int status = 0;
  size_t head_len = 0;          // Bytes of the HTTP head at the start of out.
  uint64_t response_bytes = 0;  // Bytes of this response handed to the kernel.
  int64_t request_start_ns = 0;
  bool keep_alive = true;
  bool head_only = false;
  bool client_http10 = false;
  bool linger = false;  // Read off the client's input before closing.
  bool probe = false;   // A /healthz or /readyz answer: logged only if asked.
  // A configured error page: the rules' header edits apply to it as to a
  // 2xx or 3xx response.
  bool error_page = false;
  // CORS fields for the response (an actual request on a path with a CORS
  // rule); added to whatever the response turns out to be.
  std::vector<HeaderField> cors_fields;
};

// The bytes leaving: memory segments (head, part heads, small bodies) and
// file segments, spliced through a pipe.
struct Transfer {
  void Reset() {
    file = nullptr;
    has_pipe = false;
    pipe_bytes = 0;
  }

  std::string out;                        // Head, multipart part heads, small bodies; reused.
  std::string head_scratch;               // The head rewritten by rules' header edits.
  std::vector<ResponseSegment> segments;  // What the response is made of, in order.
  size_t segment_index = 0;
  size_t out_sent = 0;       // Progress within the current memory segment.
  FileInfo* file = nullptr;  // The representation being sent (pinned).
  uint64_t file_offset = 0;
  uint64_t body_remaining = 0;  // File bytes still to move into the pipe.
  Pipe pipe;
  bool has_pipe = false;
  // Bytes in the pipe not yet spliced to the socket: counted by the
  // completions of SPLICE in (+) and out (-); the pipe is pooled again only
  // at 0.
  uint32_t pipe_bytes = 0;
};

struct RequestState {
  RequestState(const ParserLimits& limits, size_t capacity) : input(limits, capacity) {}
  RequestState(const RequestState&) = delete;
  RequestState& operator=(const RequestState&) = delete;
  // Ready for a new connection's (or a new idle period's) first request.
  void Reset() {
    input.Reset();
    lookup.Reset();
    response.Reset();
    tx.Reset();
  }

  RequestInput input;
  FileLookup lookup;
  ResponseFacts response;
  Transfer tx;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_REQUEST_STATE_H_
