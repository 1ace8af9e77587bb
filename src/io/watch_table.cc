#include "sluice/io/watch_table.h"

namespace sluice {

bool KeyIsAtOrBelow(std::string_view key, std::string_view dir) {
  if (dir.empty()) return true;
  if (key.size() < dir.size() || key.substr(0, dir.size()) != dir) return false;
  return key.size() == dir.size() || key[dir.size()] == '/';
}

int WatchTable::Acquire(const std::string& key) {
  Key& k = keys_[key];
  ++k.holds;
  if (k.wd >= 0) return k.wd;
  const int wd = add_(key);
  if (wd < 0) return wd;
  k.wd = wd;
  keys_by_wd_[wd].insert(key);
  return wd;
}

void WatchTable::Unbind(const std::string& key, Key* k) {
  if (k->wd < 0) return;
  auto it = keys_by_wd_.find(k->wd);
  if (it != keys_by_wd_.end()) {
    it->second.erase(key);
    if (it->second.empty()) {
      const int wd = k->wd;
      keys_by_wd_.erase(it);
      remove_(wd);
    }
  }
  k->wd = -1;
}

void WatchTable::Release(std::string_view key) {
  auto it = keys_.find(absl::string_view(key.data(), key.size()));
  if (it == keys_.end()) return;
  if (--it->second.holds > 0) return;
  Unbind(it->first, &it->second);
  keys_.erase(it);
}

void WatchTable::Forget(std::string_view key, bool strictly_below) {
  for (auto& [name, k] : keys_) {
    if (k.wd < 0 || !KeyIsAtOrBelow(name, key)) continue;
    if (strictly_below && name.size() == key.size()) continue;
    // Keys of the root's path (NUL-prefixed) are never below a directory
    // key, except below "": those are not ours to forget.
    if (!name.empty() && name[0] == '\0') continue;
    Unbind(name, &k);
  }
}

void WatchTable::Reset() {
  for (const auto& [wd, keys] : keys_by_wd_) remove_(wd);
  keys_by_wd_.clear();
  keys_.clear();
  ++generation_;
}

std::vector<std::string> WatchTable::KeysOf(int wd) const {
  auto it = keys_by_wd_.find(wd);
  if (it == keys_by_wd_.end()) return {};
  return std::vector<std::string>(it->second.begin(), it->second.end());
}

int WatchTable::WatchOf(std::string_view key) const {
  auto it = keys_.find(absl::string_view(key.data(), key.size()));
  return it == keys_.end() ? -1 : it->second.wd;
}

void WatchTable::OnWatchGone(int wd) {
  auto it = keys_by_wd_.find(wd);
  if (it == keys_by_wd_.end()) return;
  for (const std::string& key : it->second) {
    if (auto k = keys_.find(key); k != keys_.end()) k->second.wd = -1;
  }
  keys_by_wd_.erase(it);
}

}  // namespace sluice
