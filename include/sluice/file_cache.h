// Per-worker open-file cache: what resolving a path beneath the root gave
// (an error, a directory, or a regular file with its descriptor, metadata,
// precomputed validators and, for small files, the whole content).
//
// Freshness: entries are dropped when inotify reports a change in their
// directory (the inotify descriptor is read through the ring), and in any
// case after `valid` (a backstop for changes inotify cannot see, such as
// writes through mmap or on network filesystems). Bounded by entry count
// and content bytes, evicting with CLOCK (second chance): the oldest entry
// not used since it was last passed over. An entry in use by a
// connection is pinned (refs > 0) and freed only when released.
// Owned and touched by one worker thread.
#ifndef SLUICE_FILE_CACHE_H_
#define SLUICE_FILE_CACHE_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "sluice/http_date.h"
#include "sluice/operation.h"
#include "sluice/timer_wheel.h"

namespace sluice {

class Worker;

struct FileInfo {
  FileInfo() = default;
  FileInfo(const FileInfo&) = delete;
  FileInfo& operator=(const FileInfo&) = delete;

  int error = 0;  // errno of OPENAT2/STATX; 0 when the path resolved.
  mode_t mode = 0;
  int fd = -1;  // Open regular file (-1 when only `content` is kept).
  uint64_t size = 0;
  uint64_t inode = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  std::string etag;  // Quoted strong validator.
  char last_modified[kHttpDateLength] = {};
  std::string content;  // The whole file, when has_content.
  bool has_content = false;
  // Set when the file behind this entry was written, truncated, replaced or
  // removed after it was loaded, whether or not the entry is still cached:
  // a response splicing from `fd` must not pass such bytes off as whole.
  bool changed = false;
  // The representation's fields of a whole-file 200 in its own coding
  // (Last-Modified through Content-Length), rendered on first use: the same
  // for every such response while this entry lives.
  std::string full_fields;

  // Bookkeeping.
  std::string key;  // Path relative to the root.
  int64_t loaded_ns = 0;
  uint64_t epoch = 0;       // FileCache's epoch when loading began.
  uint32_t refs = 0;        // Holders: connections, and the cache itself while cached.
  bool cached = false;      // In the map.
  bool referenced = false;  // Hit since eviction last passed over it (CLOCK).
  int watch = -1;           // inotify watch of the directory.
  ListNode lru;

  bool is_regular() const { return error == 0 && S_ISREG(mode); }
  bool is_directory() const { return error == 0 && S_ISDIR(mode); }
  // Fills the derived fields (etag, last_modified) from the metadata.
  void Derive();
};

class FileCache {
 public:
  FileCache(Worker* worker, size_t entries_max, size_t content_bytes_max, absl::Duration valid,
            std::string root_path);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // Starts watching (the inotify READ goes through the worker's ring).
  void Start();
  bool enabled() const { return entries_max_ > 0; }

  // A fresh cached entry for `key`, pinned for the caller, or null.
  FileInfo* Find(std::string_view key, int64_t now_ns);
  // A new entry for the caller to fill (pinned once, not cached yet).
  FileInfo* Create(std::string_view key, int64_t now_ns);
  // Offers a filled entry to the cache (it stays pinned for the caller).
  void Publish(FileInfo* info);
  // The caller is done with `info`.
  void Release(FileInfo* info);
  // Drops every entry (inotify overflow).
  void Clear();

  // POLLIN on the inotify descriptor: something changed. Until the events
  // are read and applied, the cache is bypassed.
  void OnInotifyPoll(int res);
  void OnInotify(int res);
  void StopWatching();

 private:
  void Remove(FileInfo* info);
  void Unref(FileInfo* info);
  void EvictToFit();
  void UpdateSizeMetrics();
  int WatchDirectoryOf(std::string_view key);
  void SubmitInotifyRead();
  void SubmitInotifyPoll();

  Worker* worker_;
  size_t entries_max_;
  size_t content_bytes_max_;
  int64_t valid_ns_;
  std::string root_path_;
  // Keys point into FileInfo::key. Open addressing: a lookup costs one
  // probe of the control bytes and one slot, not a bucket-to-node chain.
  absl::flat_hash_map<std::string_view, FileInfo*> map_;
  // Insertion order with a second chance ("CLOCK"): a hit only sets
  // `referenced`, and eviction moves referenced entries to the back
  // instead of dropping them. A hit then writes nothing but its own entry,
  // where a strict LRU move would touch two unrelated entries' list links.
  IntrusiveList lru_;
  size_t content_bytes_ = 0;

  int inotify_fd_ = -1;
  std::unordered_map<int, std::string> watched_dirs_;  // wd → directory key ("" = root).
  std::unordered_map<std::string, int> dir_watches_;   // directory key → wd.
  // The poll tells us at once (its wakeup is ordered with the sockets'),
  // the read (which io_uring runs in io-wq for inotify) tells us what.
  Operation inotify_poll_op_;
  Operation inotify_op_;
  bool events_pending_ = false;
  uint64_t epoch_ = 0;  // Bumped whenever changes are reported.
  std::unique_ptr<char[]> inotify_buf_;
};

}  // namespace sluice

#endif  // SLUICE_FILE_CACHE_H_
