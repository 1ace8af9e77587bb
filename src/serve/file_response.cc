// The file half of Connection: OPENAT2 → STATX → index/redirect →
// precompressed sibling → preconditions → ranges → the response's segments.
// Runs on the owning worker's thread, like the rest of Connection.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sluice/http/field_syntax.h"
#include "sluice/http/http_date.h"
#include "sluice/http/response.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"
#include "sluice/serve/file_cache.h"
#include "sluice/serve/file_plan.h"

namespace sluice {
void Connection::StartFile() {
  rs_->lookup.fallback = FileLookup::Fallback::kNone;
  rs_->lookup.opening_index = false;
  rs_->lookup.probing_sibling = false;
  rs_->lookup.coding = Coding::kIdentity;
  rs_->lookup.path.assign(rs_->lookup.resolved.relative.empty() ? std::string_view(".")
                                                                : rs_->lookup.resolved.relative);
  rs_->lookup.open_path = rs_->lookup.path;
  Resolve();
}

// Resolves rs_->lookup.open_path beneath the root: from the worker's open-file cache
// when it has a fresh answer, else OPENAT2 → STATX (→ READ for a small file).
void Connection::Resolve() {
  const int64_t now_ns = host_->loop().now_ns();  // This batch's time.
  if (FileInfo* hit = rs_->lookup.files->cache().Find(rs_->lookup.open_path, now_ns)) {
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
  rs_->lookup.loading = rs_->lookup.files->cache().Create(rs_->lookup.open_path, now_ns);
  SubmitOpen();
}

void Connection::SubmitOpen() {
  state_ = State::kOpening;
  // The root's path changed and is being resolved again: the request waits
  // for the new root rather than opening in the old one.
  if (!rs_->lookup.files->root().ready()) {
    rs_->lookup.files->root().Wait(this);
    return;
  }
  SubmitOpenAt();
}

void Connection::ResumeOpen() {
  if (state_ != State::kOpening || io_op_.in_flight || rs_ == nullptr ||
      rs_->lookup.loading == nullptr) {
    return;
  }
  SubmitOpenAt();
  // A deadline or an abort that came while waiting had nothing to cancel.
  if (interrupt_ != Interrupt::kNone) CancelInFlight();
}

void Connection::SubmitOpenAt() {
  std::memset(&rs_->lookup.how, 0, sizeof(rs_->lookup.how));
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a tty
  // in the root must not become our terminal.
  rs_->lookup.how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  // The kernel refuses any resolution that leaves the root, through ".."
  // or symlinks, and /proc-style magic links (Linux 5.6).
  rs_->lookup.how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kOpen);
  // Held until the entry dies: io_uring reads the dirfd when the OPENAT2
  // runs, perhaps later in io-wq.
  rs_->lookup.loading->root = rs_->lookup.files->root().Acquire();
  io_uring_prep_openat2(sqe, rs_->lookup.loading->root->fd, rs_->lookup.loading->key.c_str(),
                        &rs_->lookup.how);
}

void Connection::OnOpen(int res) {
  // The descriptor is the entry's before anything else: dropping the entry
  // (an interrupted connection releases it) then closes it.
  if (res >= 0) {
    rs_->lookup.loading->fd = res;
  } else {
    rs_->lookup.loading->error = -res;
  }
  if (EndIfInterrupted()) return;
  if (res < 0) {
    FinishLoad();
    return;
  }
  SubmitStatx();
}

void Connection::SubmitStatx() {
  state_ = State::kStatting;
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kStatx);
  io_uring_prep_statx(sqe, rs_->lookup.loading->fd, "", AT_EMPTY_PATH,
                      STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME | STATX_INO | STATX_MNT_ID,
                      &rs_->lookup.stx);
}

void Connection::OnStatx(int res) {
  FileInfo* info = rs_->lookup.loading;
  if (res < 0) {
    info->error = -res;
  } else {
    info->mode = rs_->lookup.stx.stx_mode;
    info->size = rs_->lookup.stx.stx_size;
    info->inode = rs_->lookup.stx.stx_ino;
    info->mtime_sec = rs_->lookup.stx.stx_mtime.tv_sec;
    info->mtime_nsec = rs_->lookup.stx.stx_mtime.tv_nsec;
    info->mnt_id = (rs_->lookup.stx.stx_mask & STATX_MNT_ID) ? rs_->lookup.stx.stx_mnt_id : 0;
    info->Derive();
  }
  if (EndIfInterrupted()) return;
  if (res >= 0) {
    if (info->is_regular() && info->size > 0 &&
        info->size <= host_->config().small_file_bytes_max) {
      SubmitReadFile();
      return;
    }
  }
  if (!info->is_regular() && info->fd >= 0) {
    host_->loop().CloseLater(info->fd);  // Directories and the like are not read.
    info->fd = -1;
  }
  FinishLoad();
}

void Connection::SubmitReadFile() {
  state_ = State::kReadingFile;
  rs_->lookup.loading->content.resize(rs_->lookup.loading->size);
  io_uring_sqe* sqe = Prep(&io_op_, OpKind::kRead);
  io_uring_prep_read(sqe, rs_->lookup.loading->fd, rs_->lookup.loading->content.data(),
                     static_cast<unsigned>(rs_->lookup.loading->size), 0);
}

void Connection::OnReadFile(int res) {
  FileInfo* info = rs_->lookup.loading;
  if (res >= 0 && static_cast<uint64_t>(res) == info->size) {
    // The whole file is in memory: responses need no descriptor any more.
    info->has_content = true;
    host_->loop().CloseLater(info->fd);
    info->fd = -1;
  } else if (res < 0 && res != -EAGAIN && res != -EINTR) {
    // The storage failed before anything was sent: an honest 500 (EIO),
    // not a head promising a body we could not read.
    info->error = -res;
    info->content.clear();
    info->content.shrink_to_fit();
  } else {
    // Short (the file changed under us), EAGAIN, or an error: send from the
    // descriptor instead, which ends short if the file really shrank.
    info->content.clear();
    info->content.shrink_to_fit();
  }
  if (EndIfInterrupted()) return;
  FinishLoad();
}

void Connection::FinishLoad() {
  FileInfo* info = rs_->lookup.loading;
  rs_->lookup.loading = nullptr;
  rs_->lookup.files->cache().Map(info);  // Bodies spliced from it ask it what is resident.
  rs_->lookup.files->cache().Publish(info);
  OnResolved(info);
}

void Connection::OnResolved(FileInfo* info) {
  if (rs_->lookup.probing_sibling) {
    if (info->is_regular()) {
      // The sibling is the representation; the original's path still gives
      // the Content-Type.
      rs_->lookup.files->cache().Release(rs_->tx.file);
      rs_->tx.file = info;
      rs_->lookup.coding = rs_->lookup.codings.order[rs_->lookup.coding_next - 1];
      ServeRepresentation();
    } else {
      rs_->lookup.files->cache().Release(info);
      TryNextCoding();  // No such sibling: next choice.
    }
    return;
  }
  if (info->error != 0) {
    if (rs_->lookup.opening_index && info->error == ENOENT &&
        rs_->lookup.fallback == FileLookup::Fallback::kNone && ListingsOn()) {
      rs_->lookup.files->cache().Release(info);
      StartListing();  // No index file: list the directory instead of 404.
      return;
    }
    const int status = StatusForOpenError(info->error);
    rs_->lookup.files->cache().Release(info);
    RespondLookupError(status);
    return;
  }
  if (info->is_regular()) {
    if (rs_->lookup.resolved.trailing_slash && !rs_->lookup.opening_index &&
        rs_->lookup.fallback == FileLookup::Fallback::kNone) {
      // "/file.txt/" names a directory that does not exist (POSIX: ENOTDIR).
      rs_->lookup.files->cache().Release(info);
      RespondLookupError(404);
      return;
    }
    rs_->tx.file = info;
    const Request& r = rs_->input.parser.request();
    rs_->lookup.coding_next = 0;
    // An error page is sent as it is: no sibling.
    rs_->lookup.codings =
        rs_->lookup.generation->precompressed &&
                rs_->lookup.fallback != FileLookup::Fallback::kErrorPage
            ? NegotiateCoding(r.field(Field::kAcceptEncoding), r.has(Field::kAcceptEncoding))
            : CodingChoice();
    TryNextCoding();
    return;
  }
  const bool directory = info->is_directory();
  rs_->lookup.files->cache().Release(info);
  if (rs_->lookup.fallback == FileLookup::Fallback::kErrorPage) {
    RespondError(rs_->lookup.error_status, !rs_->response.keep_alive);  // Not a file.
    return;
  }
  if (directory && !rs_->lookup.opening_index &&
      rs_->lookup.fallback == FileLookup::Fallback::kNone) {
    // "dir" → 301 "dir/", clean URLs or not: the index's relative links
    // resolve against the directory only with the slash.
    if (!rs_->lookup.resolved.trailing_slash) {
      RespondRedirect();
      return;
    }
    rs_->lookup.opening_index = true;
    rs_->lookup.path.assign(rs_->lookup.resolved.relative);
    if (!rs_->lookup.path.empty()) rs_->lookup.path.push_back('/');
    rs_->lookup.path.append("index.html");
    rs_->lookup.open_path = rs_->lookup.path;
    Resolve();
    return;
  }
  // A directory whose index is not a regular file → 404 (a missing index is
  // listed above where listings are on, else 404 too); a FIFO, socket or
  // device → 403: only regular files are served.
  RespondLookupError(directory ? 404 : 403);
}

namespace {

// The last segment of a decoded relative path has no '.': a page, not an asset.
bool LooksLikePage(std::string_view relative) {
  const size_t slash = relative.rfind('/');
  const std::string_view last =
      slash == std::string_view::npos ? relative : relative.substr(slash + 1);
  return last.find('.') == std::string_view::npos;
}

bool AcceptsHtml(std::string_view accept) {
  static constexpr std::string_view kHtml = "text/html";
  for (size_t i = 0; i + kHtml.size() <= accept.size(); ++i) {
    if (EqualsIgnoreCase(accept.substr(i, kHtml.size()), kHtml)) return true;
  }
  return false;
}

}  // namespace

void Connection::RespondLookupError(int status) {
  FileLookup& l = rs_->lookup;
  using Fallback = FileLookup::Fallback;
  if (l.rules.any && l.fallback != Fallback::kErrorPage) {
    if (status == 404 && l.fallback == Fallback::kNone && l.rules.clean_urls != CleanUrls::kOff &&
        !l.resolved.trailing_slash && !l.resolved.relative.empty() && !l.opening_index &&
        LooksLikePage(l.resolved.relative)) {
      // /about → /about.html.
      l.fallback = Fallback::kCleanHtml;
      l.path.assign(l.resolved.relative).append(".html");
      OpenFallback();
      return;
    }
    const Request& r = rs_->input.parser.request();
    if (status == 404 && (l.fallback == Fallback::kNone || l.fallback == Fallback::kCleanHtml) &&
        l.rules.spa_fallback != nullptr && !l.rules.spa_fallback->empty() &&
        (l.resolved.trailing_slash || LooksLikePage(l.resolved.relative)) &&
        AcceptsHtml(r.field(Field::kAccept))) {
      // A navigation to a route the application draws itself.
      l.fallback = Fallback::kSpa;
      l.path.assign(std::string_view(*l.rules.spa_fallback).substr(1));
      OpenFallback();
      return;
    }
    if (const std::string* page = ErrorPageFor(*l.site, l.rules, status)) {
      l.fallback = Fallback::kErrorPage;
      l.error_status = status;
      l.path.assign(std::string_view(*page).substr(1));
      OpenFallback();
      return;
    }
  }
  RespondError(l.fallback == Fallback::kErrorPage ? l.error_status : status,
               !rs_->response.keep_alive);
}

bool Connection::ListingsOn() const {
  // A rule's `listing` wins over --directory_listing; either needs the pool.
  const FileLookup& l = rs_->lookup;
  return l.rules.listing.value_or(l.generation->directory_listing) &&
         host_->blocking_pool() != nullptr;
}

void Connection::OpenFallback() {
  rs_->lookup.opening_index = false;
  rs_->lookup.probing_sibling = false;
  rs_->lookup.coding = Coding::kIdentity;
  rs_->lookup.open_path = rs_->lookup.path;
  Resolve();
}

void Connection::TryNextCoding() {
  rs_->lookup.probing_sibling = false;
  while (rs_->lookup.coding_next < rs_->lookup.codings.count) {
    const Coding c = rs_->lookup.codings.order[rs_->lookup.coding_next++];
    if (c == Coding::kIdentity) break;
    rs_->lookup.probing_sibling = true;
    rs_->lookup.open_path.assign(rs_->lookup.path).append(CodingFileSuffix(c));
    Resolve();
    return;
  }
  rs_->lookup.coding = Coding::kIdentity;
  ServeRepresentation();
}

void Connection::ServeRepresentation() {
  FilePlanInput in;
  in.request = &rs_->input.parser.request();
  in.file.size = rs_->tx.file->size;
  in.file.mtime_sec = rs_->tx.file->mtime_sec;
  in.file.etag = rs_->tx.file->etag;
  in.file.last_modified = std::string_view(rs_->tx.file->last_modified, kHttpDateLength);
  in.file.content = rs_->tx.file->has_content ? &rs_->tx.file->content : nullptr;
  in.file.full_fields = &rs_->tx.file->full_fields;
  in.coding = rs_->lookup.coding;
  in.path = rs_->lookup.path;
  in.common = Common(200);
  in.head_only = rs_->response.head_only;
  in.random = host_->NextRandom();
  const ServeGeneration& gen = *rs_->lookup.generation;
  in.cache_control = gen.cache_control;
  in.precompressed = gen.precompressed;
  in.max_ranges = gen.max_ranges;
  switch (rs_->lookup.fallback) {
    case FileLookup::Fallback::kSpa:
      // The application's shell must be revalidated (a rule may say otherwise).
      in.cache_control = "no-cache";
      in.file.full_fields = nullptr;  // Not the fields a direct request gets.
      break;
    case FileLookup::Fallback::kErrorPage:
      in.status = rs_->lookup.error_status;
      // Not the requested resource's: no --cache_control (and no rule's
      // Cache-Control or Expires: header_edits.h), as nginx's error_page.
      in.cache_control = {};
      in.precompressed = false;
      in.file.full_fields = nullptr;
      rs_->response.error_page = true;
      break;
    default:
      break;
  }
  const FilePlan plan = PlanFileResponse(in, &rs_->tx.out, &rs_->tx.segments);
  rs_->response.status = plan.status;
  rs_->response.head_len = plan.head_len;
  rs_->tx.segment_index = 0;
  rs_->tx.out_sent = 0;
  if (!plan.uses_file) ReleaseFile();  // Everything is in memory already.
  SendSegments();
}

}  // namespace sluice
