// The file half of Connection: OPENAT2 → STATX → index/redirect →
// precompressed sibling → preconditions → ranges → the response's segments.
// Runs on the owning worker's thread, like the rest of Connection.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sluice/connection.h"
#include "sluice/http_date.h"
#include "sluice/mime.h"
#include "sluice/response.h"
#include "sluice/worker.h"

namespace sluice {
namespace {

// errno from OPENAT2 → status (as nginx's static module maps them).
int StatusForOpenError(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case EXDEV:  // RESOLVE_BENEATH: the path (via a symlink) leaves the root.
      return 404;
    case EACCES:
    case EPERM:
    case ELOOP:
    case ENXIO:  // A socket, or a device without a driver.
    case ENODEV:
    case EAGAIN:
      return 403;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return 503;
    default:
      return 500;
  }
}

std::string_view SiblingSuffix(Coding c) { return c == Coding::kBrotli ? ".br" : ".gz"; }
std::string_view CodingName(Coding c) { return c == Coding::kBrotli ? "br" : "gzip"; }

void AppendContentRange(std::string* out, uint64_t first, uint64_t last, uint64_t size) {
  out->append("Content-Range: bytes ");
  out->append(std::to_string(first)).append("-").append(std::to_string(last));
  out->append("/").append(std::to_string(size)).append("\r\n");
}

}  // namespace

void Connection::StartFile() {
  opening_index_ = false;
  probing_sibling_ = false;
  coding_ = Coding::kIdentity;
  path_.assign(resolved_.relative.empty() ? std::string_view(".") : resolved_.relative);
  open_path_ = path_;
  SubmitOpen();
}

void Connection::SubmitOpen() {
  state_ = State::kOpening;
  std::memset(&how_, 0, sizeof(how_));
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a tty
  // in the root must not become our terminal.
  how_.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  // The kernel refuses any resolution that leaves the root, through ".."
  // or symlinks, and /proc-style magic links (Linux 5.6).
  how_.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kOpen);
  io_uring_prep_openat2(sqe, worker_->root_fd(), open_path_.c_str(), &how_);
}

void Connection::OnOpen(int res) {
  if (probing_sibling_) {
    if (res < 0) {
      TryNextCoding();  // No such sibling (or not ours to open): next choice.
      return;
    }
    sibling_fd_ = res;
    SubmitStatx(sibling_fd_, &sibling_stx_);
    return;
  }
  if (res < 0) {
    RespondError(StatusForOpenError(-res), !keep_alive_);
    return;
  }
  file_fd_ = res;
  SubmitStatx(file_fd_, &stx_);
}

void Connection::SubmitStatx(int fd, struct statx* out) {
  state_ = State::kStatting;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kStatx);
  io_uring_prep_statx(sqe, fd, "", AT_EMPTY_PATH,
                      STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME | STATX_INO, out);
}

void Connection::OnStatx(int res) {
  if (!probing_sibling_) {
    OnPrimaryStatx(res);
    return;
  }
  if (res < 0 || !S_ISREG(sibling_stx_.stx_mode)) {
    worker_->CloseLater(sibling_fd_);
    sibling_fd_ = -1;
    TryNextCoding();
    return;
  }
  // The sibling is the representation: its descriptor and metadata replace
  // the original's (whose path still gives the Content-Type).
  worker_->CloseLater(file_fd_);
  file_fd_ = sibling_fd_;
  sibling_fd_ = -1;
  stx_ = sibling_stx_;
  coding_ = codings_.order[coding_next_ - 1];
  ServeRepresentation();
}

void Connection::OnPrimaryStatx(int res) {
  if (res < 0) {
    RespondError(500, !keep_alive_);
    return;
  }
  if (S_ISREG(stx_.stx_mode) && resolved_.trailing_slash && !opening_index_) {
    // "/file.txt/" names a directory that does not exist (POSIX: ENOTDIR).
    ReleaseFile();
    RespondError(404, !keep_alive_);
    return;
  }
  if (S_ISREG(stx_.stx_mode)) {
    const Request& r = parser_.request();
    coding_next_ = 0;
    codings_ = worker_->config().precompressed
                   ? NegotiateCoding(r.field(Field::kAcceptEncoding), r.has(Field::kAcceptEncoding))
                   : CodingChoice();
    TryNextCoding();
    return;
  }
  ReleaseFile();
  if (S_ISDIR(stx_.stx_mode) && !opening_index_) {
    if (!resolved_.trailing_slash) {
      RespondRedirect();
      return;
    }
    opening_index_ = true;
    path_.assign(resolved_.relative);
    if (!path_.empty()) path_.push_back('/');
    path_.append("index.html");
    open_path_ = path_;
    SubmitOpen();
    return;
  }
  // A directory without an index file → 404 (the listing is not ours to
  // give); a FIFO, socket or device → 403: only regular files are served.
  RespondError(S_ISDIR(stx_.stx_mode) ? 404 : 403, !keep_alive_);
}

void Connection::TryNextCoding() {
  probing_sibling_ = false;
  while (coding_next_ < codings_.count) {
    const Coding c = codings_.order[coding_next_++];
    if (c == Coding::kIdentity) break;
    probing_sibling_ = true;
    open_path_.assign(path_).append(SiblingSuffix(c));
    SubmitOpen();
    return;
  }
  coding_ = Coding::kIdentity;
  ServeRepresentation();
}

void Connection::AppendRepresentationFields() {
  char date[kHttpDateLength];
  FormatHttpDate(static_cast<time_t>(stx_.stx_mtime.tv_sec), date);
  AppendField(&out_, "Last-Modified", std::string_view(date, kHttpDateLength));
  AppendField(&out_, "ETag", etag_);
  const ServerConfig& config = worker_->config();
  if (!config.cache_control.empty()) AppendField(&out_, "Cache-Control", config.cache_control);
  // Every response for a file may differ by Accept-Encoding once siblings
  // are in play, compressed or not (RFC 9110 §12.5.5).
  if (config.precompressed) AppendField(&out_, "Vary", "Accept-Encoding");
}

void Connection::ServeRepresentation() {
  const uint64_t size = stx_.stx_size;
  const Request& r = parser_.request();
  etag_.clear();
  AppendEtag(&etag_, stx_.stx_ino, size, stx_.stx_mtime.tv_sec, stx_.stx_mtime.tv_nsec);
  if (coding_ != Coding::kIdentity) {
    // A distinct validator per encoding (RFC 9110 §8.8.3).
    etag_.insert(etag_.size() - 1, coding_ == Coding::kBrotli ? "-br" : "-gz");
  }
  const Validators validators{etag_, static_cast<time_t>(stx_.stx_mtime.tv_sec)};
  switch (EvaluatePreconditions(r, validators)) {
    case Precondition::kProceed:
      break;
    case Precondition::kNotModified:
      RespondNotModified();
      return;
    case Precondition::kPreconditionFailed:
      ReleaseFile();
      RespondError(412, !keep_alive_);
      return;
  }

  RangeSet ranges;
  if (r.has(Field::kRange) &&
      (!r.has(Field::kIfRange) || IfRangeAllowsRange(r.field(Field::kIfRange), validators))) {
    ranges = ParseRange(r.field(Field::kRange), size, worker_->config().max_ranges);
  }
  if (ranges.kind == RangeSet::Kind::kUnsatisfiable) {
    ReleaseFile();
    std::string extra = "Content-Range: bytes */" + std::to_string(size) + "\r\n";
    RespondError(416, !keep_alive_, extra);
    return;
  }

  const bool partial = ranges.kind == RangeSet::Kind::kSatisfiable;
  BeginResponse(partial ? 206 : 200);
  AppendStatusAndCommon(&out_, Common(partial ? 206 : 200));
  AppendRepresentationFields();
  AppendField(&out_, "Accept-Ranges", "bytes");
  if (coding_ != Coding::kIdentity) AppendField(&out_, "Content-Encoding", CodingName(coding_));
  if (partial && ranges.count > 1) {
    BuildMultipart(ranges);
    return;
  }
  AppendField(&out_, "Content-Type", MimeTypeForPath(path_));
  uint64_t offset = 0;
  uint64_t length = size;
  if (partial) {
    offset = ranges.ranges[0].first;
    length = ranges.ranges[0].length;
    AppendContentRange(&out_, offset, ranges.ranges[0].last(), size);
  }
  AppendFieldUint(&out_, "Content-Length", length);
  FinishHead();
  if (head_only_ || length == 0) {
    ReleaseFile();
    AddMemorySegment(0);
    SendSegments();
    return;
  }
  if (!partial && size <= worker_->config().small_file_bytes_max) {
    SubmitReadFile();
    return;
  }
  AddMemorySegment(0);
  AddFileSegment(offset, length);
  SendSegments();
}

// multipart/byteranges (RFC 9110 §14.6): each part has its own Content-Type
// and Content-Range; part bodies are spliced from the file like any other.
void Connection::BuildMultipart(const RangeSet& ranges) {
  const uint64_t size = stx_.stx_size;
  const std::string_view type = MimeTypeForPath(path_);
  char boundary[17];
  const uint64_t rnd = worker_->NextRandom();
  for (int i = 0; i < 16; ++i) boundary[i] = "0123456789abcdef"[(rnd >> (i * 4)) & 15];
  boundary[16] = '\0';

  // Part heads first, to know the Content-Length; offsets are relative to
  // the end of the response head.
  std::string parts;
  size_t part_ends[kMaxRangesLimit + 1];
  uint64_t body_bytes = 0;
  for (size_t i = 0; i < ranges.count; ++i) {
    parts.append("\r\n--").append(boundary).append("\r\n");
    parts.append("Content-Type: ").append(type).append("\r\n");
    AppendContentRange(&parts, ranges.ranges[i].first, ranges.ranges[i].last(), size);
    parts.append("\r\n");
    part_ends[i] = parts.size();
    body_bytes += ranges.ranges[i].length;
  }
  parts.append("\r\n--").append(boundary).append("--\r\n");
  part_ends[ranges.count] = parts.size();

  out_.append("Content-Type: multipart/byteranges; boundary=").append(boundary).append("\r\n");
  AppendFieldUint(&out_, "Content-Length", parts.size() + body_bytes);
  FinishHead();
  if (head_only_) {
    ReleaseFile();
    AddMemorySegment(0);
    SendSegments();
    return;
  }
  const size_t base = out_.size();
  out_.append(parts);
  segments_.push_back(Segment{0, base + part_ends[0], false});
  for (size_t i = 0; i < ranges.count; ++i) {
    AddFileSegment(ranges.ranges[i].first, ranges.ranges[i].length);
    segments_.push_back(Segment{base + part_ends[i], part_ends[i + 1] - part_ends[i], false});
  }
  SendSegments();
}

void Connection::RespondNotModified() {
  ReleaseFile();
  BeginResponse(304);
  AppendStatusAndCommon(&out_, Common(304));
  AppendRepresentationFields();
  FinishHead();
  AddMemorySegment(0);
  SendSegments();
}

void Connection::SubmitReadFile() {
  state_ = State::kReadingFile;
  const size_t head = out_.size();
  body_remaining_ = stx_.stx_size;
  out_.resize(head + body_remaining_);
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRead);
  io_uring_prep_read(sqe, file_fd_, out_.data() + head, static_cast<unsigned>(body_remaining_), 0);
}

void Connection::OnReadFile(int res) {
  const size_t head = out_.size() - body_remaining_;
  if (res == -EAGAIN) {
    // Not in the page cache and the kernel would not wait: splice instead.
    out_.resize(head);
    AddMemorySegment(0);
    AddFileSegment(0, body_remaining_);
    SendSegments();
    return;
  }
  if (res < 0) {
    Close();
    return;
  }
  if (static_cast<uint64_t>(res) < body_remaining_) {
    // The file shrank after STATX: send what exists, then end the connection
    // so the client sees a short body rather than made-up bytes.
    out_.resize(head + static_cast<size_t>(res));
    keep_alive_ = false;
  }
  body_remaining_ = 0;
  ReleaseFile();
  AddMemorySegment(0);
  SendSegments();
}

}  // namespace sluice
