// Per-worker open-file cache: what resolving a path beneath the root gave
// (an error, a directory, or a regular file with its descriptor, metadata,
// precomputed validators and, for small files, the whole content).
//
// Freshness contract: after a change to a cached name completes (a write in
// place, a rename over it, a rename of a directory or a swap of a symlink on
// its path, the ConfigMap `..data` swap), the next request that starts gets
// the new content. How:
// - every directory on an entry's path is watched (inotify, polled through
//   the ring) BEFORE its load is issued, through the root's current descriptor
//   (/proc/self/fd/N/dir), following symlinks, so edits inside a symlinked
//   directory are seen; an event for name N in directory D drops D/N and,
//   unless it only touched N's bytes, everything below D/N;
// - the poll on the inotify descriptor completes before the request's own
//   receive (its wake-up is ordered with the sockets'), and its handler
//   reads and applies the events right away, so an event queued before a
//   request was sent never reaches a load that request began (a flood read
//   over several wake-ups bypasses the cache until the last is applied);
// - a load that raced an event is never published (the epoch moves
//   whenever events are applied, and the entry's own `stale` flag is set
//   by them);
// - inotify overflow drops every entry and every watch (re-added lazily),
//   and makes the document root check itself;
// - a new document root (DocumentRoot) empties the cache.
// What inotify cannot see (writes through mmap, network filesystems) is
// bounded by `valid`; entries dropped for it are counted (expired_total).
// Watches are reference-counted by the live entries below them (WatchTable):
// the watch count is bounded by the directories cached entries need.
// Bounded by entry count and content bytes, evicting with CLOCK (second
// chance): the oldest entry not used since it was last passed over. An entry
// in use by a connection is pinned (refs > 0) and freed only when released.
// Owned and touched by one worker thread.
#ifndef SLUICE_SERVE_FILE_CACHE_H_
#define SLUICE_SERVE_FILE_CACHE_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "sluice/http/http_date.h"
#include "sluice/io/loop.h"
#include "sluice/io/operation.h"
#include "sluice/io/timer_wheel.h"
#include "sluice/io/watch_table.h"
#include "sluice/serve/metrics.h"

namespace sluice {

class DocumentRoot;
struct RootGeneration;

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
  // A read-only shared mapping of the whole file that nothing ever reads
  // through: mincore() asks it whether a chunk's pages are in the page
  // cache and up to date, in which case a splice from them cannot wait for
  // storage. Null when not mapped (files kept in `content`, empty files,
  // FileCache's cap on mappings reached, mmap refused).
  void* map = nullptr;
  size_t map_len = 0;
  // statx's stx_mnt_id; 0 when the kernel did not report it.
  uint32_t mnt_id = 0;
  // The representation's fields of a whole-file 200 in its own coding
  // (Last-Modified through Content-Length), rendered on first use: the same
  // for every such response while this entry lives.
  std::string full_fields;

  // Stale: set when inotify reports, after this entry's load was issued,
  // anything that may make it a wrong answer for its key: a write to its
  // file (IN_MODIFY, IN_CLOSE_WRITE), a change of its attributes (IN_ATTRIB),
  // or the deletion, rename or replacement of its name or of a directory on
  // its path. Such an entry is never cached. Only goes from false to true.
  bool stale = false;
  // Changed-while-sending: set with `stale` for a write to the file itself
  // (IN_MODIFY, which a truncation raises too, or IN_CLOSE_WRITE). Kept up
  // to date for as long as anyone holds the entry, cached or not (the cache
  // indexes every live entry by key), so a connection sending it can test
  // it between chunks and end the response short instead of mixing old and
  // new bytes. Not set when only names change (a rename over it, an unlink,
  // a directory or symlink swapped on its path): the descriptor still reads
  // the inode it opened, whole and unchanged, as nginx's sendfile would.
  // Not set on inotify overflow (nothing is known then; the cache is emptied
  // instead) nor when the document root changes (this file did not). Only
  // ever goes from false to true.
  bool changed = false;

  // Bookkeeping.
  std::string key;  // Path relative to the root.
  // The root generation OPENAT2 ran against (held while this lives).
  RootGeneration* root = nullptr;
  int64_t loaded_ns = 0;
  uint64_t epoch = 0;       // FileCache's epoch when loading began.
  uint32_t refs = 0;        // Holders: connections, and the cache itself while cached.
  bool cached = false;      // In the map.
  bool referenced = false;  // Hit since eviction last passed over it (CLOCK).
  // Directories on the path held in the watch table: the first
  // `watch_depth` of "", "a", "a/b" for "a/b/c", in generation
  // `watch_generation` of the table.
  uint16_t watch_depth = 0;
  bool watched = false;  // Every existing directory on the path is watched.
  uint64_t watch_generation = 0;
  ListNode clock_node;  // In FileCache::clock_ while cached.

  bool is_regular() const { return error == 0 && S_ISREG(mode); }
  // True when every page of [offset, offset + len) is in the page cache and
  // up to date (mincore() through `map`); false when unknown: not mapped,
  // beyond the mapping, or a range longer than kResidentBytesMax.
  bool Resident(uint64_t offset, size_t len) const;
  static constexpr size_t kResidentBytesMax = size_t{1} << 20;
  bool is_directory() const { return error == 0 && S_ISDIR(mode); }
  // Fills the derived fields (etag, last_modified) from the metadata.
  void Derive();
};

class FileCache final : public CompletionHandler {
 public:
  FileCache(Loop* loop, WorkerMetrics* metrics, size_t entries_max, size_t content_bytes_max,
            absl::Duration valid, DocumentRoot* root);
  ~FileCache();
  FileCache(const FileCache&) = delete;
  FileCache& operator=(const FileCache&) = delete;

  // Starts watching (the inotify POLL_ADD goes through the worker's ring). The
  // inotify descriptor exists even with the cache off: the document root
  // watches its path through it.
  void Start();
  bool enabled() const { return entries_max_ > 0; }

  // A fresh cached entry for `key`, pinned for the caller, or null.
  FileInfo* Find(std::string_view key, int64_t now_ns);
  // A new entry for the caller to fill (pinned once, not cached yet). The
  // directories on its path are watched from here on, before the load.
  FileInfo* Create(std::string_view key, int64_t now_ns);
  // Maps a filled regular file for Resident(), within a cap on mappings
  // per cache (each is a kernel VMA; the process has vm.max_map_count).
  void Map(FileInfo* info);
  // Offers a filled entry to the cache (it stays pinned for the caller).
  void Publish(FileInfo* info);
  // The caller is done with `info`.
  void Release(FileInfo* info);
  // Drops every entry.
  void Clear();
  // The document root is another directory now: drop entries and watches.
  void OnRootChanged();
  // The document root's path: watch these directories (absolute, resolved)
  // for it, instead of those given before.
  void WatchRootDirectories(const std::vector<std::string>& dirs);
  size_t watch_count() const { return watches_.watch_count(); }

  // For caches of what a directory holds (directory listings, ListingCache):
  // the directory `key` ("" = the root) and every directory above it are
  // watched through the same inotify descriptor; `listener` hears of every
  // key an event makes wrong (with `below`: everything under it too), and
  // of ("", true) when everything is dropped (overflow, a new root).
  struct DirectoryWatch {
    uint16_t depth = 0;  // Directories held: "", then down to `key`.
    uint64_t generation = 0;
    bool watched = false;  // Every one of them is watched: changes are reported.
  };
  void WatchDirectory(std::string_view key, DirectoryWatch* w);
  void UnwatchDirectory(std::string_view key, DirectoryWatch* w);
  void set_invalidation_listener(std::function<void(std::string_view key, bool below)> listener) {
    listener_ = std::move(listener);
  }
  // Moves whenever changes are reported or applied: a read that began
  // before a move may have seen the old state.
  uint64_t epoch() const { return epoch_; }
  uint64_t watch_generation() const { return watches_.generation(); }

  // The inotify poll and read complete here.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept override;
  void StopWatching();
  // Nothing of this cache is in the kernel (after StopWatching).
  bool idle_in_kernel() const { return !inotify_poll_op_.in_flight; }
  // Events are queued that are not applied yet (a flood, read over several
  // wake-ups): what changed is not known.
  bool events_pending() const { return events_pending_; }

 private:
  void Remove(FileInfo* info);
  void Unref(FileInfo* info);
  void EvictToFit();
  void UpdateSizeMetrics();
  void WatchPathOf(FileInfo* info);
  void UnwatchPathOf(FileInfo* info);
  int AddWatch(const std::string& key);
  // False when `wd` is no watch of ours any more (the IN_IGNORED of a
  // watch we removed): the event concerns nothing cached or loading.
  bool ApplyEvent(int wd, uint32_t mask, std::string_view name);
  // Marks live entries for `key` (and, with `below`, under it) stale, and
  // changed too when `bytes_changed`, and drops them from the cache.
  void Invalidate(std::string_view key, bool below, bool bytes_changed);
  // Events were lost: counted, and every entry and watch dropped.
  void DropEverything();
  // POLLIN on the inotify descriptor: something changed. Its completion
  // reads the events and applies them at once.
  void SubmitInotifyPoll();
  void OnInotifyPoll(int res);
  // The events read into inotify_buf_; false when none concerned a watch
  // still bound.
  bool ApplyEvents(size_t bytes);

  Loop* const loop_;
  WorkerMetrics* const metrics_;
  bool stopping_ = false;  // StopWatching() was called: nothing is re-armed.
  size_t entries_max_;
  size_t content_bytes_max_;
  int64_t valid_ns_;
  DocumentRoot* root_;
  // Keys point into FileInfo::key. Open addressing: a lookup costs one
  // probe of the control bytes and one slot, not a bucket-to-node chain.
  absl::flat_hash_map<std::string_view, FileInfo*> map_;
  // Insertion order with a second chance ("CLOCK"): a hit only sets
  // `referenced`, and eviction moves referenced entries to the back
  // instead of dropping them. A hit then writes nothing but its own entry,
  // where a strict LRU move would touch two unrelated entries' list links.
  IntrusiveList clock_;
  size_t content_bytes_ = 0;
  size_t maps_ = 0;  // Entries with a mapping, cached or not.
  static constexpr size_t kMapsMax = 1024;
  // What UpdateSizeMetrics last added to the worker's gauges.
  size_t reported_entries_ = 0;
  size_t reported_content_bytes_ = 0;

  int inotify_fd_ = -1;
  // Every entry alive (cached, loading, or held by a connection) by key:
  // what an event must mark `stale` or `changed`.
  absl::flat_hash_map<std::string, std::vector<FileInfo*>> live_;
  // Directory keys ("" = the root) and the root's path directories (as
  // kRootKeyPrefix + absolute path) ↔ watch descriptors.
  WatchTable watches_;
  std::vector<std::string> root_dirs_;  // Held in watches_ for the root.
  uint64_t root_dirs_generation_ = 0;
  // The poll tells us at once (its wakeup is ordered with the sockets'),
  // and a read on the worker, inline, tells us what.
  Operation inotify_poll_op_;
  // More events were queued than one wake-up reads (kInotifyReadsPerWake).
  bool events_pending_ = false;
  uint64_t epoch_ = 0;  // Bumped whenever changes are reported.
  std::unique_ptr<char[]> inotify_buf_;
  std::function<void(std::string_view, bool)> listener_;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_FILE_CACHE_H_
