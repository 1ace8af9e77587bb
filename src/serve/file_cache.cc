#include "sluice/serve/file_cache.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/base/check.h"
#include "sluice/base/log.h"
#include "sluice/http/response.h"
#include "sluice/io/page_cache_mounts.h"
#include "sluice/serve/document_root.h"

namespace sluice {
namespace {

constexpr size_t kInotifyBufferBytes = 16 * 1024;
// Reads of the inotify queue per poll wake-up, so a flood of events cannot
// hold the worker: about 500 events per read (32 bytes and a short name
// each), and the default queue (fs.inotify.max_queued_events) holds 16,384.
constexpr int kInotifyReadsPerWake = 64;
// What can make a cached answer for a name wrong. IN_MASK_ADD: one
// directory may be watched for the cache and for the root's path at once,
// and the kernel gives both the same descriptor; masks only grow.
constexpr uint32_t kWatchMask = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
                                IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_CLOSE_WRITE |
                                IN_ONLYDIR | IN_MASK_ADD;
// The root's path only changes by names coming and going.
constexpr uint32_t kRootWatchMask = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                                    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW |
                                    IN_MASK_ADD;
// Events that change a file's bytes or attributes but not what its name
// refers to.
constexpr uint32_t kSameName = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_ISDIR;
// Keys of the root's path directories; relative keys never hold a NUL.
constexpr char kRootKeyPrefix = '\0';

// "" and each directory above `key`: "", "a", "a/b" for "a/b/c".
template <typename F>
void ForEachDirectoryOf(std::string_view key, size_t max, F f) {
  size_t n = 0;
  if (n++ >= max || !f(std::string_view())) return;
  for (size_t i = key.find('/'); i != std::string_view::npos; i = key.find('/', i + 1)) {
    if (n++ >= max || !f(key.substr(0, i))) return;
  }
}

}  // namespace

bool FileInfo::Resident(uint64_t offset, size_t len) const {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (map == nullptr || len == 0 || len > kResidentBytesMax || offset >= map_len ||
      len > map_len - offset) {
    return false;
  }
  const size_t first = static_cast<size_t>(offset) / page * page;
  const size_t span = static_cast<size_t>(offset) + len - first;
  const size_t pages = (span + page - 1) / page;
  std::array<unsigned char, kResidentBytesMax / 4096 + 1> vec;
  if (pages > vec.size()) return false;  // Pages smaller than 4 KiB.
  // mincore() of a file mapping without page tables asks the page cache,
  // and counts a page only when it is up to date (not while it is read).
  if (mincore(static_cast<char*>(map) + first, span, vec.data()) != 0) return false;
  for (size_t i = 0; i < pages; ++i) {
    if ((vec[i] & 1) == 0) return false;
  }
  return true;
}

void FileInfo::Derive() {
  etag.clear();
  AppendEtag(&etag, inode, size, mtime_sec, mtime_nsec);
  FormatHttpDate(static_cast<time_t>(mtime_sec), last_modified);
}

FileCache::FileCache(Loop* loop, WorkerMetrics* metrics, size_t entries_max,
                     size_t content_bytes_max, absl::Duration valid, DocumentRoot* root)
    : loop_(loop),
      metrics_(metrics),
      entries_max_(entries_max),
      content_bytes_max_(content_bytes_max),
      valid_ns_(absl::ToInt64Nanoseconds(valid)),
      root_(root),
      watches_([this](const std::string& key) { return AddWatch(key); },
               [this](int wd) { inotify_rm_watch(inotify_fd_, wd); }) {
  inotify_poll_op_.owner = this;
  loop_->AddPriorityOp(&inotify_poll_op_);
}

FileCache::~FileCache() {
  loop_->RemovePriorityOp(&inotify_poll_op_);
  Clear();
  // This cache's share of the worker's gauges goes with it.
  map_.clear();
  content_bytes_ = 0;
  UpdateSizeMetrics();
  if (inotify_fd_ >= 0) close(inotify_fd_);
}

void FileCache::Start() {
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_fd_ < 0) {
    // Without change notification the cache could serve stale files for
    // the whole validity period: run without it instead. The root then
    // relies on its per-tick check.
    LogWarning(absl::StrCat("inotify unavailable (", strerror(errno), "): open-file cache off"));
    entries_max_ = 0;
    return;
  }
  inotify_buf_ = std::make_unique<char[]>(kInotifyBufferBytes);
  SubmitInotifyPoll();
}

int FileCache::AddWatch(const std::string& key) {
  if (!key.empty() && key[0] == kRootKeyPrefix) {
    const std::string dir = key.substr(1);
    const int wd = inotify_add_watch(inotify_fd_, dir.c_str(), kRootWatchMask);
    return wd >= 0 ? wd : -errno;
  }
  // Through the root's current descriptor, so the watch is on the directory
  // OPENAT2 resolves against even while a swap of the root's path is in
  // flight; following symlinks, so a symlinked directory's target is
  // watched. A syscall, but only when a directory is first needed.
  std::string path = absl::StrCat("/proc/self/fd/", root_->current_fd());
  if (!key.empty()) absl::StrAppend(&path, "/", key);
  const int wd = inotify_add_watch(inotify_fd_, path.c_str(), kWatchMask);
  return wd >= 0 ? wd : -errno;
}

void FileCache::WatchRootDirectories(const std::vector<std::string>& dirs) {
  if (inotify_fd_ < 0) return;
  std::vector<std::string> keys;
  for (const std::string& dir : dirs) {
    keys.push_back(std::string(1, kRootKeyPrefix) + dir);
    watches_.Acquire(keys.back());
  }
  // Holds from before a Reset() are void already.
  if (root_dirs_generation_ == watches_.generation()) {
    for (const std::string& key : root_dirs_) watches_.Release(key);
  }
  root_dirs_ = std::move(keys);
  root_dirs_generation_ = watches_.generation();
}

void FileCache::SubmitInotifyPoll() {
  io_uring_sqe* sqe = loop_->Arm(&inotify_poll_op_, OpKind::kInotifyPoll);
  io_uring_prep_poll_add(sqe, inotify_fd_, POLLIN);
}

void FileCache::OnCompletion(Operation* op, int res, uint32_t /*cqe_flags*/) noexcept {
  SLUICE_CHECK(op == &inotify_poll_op_, "the file cache completes only its own operations");
  OnInotifyPoll(res);
}

void FileCache::OnInotifyPoll(int res) {
  if (res == -ECANCELED || stopping_) return;
  // The events are read here, inline, before any request reaped in the
  // same batch (the poll is a priority operation). Every event queued
  // before a request was sent is therefore applied before that request
  // looks at the cache, and only an event queued after its load began can
  // mark the load changed. A READ through the ring (which io_uring runs in
  // io-wq for inotify) completed only after such requests had begun loads,
  // and its events, older than the loads, marked them changed: a response
  // with the right bytes was then cut. Reading cannot block: the
  // descriptor is non-blocking and inotify's queue is memory.
  bool drained = false;
  bool applied = false;
  for (int reads = 0; reads < kInotifyReadsPerWake; ++reads) {
    const ssize_t n = read(inotify_fd_, inotify_buf_.get(), kInotifyBufferBytes);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      drained = true;
      break;
    }
    if (n <= 0) {
      // Nothing can say what was missed.
      LogWarning(absl::StrCat("inotify read: ", n < 0 ? strerror(errno) : "end of file"));
      DropEverything();
      drained = true;
      break;
    }
    applied |= ApplyEvents(static_cast<size_t>(n));
  }
  // A load that began before these were applied may have read the old file.
  // Only events of watches still bound count: the IN_IGNORED of a watch
  // this cache removed itself (its last entry went) says nothing of any
  // file. Counting it kept a lone entry from ever being cached again once
  // it expired: its removal dropped the root's watch, the IN_IGNORED came
  // while the next load ran and voided it, that entry's end dropped the
  // watch again (404s under load: 36,555 inotify_add_watch calls in 5 s).
  if (applied) ++epoch_;
  if (drained) {
    if (events_pending_) {
      events_pending_ = false;
      root_->OnEventsApplied();
    }
  } else if (!events_pending_) {
    // A flood: more are queued than one wake-up reads. Until they are
    // applied, the cache is bypassed and new opens wait; the poll re-armed
    // below completes at once and reads on.
    events_pending_ = true;
    root_->OnEventsPending(loop_->now_ns());
  }
  SubmitInotifyPoll();
}

void FileCache::StopWatching() {
  stopping_ = true;
  if (inotify_poll_op_.in_flight) loop_->Cancel(&inotify_poll_op_);
}

void FileCache::DropEverything() {
  // Events were lost (an overflow, a failed read). Nothing can vouch for
  // any entry or watch: start again, lazily.
  metrics_->file_cache_events_lost_total.Add();
  Clear();
  watches_.Reset();
  ++epoch_;
  if (listener_) listener_("", /*below=*/true);
  root_->OnEventsLost();
}

bool FileCache::ApplyEvents(size_t bytes) {
  bool applied = false;
  size_t off = 0;
  while (off + sizeof(inotify_event) <= bytes) {
    const auto* ev = reinterpret_cast<const inotify_event*>(inotify_buf_.get() + off);
    off += sizeof(inotify_event) + ev->len;
    if (ev->mask & IN_Q_OVERFLOW) {
      DropEverything();
      applied = true;
      continue;
    }
    // The kernel pads the name with NULs.
    const std::string_view name = ev->len > 0 ? std::string_view(ev->name) : std::string_view();
    applied |= ApplyEvent(ev->wd, ev->mask, name);
  }
  return applied;
}

bool FileCache::ApplyEvent(int wd, uint32_t mask, std::string_view name) {
  const std::vector<std::string> keys = watches_.KeysOf(wd);
  for (const std::string& dir : keys) {
    if (!dir.empty() && dir[0] == kRootKeyPrefix) {
      root_->OnWatchEvent(dir.substr(1), name, mask);
      continue;
    }
    if (name.empty()) {
      // The directory itself: deleted, moved, or its permissions changed.
      Invalidate(dir, /*below=*/true, /*bytes_changed=*/false);
      if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) watches_.Forget(dir);
      continue;
    }
    if ((mask & ~kSameName) == 0) {
      // Bytes or attributes of one name: that entry (and, for a directory
      // whose permissions changed, everything below it). Only a write
      // (IN_MODIFY, which a truncation raises too, or IN_CLOSE_WRITE)
      // changes the bytes a response may be sending from that file.
      std::string key = dir;
      if (!key.empty()) key.push_back('/');
      key.append(name);
      const bool is_dir = (mask & IN_ISDIR) != 0;
      Invalidate(key, /*below=*/is_dir,
                 /*bytes_changed=*/!is_dir && (mask & (IN_MODIFY | IN_CLOSE_WRITE)) != 0);
      continue;
    }
    // A name came, went or was replaced. Every path through it changes, and
    // so may any entry that reaches it through a symlink elsewhere in this
    // directory (a ConfigMap's `file -> ..data/file` when `..data` is
    // swapped; inotify does not say which names are links): everything
    // below `dir` goes, and watches taken below it, which may follow the
    // old directories, are taken again when next needed. No file's bytes
    // changed: a response spliced from a file opened through the old name
    // goes on from its descriptor, whose inode a rename or an unlink leaves
    // whole (marking them changed reset every spliced response below `dir`
    // whenever any name in it was replaced).
    Invalidate(dir, /*below=*/true, /*bytes_changed=*/false);
    watches_.Forget(dir, /*strictly_below=*/true);
  }
  if (mask & IN_IGNORED) watches_.OnWatchGone(wd);
  return !keys.empty();
}

void FileCache::Invalidate(std::string_view key, bool below, bool bytes_changed) {
  if (listener_) listener_(key, below);
  std::vector<FileInfo*> hit;
  if (!below) {
    if (auto it = live_.find(absl::string_view(key.data(), key.size())); it != live_.end()) {
      hit = it->second;
    }
  } else {
    for (const auto& [k, infos] : live_) {
      if (KeyIsAtOrBelow(k, key)) hit.insert(hit.end(), infos.begin(), infos.end());
    }
  }
  // `hit` is a copy: Remove() may free an entry and edit live_.
  for (FileInfo* info : hit) {
    info->stale = true;
    if (bytes_changed) info->changed = true;
    if (info->cached) Remove(info);
  }
}

void FileCache::OnRootChanged() {
  // Keys are relative to the root: none of them means the same file now.
  // Not `changed`: those files did not change.
  Clear();
  watches_.Reset();
  ++epoch_;
  if (listener_) listener_("", /*below=*/true);
}

void FileCache::WatchPathOf(FileInfo* info) {
  info->watch_generation = watches_.generation();
  info->watched = false;
  if (!enabled() || inotify_fd_ < 0) return;
  bool ok = true;
  // The root's own key "." depends on the root alone.
  const std::string_view key = info->key == "." ? std::string_view() : info->key;
  ForEachDirectoryOf(key, SIZE_MAX, [&](std::string_view dir) {
    const int wd = watches_.Acquire(std::string(dir));
    ++info->watch_depth;
    if (wd >= 0) return true;
    // A missing directory is fine: a watch above it sees it appear. The
    // root itself must be watched, or nothing could be.
    ok = !dir.empty() && (wd == -ENOENT || wd == -ENOTDIR);
    return false;
  });
  info->watched = ok;
}

void FileCache::UnwatchPathOf(FileInfo* info) {
  if (info->watch_depth == 0 || info->watch_generation != watches_.generation()) return;
  const std::string_view key = info->key == "." ? std::string_view() : info->key;
  ForEachDirectoryOf(key, info->watch_depth, [&](std::string_view dir) {
    watches_.Release(dir);
    return true;
  });
  info->watch_depth = 0;
}

void FileCache::WatchDirectory(std::string_view key, DirectoryWatch* w) {
  w->generation = watches_.generation();
  w->depth = 0;
  w->watched = false;
  if (inotify_fd_ < 0) return;
  // "", "a", "a/b" for the directory "a/b": the directory itself too, since
  // what it holds is what changes.
  bool ok = true;
  size_t end = 0;
  while (ok) {
    const std::string_view dir = key.substr(0, end);
    ++w->depth;
    ok = watches_.Acquire(std::string(dir)) >= 0;
    if (end >= key.size()) break;
    const size_t slash = key.find('/', end + 1);
    end = slash == std::string_view::npos ? key.size() : slash;
  }
  w->watched = ok;
}

void FileCache::UnwatchDirectory(std::string_view key, DirectoryWatch* w) {
  if (w->depth == 0 || w->generation != watches_.generation()) {
    w->depth = 0;
    return;
  }
  size_t end = 0;
  for (uint16_t i = 0; i < w->depth; ++i) {
    watches_.Release(key.substr(0, end));
    if (end >= key.size()) break;
    const size_t slash = key.find('/', end + 1);
    end = slash == std::string_view::npos ? key.size() : slash;
  }
  w->depth = 0;
}

FileInfo* FileCache::Find(std::string_view key, int64_t now_ns) {
  FileInfo* info = nullptr;
  // While the root is being re-resolved, every request waits for it.
  if (enabled() && !events_pending_ && root_->ready()) {
    if (auto it = map_.find(key); it != map_.end()) info = it->second;
  }
  WorkerMetrics& m = *metrics_;
  if (info != nullptr && now_ns - info->loaded_ns > valid_ns_) {
    Remove(info);  // Trusted long enough without an event: load it afresh.
    m.file_cache_expired_total.Add();
    info = nullptr;
  }
  if (info == nullptr) {
    m.file_cache_misses_total.Add();
    return nullptr;
  }
  info->referenced = true;
  ++info->refs;
  m.file_cache_hits_total.Add();
  return info;
}

FileInfo* FileCache::Create(std::string_view key, int64_t now_ns) {
  auto* info = new FileInfo();
  info->key.assign(key);
  info->loaded_ns = now_ns;
  info->refs = 1;
  info->clock_node.owner = info;
  info->epoch = epoch_;
  live_[info->key].push_back(info);
  // Before the load is issued: a change during the load is then reported.
  WatchPathOf(info);
  return info;
}

void FileCache::Publish(FileInfo* info) {
  // A change reported while this was loading may concern it: not cached.
  if (!enabled() || info->cached || info->stale || events_pending_ || info->epoch != epoch_) {
    return;
  }
  // Loaded against a root that is no longer current.
  if (info->root != nullptr && info->root->id != root_->generation_id()) return;
  // Only errors that describe the path (not our descriptor shortage) are kept.
  if (info->error != 0 && info->error != ENOENT && info->error != ENOTDIR && info->error != EXDEV &&
      info->error != EACCES && info->error != ELOOP) {
    return;
  }
  if (info->content.size() > content_bytes_max_) return;
  // Unwatchable, or watched in a table since reset: never cache what we
  // cannot invalidate.
  if (!info->watched || info->watch_generation != watches_.generation()) return;
  if (auto it = map_.find(info->key); it != map_.end()) Remove(it->second);
  info->cached = true;
  ++info->refs;
  map_.emplace(std::string_view(info->key), info);
  clock_.PushBack(&info->clock_node);
  content_bytes_ += info->content.size();
  EvictToFit();
  UpdateSizeMetrics();
}

void FileCache::UpdateSizeMetrics() {
  // A worker has a cache per document root: the gauges are their sum.
  metrics_->file_cache_entries.Set(metrics_->file_cache_entries.Get() - reported_entries_ +
                                   map_.size());
  metrics_->file_cache_content_bytes.Set(metrics_->file_cache_content_bytes.Get() -
                                         reported_content_bytes_ + content_bytes_);
  reported_entries_ = map_.size();
  reported_content_bytes_ = content_bytes_;
}

void FileCache::EvictToFit() {
  // Each pass over the list clears every `referenced`, so this ends within
  // two passes even when every entry was hit.
  while (!clock_.empty() && (map_.size() > entries_max_ || content_bytes_ > content_bytes_max_)) {
    auto* oldest = static_cast<FileInfo*>(clock_.front()->owner);
    if (oldest->referenced) {
      oldest->referenced = false;
      clock_.Remove(&oldest->clock_node);
      clock_.PushBack(&oldest->clock_node);
      continue;
    }
    Remove(oldest);
    metrics_->file_cache_evictions_total.Add();
  }
}

void FileCache::Remove(FileInfo* info) {
  map_.erase(std::string_view(info->key));
  clock_.Remove(&info->clock_node);
  content_bytes_ -= info->content.size();
  info->cached = false;
  UpdateSizeMetrics();
  Unref(info);
}

void FileCache::Release(FileInfo* info) {
  if (info != nullptr) Unref(info);
}

void FileCache::Map(FileInfo* info) {
  if (info->map != nullptr || info->fd < 0 || !info->is_regular() || info->has_content ||
      info->size == 0 || maps_ >= kMapsMax || !IsLocalPageCacheMount(info->mnt_id)) {
    return;  // Its file system may revalidate in splice_read (NFS, FUSE...).
  }
  // No I/O: the mapping is never touched, so no page is read or faulted in.
  void* map = mmap(nullptr, static_cast<size_t>(info->size), PROT_READ, MAP_SHARED, info->fd, 0);
  if (map == MAP_FAILED) return;  // The ring's SPLICE serves it as before.
  info->map = map;
  info->map_len = static_cast<size_t>(info->size);
  ++maps_;
}

void FileCache::Unref(FileInfo* info) {
  if (--info->refs > 0) return;
  if (info->map != nullptr) {
    munmap(info->map, info->map_len);
    --maps_;
  }
  if (info->fd >= 0) loop_->CloseLater(info->fd);
  UnwatchPathOf(info);
  if (auto it = live_.find(info->key); it != live_.end()) {
    std::erase(it->second, info);
    if (it->second.empty()) live_.erase(it);
  }
  root_->Release(info->root);
  delete info;
}

void FileCache::Clear() {
  while (!clock_.empty()) Remove(static_cast<FileInfo*>(clock_.front()->owner));
}

}  // namespace sluice
