// The document root as a path that is followed, not a directory opened once:
// a deploy that swaps a symlink anywhere on the root's path (Capistrano's
// `current`, Kubernetes' `..data`), or deletes and recreates the root, takes
// effect for the next request, as with nginx, which resolves its root per
// request.
//
// Each worker keeps the root's current generation: an O_PATH descriptor, the
// directory's identity (device, inode) and a number. OPENAT2 of a request
// runs relative to a generation's descriptor with RESOLVE_BENEATH (the
// kernel's containment), and holds the generation until its FileInfo dies:
// io_uring resolves the dirfd when the operation executes, possibly later
// in io-wq, so an old descriptor is closed only when nothing uses it.
//
// Change detection (never a blocking call on the data path):
// - inotify, through the file cache's descriptor (read through the ring):
//   the directory holding each component of the path, symlinks expanded
//   (RootWatchPoints), is watched for that component's name;
// - every worker tick (250 ms) one STATX of the path through the ring
//   compares the directory's identity (a backstop for what inotify misses:
//   network filesystems, a rename of a directory higher up than we watch).
// On a change: OPENAT(AT_FDCWD, path, O_PATH|O_DIRECTORY) and STATX through
// the ring. Requests that start meanwhile wait (a waiter list), so the next
// request that starts after a change completes sees the new root.
// Owned and touched by one worker thread.
#ifndef SLUICE_SERVE_DOCUMENT_ROOT_H_
#define SLUICE_SERVE_DOCUMENT_ROOT_H_

#include <linux/stat.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "sluice/io/loop.h"
#include "sluice/io/operation.h"

namespace sluice {

class Connection;
class FileCache;

// One resolution of the root path. Counted: the DocumentRoot holds the
// current one, and every FileInfo whose OPENAT2 used it holds it too.
struct RootGeneration {
  int fd = -1;  // O_PATH|O_DIRECTORY.
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t id = 0;
  uint32_t refs = 0;
};

// A directory (fully resolved: no symlinks in it) and the name of a path
// component in it. A change of that name there can change the root.
struct WatchPoint {
  std::string dir;
  std::string name;
  bool operator==(const WatchPoint&) const = default;
};

// Walks the absolute `path` as the kernel would, expanding symlinks with
// `read_link` (the link's target, or nullopt when the path is not a symlink
// or does not exist), at most 40 of them (Linux's MAXSYMLINKS). Returns every
// component met, with the directory holding it, in order; the last one
// names the root itself. Pure: the caller supplies readlink.
std::vector<WatchPoint> RootWatchPoints(
    std::string_view path,
    const std::function<std::optional<std::string>(const std::string&)>& read_link);

// `path` made absolute against `cwd`, without resolving symlinks (they must
// stay on the path to be followed later).
std::string AbsoluteRootPath(std::string_view path, std::string_view cwd);

class DocumentRoot final : public CompletionHandler {
 public:
  // `fd`: the root opened at start-up (taken over); `path` absolute.
  DocumentRoot(Loop* loop, std::string path, int fd, uint64_t dev, uint64_t ino);
  ~DocumentRoot();
  DocumentRoot(const DocumentRoot&) = delete;
  DocumentRoot& operator=(const DocumentRoot&) = delete;

  // With the file cache's inotify (null: the tick alone): watch the path.
  void Start(FileCache* cache);

  // False while inotify events are being read (one may concern the root's
  // path) or a re-resolution is under way: new opens must Wait().
  bool ready() const { return !resolving_ && !events_pending_; }
  // `conn` resumes (Connection::ResumeOpen) once the root is resolved.
  void Wait(Connection* conn);
  // The current generation, held once more for the caller.
  RootGeneration* Acquire();
  void Release(RootGeneration* gen);
  uint64_t generation_id() const { return current_->id; }
  int current_fd() const { return current_->fd; }
  const std::string& path() const { return path_; }

  // From the file cache: an inotify event for a watch point directory.
  void OnWatchEvent(const std::string& dir, std::string_view name, uint32_t mask);
  // From the file cache: inotify lost events (overflow): check now.
  void OnEventsLost();
  // From the file cache: its inotify poll woke (events are being read), and
  // those events have been applied.
  void OnEventsPending(int64_t now_ns);
  void OnEventsApplied();
  // Every worker tick: the backstop check.
  void Tick(int64_t now_ns);
  // The worker drains, or a reload dropped this root: inotify is no longer
  // read and no check is started.
  void Stop();
  bool idle_in_kernel() const {
    return !open_op_.in_flight && !statx_op_.in_flight && !check_op_.in_flight;
  }

  // The re-resolution's OPENAT and STATX, the tick's STATX.
  void OnCompletion(Operation* op, int res, uint32_t cqe_flags) noexcept override;

 private:
  void OnOpen(int res);
  void OnStatx(int res);
  void OnCheck(int res);
  void StartResolve();
  void FinishResolve();
  void SubmitCheck();
  void RewatchPath();
  void ResumeWaiters();

  Loop* const loop_;
  const std::string path_;
  RootGeneration* current_;
  FileCache* cache_ = nullptr;
  bool stopping_ = false;

  // Re-resolution: OPENAT then STATX.
  bool events_pending_ = false;
  int64_t wait_started_ns_ = 0;  // When ready() last became false.
  bool resolving_ = false;
  bool again_ = false;  // Another change while resolving: resolve once more.
  int new_fd_ = -1;
  Operation open_op_;
  Operation statx_op_;
  struct statx stx_ = {};
  std::vector<std::pair<Connection*, uint32_t>> waiters_;  // With generation.
  std::vector<std::pair<Connection*, uint32_t>> resuming_;

  // The tick's STATX of the path.
  Operation check_op_;
  struct statx check_stx_ = {};

  // Watched directory → names of path components in it.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> points_;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_DOCUMENT_ROOT_H_
