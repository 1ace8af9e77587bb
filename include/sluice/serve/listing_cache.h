// Per-worker cache of directory listings (--directory_listing), keyed by the
// directory's path relative to the root ("" = the root), bounded in bytes.
//
// Freshness, with the open-file cache's inotify (FileCache::WatchDirectory
// and its invalidation listener): the directory and every directory above
// it are watched BEFORE its read is submitted, and a listing is dropped when
// an event concerns a name in it (added, removed, renamed, its bytes or
// attributes changed), the directory itself or a directory above it, on
// inotify overflow and when the document root changes. A read that raced an
// event (the file cache's epoch moved, or the root generation changed) is
// served to the request that asked but never cached. While events are
// pending the cache is bypassed, as the file cache is. What inotify cannot
// see (a subdirectory's own mtime, network filesystems) is bounded by
// --file_cache_valid.
// Owned and touched by one worker thread.
#ifndef SLUICE_SERVE_LISTING_CACHE_H_
#define SLUICE_SERVE_LISTING_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "sluice/serve/directory_listing.h"
#include "sluice/serve/file_cache.h"
#include "sluice/serve/metrics.h"

namespace sluice {

class DocumentRoot;

class ListingCache {
 public:
  // What a read of one directory holds from before it is submitted until
  // its result is offered (or the read is abandoned).
  struct Read {
    std::string key;
    uint64_t epoch = 0;
    uint64_t root_id = 0;
    FileCache::DirectoryWatch watch;
  };

  ListingCache(FileCache* files, DocumentRoot* root, WorkerMetrics* metrics, size_t bytes_max,
               absl::Duration valid);
  ~ListingCache();
  ListingCache(const ListingCache&) = delete;
  ListingCache& operator=(const ListingCache&) = delete;

  // A fresh listing of `key`, or null.
  std::shared_ptr<const Listing> Find(std::string_view key, int64_t now_ns);
  // Before a read of `key` is submitted: watches it.
  void BeginRead(std::string_view key, Read* read);
  // The read's result: cached when nothing changed meanwhile and it fits.
  void EndRead(Read* read, std::shared_ptr<const Listing> listing, int64_t now_ns);
  // The read will not finish (its job was dropped): lets go of its watches.
  void AbandonRead(Read* read);

  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const Listing> listing;
    size_t bytes = 0;
    int64_t loaded_ns = 0;
    FileCache::DirectoryWatch watch;
    std::list<Entry*>::iterator lru;  // Most recently used at the front.
  };
  void OnInvalidate(std::string_view key, bool below);
  void Remove(Entry* e);
  void UpdateMetrics();

  FileCache* const files_;
  DocumentRoot* const root_;
  WorkerMetrics* const metrics_;
  const size_t bytes_max_;
  const int64_t valid_ns_;
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> map_;
  std::list<Entry*> lru_;
  size_t bytes_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_LISTING_CACHE_H_
