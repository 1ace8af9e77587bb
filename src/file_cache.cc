#include "sluice/file_cache.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/log.h"
#include "sluice/response.h"
#include "sluice/worker.h"

namespace sluice {
namespace {

constexpr size_t kInotifyBufferBytes = 16 * 1024;
// What can make a cached answer for a name wrong.
constexpr uint32_t kWatchMask = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE |
                                IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_CLOSE_WRITE |
                                IN_ONLYDIR;

}  // namespace

void FileInfo::Derive() {
  etag.clear();
  AppendEtag(&etag, inode, size, mtime_sec, mtime_nsec);
  FormatHttpDate(static_cast<time_t>(mtime_sec), last_modified);
}

FileCache::FileCache(Worker* worker, size_t entries_max, size_t content_bytes_max,
                     absl::Duration valid, std::string root_path)
    : worker_(worker),
      entries_max_(entries_max),
      content_bytes_max_(content_bytes_max),
      valid_ns_(absl::ToInt64Nanoseconds(valid)),
      root_path_(std::move(root_path)) {
  inotify_op_.owner = worker;
  inotify_poll_op_.owner = worker;
}

FileCache::~FileCache() {
  Clear();
  if (inotify_fd_ >= 0) close(inotify_fd_);
}

void FileCache::Start() {
  if (!enabled()) return;
  inotify_fd_ = inotify_init1(IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    // Without change notification the cache could serve stale files for
    // the whole validity period: run without it instead.
    LogWarning(absl::StrCat("inotify unavailable (", strerror(errno), "): open-file cache off"));
    entries_max_ = 0;
    return;
  }
  inotify_buf_ = std::make_unique<char[]>(kInotifyBufferBytes);
  SubmitInotifyPoll();
}

void FileCache::SubmitInotifyPoll() {
  io_uring_sqe* sqe = worker_->GetSqe();
  worker_->OnSubmit(OpKind::kInotifyPoll);
  inotify_poll_op_.kind = OpKind::kInotifyPoll;
  inotify_poll_op_.in_flight = true;
  io_uring_sqe_set_data(sqe, &inotify_poll_op_);
  io_uring_prep_poll_add(sqe, inotify_fd_, POLLIN);
}

void FileCache::OnInotifyPoll(int res) {
  if (res == -ECANCELED || worker_->stopping()) return;
  events_pending_ = true;
  ++epoch_;
  SubmitInotifyRead();
}

void FileCache::SubmitInotifyRead() {
  io_uring_sqe* sqe = worker_->GetSqe();
  worker_->OnSubmit(OpKind::kInotify);
  inotify_op_.kind = OpKind::kInotify;
  inotify_op_.in_flight = true;
  io_uring_sqe_set_data(sqe, &inotify_op_);
  io_uring_prep_read(sqe, inotify_fd_, inotify_buf_.get(), kInotifyBufferBytes, 0);
}

void FileCache::StopWatching() {
  if (inotify_op_.in_flight) worker_->SubmitCancel(&inotify_op_);
  if (inotify_poll_op_.in_flight) worker_->SubmitCancel(&inotify_poll_op_);
}

void FileCache::OnInotify(int res) {
  if (res <= 0) {
    if (res == -ECANCELED || worker_->stopping()) return;
    // Unexpected: drop everything (nothing can vouch for freshness) and
    // listen again.
    Clear();
    events_pending_ = false;
    SubmitInotifyPoll();
    return;
  }
  size_t off = 0;
  std::string key;
  while (off + sizeof(inotify_event) <= static_cast<size_t>(res)) {
    const auto* ev = reinterpret_cast<const inotify_event*>(inotify_buf_.get() + off);
    off += sizeof(inotify_event) + ev->len;
    if (ev->mask & IN_Q_OVERFLOW) {
      Clear();
      continue;
    }
    auto dir = watched_dirs_.find(ev->wd);
    if (dir == watched_dirs_.end()) continue;
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
      // The directory itself went away or moved: everything under it is
      // suspect, and so is its own entry.
      Clear();
      if (ev->mask & IN_IGNORED) {
        dir_watches_.erase(dir->second);
        watched_dirs_.erase(dir);
      }
      continue;
    }
    key = dir->second;
    if (ev->len > 0) {
      if (!key.empty()) key.push_back('/');
      key.append(ev->name);
    }
    if (auto it = map_.find(key); it != map_.end()) Remove(it->second);
    if (ev->mask & IN_ISDIR) {
      // A subdirectory changed name or vanished: entries below it too.
      const std::string prefix = key + "/";
      std::vector<FileInfo*> doomed;
      for (const auto& [k, info] : map_) {
        if (k.substr(0, prefix.size()) == prefix) doomed.push_back(info);
      }
      for (FileInfo* info : doomed) Remove(info);
    }
  }
  events_pending_ = false;
  SubmitInotifyPoll();
}

int FileCache::WatchDirectoryOf(std::string_view key) {
  // The nearest existing directory above `key`: for "a/b/missing.html" with
  // no "a/b", a watch on "a" (or the root) still sees "b" appear, and a
  // directory event drops every entry below it.
  std::string_view dir = key;
  for (;;) {
    const size_t slash = dir.rfind('/');
    dir = slash == std::string_view::npos ? std::string_view() : dir.substr(0, slash);
    const std::string dir_key(dir);
    if (auto it = dir_watches_.find(dir_key); it != dir_watches_.end()) return it->second;
    // A syscall, but only when a directory is first cached; it never blocks.
    const std::string path = dir.empty() ? root_path_ : root_path_ + "/" + dir_key;
    const int wd = inotify_add_watch(inotify_fd_, path.c_str(), kWatchMask | IN_DONT_FOLLOW);
    if (wd >= 0) {
      dir_watches_[dir_key] = wd;
      watched_dirs_[wd] = dir_key;
      return wd;
    }
    if (dir.empty()) return -1;
  }
}

FileInfo* FileCache::Find(std::string_view key, int64_t now_ns) {
  FileInfo* info = nullptr;
  if (enabled() && !events_pending_) {
    if (auto it = map_.find(key); it != map_.end()) info = it->second;
  }
  if (info != nullptr && now_ns - info->loaded_ns > valid_ns_) {
    Remove(info);  // Stale: load it afresh.
    info = nullptr;
  }
  WorkerMetrics& m = worker_->metrics();
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
  info->lru.owner = info;
  info->epoch = epoch_;
  return info;
}

void FileCache::Publish(FileInfo* info) {
  // A change reported while this was loading may concern it: not cached.
  if (!enabled() || info->cached || events_pending_ || info->epoch != epoch_) return;
  // Only errors that describe the path (not our descriptor shortage) are kept.
  if (info->error != 0 && info->error != ENOENT && info->error != ENOTDIR && info->error != EXDEV &&
      info->error != EACCES && info->error != ELOOP) {
    return;
  }
  if (info->content.size() > content_bytes_max_) return;
  info->watch = WatchDirectoryOf(info->key);
  if (info->watch < 0) return;  // Unwatchable: never cache what we cannot invalidate.
  if (auto it = map_.find(info->key); it != map_.end()) Remove(it->second);
  info->cached = true;
  ++info->refs;
  map_.emplace(std::string_view(info->key), info);
  lru_.PushBack(&info->lru);
  content_bytes_ += info->content.size();
  EvictToFit();
  UpdateSizeMetrics();
}

void FileCache::UpdateSizeMetrics() {
  worker_->metrics().file_cache_entries.Set(map_.size());
  worker_->metrics().file_cache_content_bytes.Set(content_bytes_);
}

void FileCache::EvictToFit() {
  // Each pass over the list clears every `referenced`, so this ends within
  // two passes even when every entry was hit.
  while (!lru_.empty() && (map_.size() > entries_max_ || content_bytes_ > content_bytes_max_)) {
    auto* oldest = static_cast<FileInfo*>(lru_.front()->owner);
    if (oldest->referenced) {
      oldest->referenced = false;
      lru_.Remove(&oldest->lru);
      lru_.PushBack(&oldest->lru);
      continue;
    }
    Remove(oldest);
    worker_->metrics().file_cache_evictions_total.Add();
  }
}

void FileCache::Remove(FileInfo* info) {
  map_.erase(std::string_view(info->key));
  lru_.Remove(&info->lru);
  content_bytes_ -= info->content.size();
  info->cached = false;
  UpdateSizeMetrics();
  Unref(info);
}

void FileCache::Release(FileInfo* info) {
  if (info != nullptr) Unref(info);
}

void FileCache::Unref(FileInfo* info) {
  if (--info->refs > 0) return;
  if (info->fd >= 0) worker_->CloseLater(info->fd);
  delete info;
}

void FileCache::Clear() {
  while (!lru_.empty()) Remove(static_cast<FileInfo*>(lru_.front()->owner));
}

}  // namespace sluice
