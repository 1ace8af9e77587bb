#include "sluice/serve/listing_cache.h"

#include <utility>
#include <vector>

#include "sluice/io/watch_table.h"
#include "sluice/serve/document_root.h"

namespace sluice {
namespace {

// "a/b" for "a/b/c", "" for "c"; false for the root itself.
bool ParentOf(std::string_view key, std::string_view* parent) {
  if (key.empty()) return false;
  const size_t slash = key.rfind('/');
  *parent = slash == std::string_view::npos ? std::string_view() : key.substr(0, slash);
  return true;
}

}  // namespace

ListingCache::ListingCache(FileCache* files, DocumentRoot* root, WorkerMetrics* metrics,
                           size_t bytes_max, absl::Duration valid)
    : files_(files),
      root_(root),
      metrics_(metrics),
      bytes_max_(bytes_max),
      valid_ns_(absl::ToInt64Nanoseconds(valid)) {
  files_->set_invalidation_listener(
      [this](std::string_view key, bool below) { OnInvalidate(key, below); });
}

ListingCache::~ListingCache() {
  files_->set_invalidation_listener(nullptr);
  while (!lru_.empty()) Remove(lru_.back());
}

std::shared_ptr<const Listing> ListingCache::Find(std::string_view key, int64_t now_ns) {
  // Changes reported but not yet applied may concern this directory.
  if (files_->events_pending() || !root_->ready()) return nullptr;
  auto it = map_.find(absl::string_view(key.data(), key.size()));
  if (it == map_.end()) return nullptr;
  Entry* e = it->second.get();
  if (now_ns - e->loaded_ns > valid_ns_) {
    Remove(e);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, e->lru);
  metrics_->listing_cache_hits_total.Add();
  return e->listing;
}

void ListingCache::BeginRead(std::string_view key, Read* read) {
  read->key.assign(key);
  read->epoch = files_->epoch();
  read->root_id = root_->generation_id();
  files_->WatchDirectory(key, &read->watch);
}

void ListingCache::AbandonRead(Read* read) { files_->UnwatchDirectory(read->key, &read->watch); }

void ListingCache::EndRead(Read* read, std::shared_ptr<const Listing> listing, int64_t now_ns) {
  const size_t bytes = listing->bytes() + read->key.size() + sizeof(Entry);
  const bool fresh = read->watch.watched && read->watch.generation == files_->watch_generation() &&
                     read->epoch == files_->epoch() && !files_->events_pending() &&
                     read->root_id == root_->generation_id();
  if (!fresh || bytes > bytes_max_) {
    AbandonRead(read);
    return;
  }
  if (auto it = map_.find(read->key); it != map_.end()) Remove(it->second.get());
  auto entry = std::make_unique<Entry>();
  Entry* e = entry.get();
  e->key = read->key;
  e->listing = std::move(listing);
  e->bytes = bytes;
  e->loaded_ns = now_ns;
  e->watch = read->watch;  // The read's watches are the entry's now.
  read->watch.depth = 0;
  lru_.push_front(e);
  e->lru = lru_.begin();
  bytes_ += bytes;
  map_.emplace(e->key, std::move(entry));
  while (bytes_ > bytes_max_ && !lru_.empty()) Remove(lru_.back());
  UpdateMetrics();
}

void ListingCache::OnInvalidate(std::string_view key, bool below) {
  // A change to `key` changes its parent's listing (a name, a size or a
  // time in it) and, for a directory, its own; with `below`, every listing
  // under it.
  std::vector<Entry*> hit;
  std::string_view parent;
  const bool has_parent = ParentOf(key, &parent);
  for (const auto& [k, e] : map_) {
    if ((has_parent && k == parent) || k == key || (below && KeyIsAtOrBelow(k, key))) {
      hit.push_back(e.get());
    }
  }
  for (Entry* e : hit) Remove(e);
  if (!hit.empty()) UpdateMetrics();
}

void ListingCache::Remove(Entry* e) {
  files_->UnwatchDirectory(e->key, &e->watch);
  lru_.erase(e->lru);
  bytes_ -= e->bytes;
  map_.erase(map_.find(e->key));  // Frees `e`.
}

void ListingCache::UpdateMetrics() {
  metrics_->listing_cache_entries.Set(map_.size());
  metrics_->listing_cache_bytes.Set(bytes_);
}

}  // namespace sluice
