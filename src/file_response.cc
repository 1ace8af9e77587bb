// The file half of Connection: OPENAT2 → STATX → index/redirect →
// precompressed sibling → preconditions → ranges → the response's segments.
// Runs on the owning worker's thread, like the rest of Connection.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sluice/connection.h"
#include "sluice/file_cache.h"
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
  rs_->opening_index = false;
  rs_->probing_sibling = false;
  rs_->coding = Coding::kIdentity;
  rs_->path.assign(rs_->resolved.relative.empty() ? std::string_view(".") : rs_->resolved.relative);
  rs_->open_path = rs_->path;
  Resolve();
}

// Resolves rs_->open_path beneath the root: from the worker's open-file cache
// when it has a fresh answer, else OPENAT2 → STATX (→ READ for a small file).
void Connection::Resolve() {
  const int64_t now_ns = worker_->now_ns();  // This batch's time.
  if (FileInfo* hit = worker_->file_cache().Find(rs_->open_path, now_ns)) {
    if (hit->has_content) {
      // With many small files cached, the bytes are usually not in the CPU's
      // caches: start fetching them now, so they arrive while the head is
      // written rather than one miss at a time in the copy.
      const char* p = hit->content.data();
      for (size_t i = 0; i < hit->content.size(); i += 64) __builtin_prefetch(p + i);
    }
    OnResolved(hit);
    return;
  }
  rs_->loading = worker_->file_cache().Create(rs_->open_path, now_ns);
  SubmitOpen();
}

void Connection::SubmitOpen() {
  state_ = State::kOpening;
  // The root's path changed and is being resolved again: the request waits
  // for the new root rather than opening in the old one.
  if (!worker_->document_root().ready()) {
    worker_->document_root().Wait(this);
    return;
  }
  SubmitOpenAt();
}

void Connection::ResumeOpen() {
  if (state_ != State::kOpening || io_op_.in_flight || rs_ == nullptr || rs_->loading == nullptr) {
    return;
  }
  SubmitOpenAt();
  // A deadline or an abort that came while waiting had nothing to cancel.
  if (timed_out_ || aborting_) CancelInFlight();
}

void Connection::SubmitOpenAt() {
  std::memset(&rs_->how, 0, sizeof(rs_->how));
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a tty
  // in the root must not become our terminal.
  rs_->how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  // The kernel refuses any resolution that leaves the root, through ".."
  // or symlinks, and /proc-style magic links (Linux 5.6).
  rs_->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kOpen);
  // Held until the entry dies: io_uring reads the dirfd when the OPENAT2
  // runs, perhaps later in io-wq.
  rs_->loading->root = worker_->document_root().Acquire();
  io_uring_prep_openat2(sqe, rs_->loading->root->fd, rs_->loading->key.c_str(), &rs_->how);
}

void Connection::OnOpen(int res) {
  if (res < 0) {
    rs_->loading->error = -res;
    FinishLoad();
    return;
  }
  rs_->loading->fd = res;
  SubmitStatx();
}

void Connection::SubmitStatx() {
  state_ = State::kStatting;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kStatx);
  io_uring_prep_statx(sqe, rs_->loading->fd, "", AT_EMPTY_PATH,
                      STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME | STATX_INO, &rs_->stx);
}

void Connection::OnStatx(int res) {
  FileInfo* info = rs_->loading;
  if (res < 0) {
    info->error = -res;
  } else {
    info->mode = rs_->stx.stx_mode;
    info->size = rs_->stx.stx_size;
    info->inode = rs_->stx.stx_ino;
    info->mtime_sec = rs_->stx.stx_mtime.tv_sec;
    info->mtime_nsec = rs_->stx.stx_mtime.tv_nsec;
    info->Derive();
    if (info->is_regular() && info->size > 0 &&
        info->size <= worker_->config().small_file_bytes_max) {
      SubmitReadFile();
      return;
    }
  }
  if (!info->is_regular() && info->fd >= 0) {
    worker_->CloseLater(info->fd);  // Directories and the like are not read.
    info->fd = -1;
  }
  FinishLoad();
}

void Connection::SubmitReadFile() {
  state_ = State::kReadingFile;
  rs_->loading->content.resize(rs_->loading->size);
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRead);
  io_uring_prep_read(sqe, rs_->loading->fd, rs_->loading->content.data(),
                     static_cast<unsigned>(rs_->loading->size), 0);
}

void Connection::OnReadFile(int res) {
  FileInfo* info = rs_->loading;
  if (res >= 0 && static_cast<uint64_t>(res) == info->size) {
    // The whole file is in memory: responses need no descriptor any more.
    info->has_content = true;
    worker_->CloseLater(info->fd);
    info->fd = -1;
  } else {
    // Short (the file changed under us), EAGAIN, or an error: send from the
    // descriptor instead, which ends short if the file really shrank.
    info->content.clear();
    info->content.shrink_to_fit();
  }
  FinishLoad();
}

void Connection::FinishLoad() {
  FileInfo* info = rs_->loading;
  rs_->loading = nullptr;
  worker_->file_cache().Publish(info);
  OnResolved(info);
}

void Connection::OnResolved(FileInfo* info) {
  if (rs_->probing_sibling) {
    if (info->is_regular()) {
      // The sibling is the representation; the original's path still gives
      // the Content-Type.
      worker_->file_cache().Release(rs_->file);
      rs_->file = info;
      rs_->coding = rs_->codings.order[rs_->coding_next - 1];
      ServeRepresentation();
    } else {
      worker_->file_cache().Release(info);
      TryNextCoding();  // No such sibling: next choice.
    }
    return;
  }
  if (info->error != 0) {
    const int status = StatusForOpenError(info->error);
    worker_->file_cache().Release(info);
    RespondError(status, !rs_->keep_alive);
    return;
  }
  if (info->is_regular()) {
    if (rs_->resolved.trailing_slash && !rs_->opening_index) {
      // "/file.txt/" names a directory that does not exist (POSIX: ENOTDIR).
      worker_->file_cache().Release(info);
      RespondError(404, !rs_->keep_alive);
      return;
    }
    rs_->file = info;
    const Request& r = rs_->parser.request();
    rs_->coding_next = 0;
    rs_->codings =
        worker_->config().precompressed
            ? NegotiateCoding(r.field(Field::kAcceptEncoding), r.has(Field::kAcceptEncoding))
            : CodingChoice();
    TryNextCoding();
    return;
  }
  const bool directory = info->is_directory();
  worker_->file_cache().Release(info);
  if (directory && !rs_->opening_index) {
    if (!rs_->resolved.trailing_slash) {
      RespondRedirect();
      return;
    }
    rs_->opening_index = true;
    rs_->path.assign(rs_->resolved.relative);
    if (!rs_->path.empty()) rs_->path.push_back('/');
    rs_->path.append("index.html");
    rs_->open_path = rs_->path;
    Resolve();
    return;
  }
  // A directory without an index file → 404 (the listing is not ours to
  // give); a FIFO, socket or device → 403: only regular files are served.
  RespondError(directory ? 404 : 403, !rs_->keep_alive);
}

void Connection::TryNextCoding() {
  rs_->probing_sibling = false;
  while (rs_->coding_next < rs_->codings.count) {
    const Coding c = rs_->codings.order[rs_->coding_next++];
    if (c == Coding::kIdentity) break;
    rs_->probing_sibling = true;
    rs_->open_path.assign(rs_->path).append(SiblingSuffix(c));
    Resolve();
    return;
  }
  rs_->coding = Coding::kIdentity;
  ServeRepresentation();
}

void Connection::AppendRepresentationFields(std::string* out) const {
  AppendField(out, "Last-Modified", std::string_view(rs_->file->last_modified, kHttpDateLength));
  AppendField(out, "ETag", rs_->etag);
  const ServerConfig& config = worker_->config();
  if (!config.cache_control.empty()) AppendField(out, "Cache-Control", config.cache_control);
  // Every response for a file may differ by Accept-Encoding once siblings
  // are in play, compressed or not (RFC 9110 §12.5.5).
  if (config.precompressed) AppendField(out, "Vary", "Accept-Encoding");
}

void Connection::ServeRepresentation() {
  const uint64_t size = rs_->file->size;
  const Request& r = rs_->parser.request();
  rs_->etag = rs_->file->etag;
  if (rs_->coding != Coding::kIdentity) {
    // A distinct validator per encoding (RFC 9110 §8.8.3).
    rs_->etag.insert(rs_->etag.size() - 1, rs_->coding == Coding::kBrotli ? "-br" : "-gz");
  }
  const Validators validators{rs_->etag, static_cast<time_t>(rs_->file->mtime_sec)};
  switch (EvaluatePreconditions(r, validators)) {
    case Precondition::kProceed:
      break;
    case Precondition::kNotModified:
      RespondNotModified();
      return;
    case Precondition::kPreconditionFailed:
      ReleaseFile();
      RespondError(412, !rs_->keep_alive);
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
    RespondError(416, !rs_->keep_alive, extra);
    return;
  }

  const bool partial = ranges.kind == RangeSet::Kind::kSatisfiable;
  BeginResponse(partial ? 206 : 200);
  AppendStatusAndCommon(&rs_->out, Common(partial ? 206 : 200));
  uint64_t offset = 0;
  uint64_t length = size;
  if (!partial && rs_->coding == Coding::kIdentity) {
    // The common case: the same fields as for the last whole-file 200 of
    // this entry (rs_->path is the entry's own key here, so the same type).
    std::string& fields = rs_->file->full_fields;
    if (fields.empty()) {
      AppendRepresentationFields(&fields);
      AppendField(&fields, "Accept-Ranges", "bytes");
      AppendField(&fields, "Content-Type", MimeTypeForPath(rs_->path));
      AppendFieldUint(&fields, "Content-Length", size);
    }
    rs_->out.append(fields);
  } else {
    AppendRepresentationFields(&rs_->out);
    AppendField(&rs_->out, "Accept-Ranges", "bytes");
    if (rs_->coding != Coding::kIdentity)
      AppendField(&rs_->out, "Content-Encoding", CodingName(rs_->coding));
    if (partial && ranges.count > 1) {
      BuildMultipart(ranges);
      return;
    }
    AppendField(&rs_->out, "Content-Type", MimeTypeForPath(rs_->path));
    if (partial) {
      offset = ranges.ranges[0].first;
      length = ranges.ranges[0].length;
      AppendContentRange(&rs_->out, offset, ranges.ranges[0].last(), size);
    }
    AppendFieldUint(&rs_->out, "Content-Length", length);
  }
  FinishHead();
  if (!rs_->head_only && length > 0 && rs_->file->has_content) {
    // Small files go out with their head in one SEND, straight from the cache.
    rs_->out.append(rs_->file->content, offset, length);
  } else if (!rs_->head_only && length > 0) {
    AddMemorySegment(0);
    AddFileSegment(offset, length);
    SendSegments();
    return;
  }
  ReleaseFile();
  AddMemorySegment(0);
  SendSegments();
}

// multipart/byteranges (RFC 9110 §14.6): each part has its own Content-Type
// and Content-Range; part bodies are spliced from the file like any other.
void Connection::BuildMultipart(const RangeSet& ranges) {
  const uint64_t size = rs_->file->size;
  const std::string_view type = MimeTypeForPath(rs_->path);
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

  rs_->out.append("Content-Type: multipart/byteranges; boundary=").append(boundary).append("\r\n");
  AppendFieldUint(&rs_->out, "Content-Length", parts.size() + body_bytes);
  FinishHead();
  if (rs_->head_only) {
    ReleaseFile();
    AddMemorySegment(0);
    SendSegments();
    return;
  }
  const size_t base = rs_->out.size();
  if (rs_->file->has_content) {
    // Small file: parts and their bytes are assembled in memory.
    for (size_t i = 0; i < ranges.count; ++i) {
      const size_t head_begin = i == 0 ? 0 : part_ends[i - 1];
      rs_->out.append(parts, head_begin, part_ends[i] - head_begin);
      rs_->out.append(rs_->file->content, ranges.ranges[i].first, ranges.ranges[i].length);
    }
    rs_->out.append(parts, part_ends[ranges.count - 1], std::string::npos);
    ReleaseFile();
    AddMemorySegment(0);
    SendSegments();
    return;
  }
  rs_->out.append(parts);
  rs_->segments.push_back(RequestState::Segment{0, base + part_ends[0], false});
  for (size_t i = 0; i < ranges.count; ++i) {
    AddFileSegment(ranges.ranges[i].first, ranges.ranges[i].length);
    rs_->segments.push_back(
        RequestState::Segment{base + part_ends[i], part_ends[i + 1] - part_ends[i], false});
  }
  SendSegments();
}

void Connection::RespondNotModified() {
  BeginResponse(304);
  AppendStatusAndCommon(&rs_->out, Common(304));
  AppendRepresentationFields(&rs_->out);
  FinishHead();
  ReleaseFile();
  AddMemorySegment(0);
  SendSegments();
}

}  // namespace sluice
