// The response to a GET or HEAD of a regular file, planned without any I/O:
// from the request, the representation chosen (the file or a precompressed
// sibling) and the server's options come the status, the head, the bytes
// sent from memory and the file ranges to splice (RFC 9110 §13.2.2
// preconditions, §14 ranges, §8.8.3 validators, §12.5.5 Vary).
//
// The plan knows nothing of the transport: HTTP/1.1 on a plain socket sends
// memory segments with SEND and file segments with SPLICE; a TLS or HTTP/2
// transport frames the same segments its own way. Pure; any thread.
#ifndef SLUICE_SERVE_FILE_PLAN_H_
#define SLUICE_SERVE_FILE_PLAN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/conditional.h"
#include "sluice/http/http_parser.h"
#include "sluice/http/response.h"

namespace sluice {

// One piece of a response, in order: bytes of the caller's output buffer
// (from_file false) or bytes of the file.
struct ResponseSegment {
  uint64_t offset;  // Into the output buffer, or into the file.
  uint64_t length;
  bool from_file;
};

// What the plan needs to know of the representation being sent.
struct FileView {
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  std::string_view etag;                 // The file's quoted strong ETag (identity).
  std::string_view last_modified;        // IMF-fixdate.
  const std::string* content = nullptr;  // The whole file in memory, or null.
  // Where the fields of a whole-file identity 200 may be kept between
  // responses (they are the same for every one while the file is); or null.
  std::string* full_fields = nullptr;
};

struct FilePlanInput {
  const Request* request = nullptr;
  FileView file;
  Coding coding = Coding::kIdentity;  // The sibling's coding, or identity.
  std::string_view path;              // The requested file's path: its Content-Type.
  CommonFields common;                // Status is set by the plan.
  bool head_only = false;
  uint64_t random = 0;  // Multipart boundaries are made from it.
  std::string_view cache_control;
  bool precompressed = true;  // Siblings are in play: every response varies.
  size_t max_ranges = 16;
  // Non-zero: an error page, sent whole with this status; preconditions and
  // ranges do not apply to it.
  int status = 0;
};

struct FilePlan {
  int status = 0;
  size_t head_len = 0;     // The head is out[0, head_len).
  bool uses_file = false;  // A segment reads from the file's descriptor.
};

// Appends the response to *out and its pieces to *segments (both cleared
// first) and says what it planned.
FilePlan PlanFileResponse(const FilePlanInput& in, std::string* out,
                          std::vector<ResponseSegment>* segments);

}  // namespace sluice

#endif  // SLUICE_SERVE_FILE_PLAN_H_
