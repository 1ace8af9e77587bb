// The open-file cache's map between inotify watch descriptors and the keys
// (directories relative to the root, or the document root's path
// components) they stand for. Pure bookkeeping: adding and removing the
// kernel's watches is left to the two callbacks, so this is unit-tested
// without inotify. Owned and touched by one worker thread.
//
// Why both directions and reference counts:
// - one directory reached under several names (a symlink to it, or a bind
//   mount) gets one watch descriptor from the kernel; each name is its own
//   key, so an event on that descriptor concerns every one of them;
// - a key is held by every live cache entry below it; when the last one
//   goes, so does the key, and the watch when it has no key left, so the
//   number of watches is bounded by the directories entries really need;
// - after a rename (`mv css css.old && mv css.new css`) the old watch
//   follows the old directory: Forget() unbinds every key at or below a
//   name so that the next Acquire() watches what the name means now.
#ifndef SLUICE_IO_WATCH_TABLE_H_
#define SLUICE_IO_WATCH_TABLE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace sluice {

class WatchTable {
 public:
  // `add(key)` returns a watch descriptor (>= 0) or -errno; `remove(wd)`
  // drops one the table no longer needs.
  using AddFn = std::function<int(const std::string& key)>;
  using RemoveFn = std::function<void(int wd)>;
  WatchTable(AddFn add, RemoveFn remove) : add_(std::move(add)), remove_(std::move(remove)) {}

  // One more holder of `key`; watches it if it is not bound. Returns the
  // watch descriptor, or -errno when the kernel refused (the hold counts
  // anyway, so Release() pairs with every Acquire()).
  int Acquire(const std::string& key);
  // One holder less; at zero the key goes, and its watch with its last key.
  void Release(std::string_view key);
  // Unbinds `key` and every key below it (`key/...`; "" is everything), or
  // only those below it, from their watches, keeping the holds: the name
  // now means another directory.
  void Forget(std::string_view key, bool strictly_below = false);
  // Drops every key and watch (inotify overflow, a new document root).
  // Holds taken before are void: Release() of an unknown key is a no-op,
  // and generation() changes so holders can tell.
  void Reset();

  // Keys bound to `wd` (empty when unknown).
  std::vector<std::string> KeysOf(int wd) const;
  // The watch of `key`, or -1.
  int WatchOf(std::string_view key) const;
  // The kernel removed `wd` (IN_IGNORED): unbind its keys, no remove call.
  void OnWatchGone(int wd);
  size_t watch_count() const { return keys_by_wd_.size(); }
  size_t key_count() const { return keys_.size(); }
  uint64_t generation() const { return generation_; }

 private:
  struct Key {
    int wd = -1;  // -1: not bound (refused, or forgotten after a rename).
    uint32_t holds = 0;
  };
  void Unbind(const std::string& key, Key* k);

  AddFn add_;
  RemoveFn remove_;
  absl::flat_hash_map<std::string, Key> keys_;
  absl::flat_hash_map<int, absl::flat_hash_set<std::string>> keys_by_wd_;
  uint64_t generation_ = 0;
};

// True when `key` is `dir` or lies below it ("" is the root: everything).
bool KeyIsAtOrBelow(std::string_view key, std::string_view dir);

}  // namespace sluice

#endif  // SLUICE_IO_WATCH_TABLE_H_
