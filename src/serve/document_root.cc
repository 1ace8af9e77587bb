#include "sluice/serve/document_root.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <deque>

#include "absl/strings/str_cat.h"
#include "sluice/base/check.h"
#include "sluice/base/clock.h"
#include "sluice/base/log.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/file_cache.h"

namespace sluice {
namespace {

constexpr int kMaxSymlinks = 40;  // Linux's MAXSYMLINKS.
// Waiters are never held longer than this by a re-resolution stuck in io-wq
// (slow storage): they then proceed against the root we have.
constexpr int64_t kResolveWaitMaxNs = 1'000'000'000;

void SplitInto(std::string_view path, std::deque<std::string>* out, bool front) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    const size_t slash = path.find('/', i);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end > i) parts.emplace_back(path.substr(i, end - i));
    i = end + 1;
  }
  if (front) {
    out->insert(out->begin(), parts.begin(), parts.end());
  } else {
    out->insert(out->end(), parts.begin(), parts.end());
  }
}

std::string Join(const std::string& dir, const std::string& name) {
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir);
  if (out.empty() || out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

std::string Parent(const std::string& dir) {
  const size_t slash = dir.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
}

}  // namespace

std::vector<WatchPoint> RootWatchPoints(
    std::string_view path,
    const std::function<std::optional<std::string>(const std::string&)>& read_link) {
  std::vector<WatchPoint> points;
  std::deque<std::string> rest;
  SplitInto(path, &rest, /*front=*/false);
  std::string dir = "/";
  int links = 0;
  while (!rest.empty()) {
    std::string name = std::move(rest.front());
    rest.pop_front();
    if (name == ".") continue;
    if (name == "..") {
      dir = Parent(dir);  // `dir` holds no symlink: ".." is lexical here.
      continue;
    }
    points.push_back({dir, name});
    const std::string next = Join(dir, name);
    std::optional<std::string> target;
    if (links < kMaxSymlinks) target = read_link(next);
    if (!target.has_value()) {
      dir = next;
      continue;
    }
    ++links;
    if (!target->empty() && (*target)[0] == '/')
      dir.assign(1, '/');  // GCC 12 -Wrestrict misfires on = "/".
    SplitInto(*target, &rest, /*front=*/true);
  }
  return points;
}

std::string AbsoluteRootPath(std::string_view path, std::string_view cwd) {
  if (!path.empty() && path[0] == '/') return std::string(path);
  std::string out(cwd);
  if (out.empty() || out.back() != '/') out.push_back('/');
  out.append(path);
  return out;
}

DocumentRoot::DocumentRoot(Loop* loop, std::string path, int fd, uint64_t dev, uint64_t ino)
    : loop_(loop), path_(std::move(path)) {
  current_ = new RootGeneration{fd, dev, ino, /*id=*/1, /*refs=*/1};
  for (Operation* op : {&open_op_, &statx_op_, &check_op_}) op->owner = this;
}

DocumentRoot::~DocumentRoot() {
  // Teardown: every FileInfo is gone by now (the cache goes first).
  Release(current_);
  if (new_fd_ >= 0) close(new_fd_);
}

void DocumentRoot::Start(FileCache* cache) {
  cache_ = cache;
  RewatchPath();
}

RootGeneration* DocumentRoot::Acquire() {
  ++current_->refs;
  return current_;
}

void DocumentRoot::Release(RootGeneration* gen) {
  if (gen == nullptr || --gen->refs > 0) return;
  loop_->CloseLater(gen->fd);
  delete gen;
}

void DocumentRoot::Wait(Connection* conn) { waiters_.emplace_back(conn, conn->generation()); }

void DocumentRoot::RewatchPath() {
  if (cache_ == nullptr) return;
  // readlink() of the path's components: syscalls on the worker thread, but
  // only at start-up and after the root changed (a deploy), never per request.
  // io_uring has no READLINK.
  const std::vector<WatchPoint> points =
      RootWatchPoints(path_, [](const std::string& p) -> std::optional<std::string> {
        char buf[PATH_MAX];
        const ssize_t n = readlink(p.c_str(), buf, sizeof(buf));
        if (n < 0) return std::nullopt;
        return std::string(buf, static_cast<size_t>(n));
      });
  points_.clear();
  std::vector<std::string> dirs;
  for (const WatchPoint& p : points) {
    auto [it, fresh] = points_.try_emplace(p.dir);
    it->second.insert(p.name);
    if (fresh) dirs.push_back(p.dir);
  }
  cache_->WatchRootDirectories(dirs);
}

void DocumentRoot::OnWatchEvent(const std::string& dir, std::string_view name, uint32_t mask) {
  auto it = points_.find(dir);
  if (it == points_.end()) return;
  const bool self = (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0;
  if (self || it->second.contains(absl::string_view(name.data(), name.size()))) StartResolve();
}

void DocumentRoot::Stop() {
  stopping_ = true;
  events_pending_ = false;
  if (!resolving_) ResumeWaiters();
}

void DocumentRoot::OnEventsLost() { StartResolve(); }

void DocumentRoot::OnEventsPending(int64_t now_ns) {
  if (ready()) wait_started_ns_ = now_ns;
  events_pending_ = true;
}

void DocumentRoot::OnEventsApplied() {
  events_pending_ = false;
  // A root event among them started a re-resolution, which resumes them.
  if (!resolving_) ResumeWaiters();
}

void DocumentRoot::StartResolve() {
  if (stopping_) return;
  if (resolving_) {
    again_ = true;
    return;
  }
  if (ready()) wait_started_ns_ = loop_->now_ns();
  resolving_ = true;
  again_ = false;
  io_uring_sqe* sqe = loop_->Arm(&open_op_, OpKind::kRootOpen);
  io_uring_prep_openat(sqe, AT_FDCWD, path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
}

void DocumentRoot::OnCompletion(Operation* op, int res, uint32_t /*cqe_flags*/) noexcept {
  if (op == &open_op_) {
    OnOpen(res);
  } else if (op == &statx_op_) {
    OnStatx(res);
  } else {
    SLUICE_CHECK(op == &check_op_, "the document root completes only its own operations");
    OnCheck(res);
  }
}

void DocumentRoot::OnOpen(int res) {
  if (res < 0) {
    // Gone (between a delete and its re-creation) or unreadable: keep the
    // root we have; a deleted directory answers 404, as nginx would. The
    // watches and the tick notice when it comes back.
    FinishResolve();
    return;
  }
  new_fd_ = res;
  io_uring_sqe* sqe = loop_->Arm(&statx_op_, OpKind::kRootStatx);
  io_uring_prep_statx(sqe, new_fd_, "", AT_EMPTY_PATH, STATX_INO, &stx_);
}

void DocumentRoot::OnStatx(int res) {
  const int fd = new_fd_;
  new_fd_ = -1;
  const uint64_t dev = makedev(stx_.stx_dev_major, stx_.stx_dev_minor);
  if (res < 0 || (dev == current_->dev && stx_.stx_ino == current_->ino)) {
    loop_->CloseLater(fd);  // The same directory: nothing changes.
  } else {
    auto* gen = new RootGeneration{fd, dev, stx_.stx_ino, current_->id + 1, /*refs=*/1};
    RootGeneration* old = current_;
    current_ = gen;
    Release(old);  // Closed once the last OPENAT2 against it is done.
    LogInfo(absl::StrCat("document root ", path_, " is another directory now (generation ", gen->id,
                         ")"));
    if (cache_ != nullptr) cache_->OnRootChanged();
  }
  FinishResolve();
}

void DocumentRoot::FinishResolve() {
  resolving_ = false;
  // The path's symlinks may point elsewhere now: watch what they mean now.
  RewatchPath();
  if (again_ && !stopping_) {
    StartResolve();
    return;
  }
  if (!events_pending_) ResumeWaiters();
}

void DocumentRoot::ResumeWaiters() {
  resuming_.swap(waiters_);
  for (const auto& [conn, generation] : resuming_) {
    if (conn->generation() == generation) conn->ResumeOpen();
  }
  resuming_.clear();
}

void DocumentRoot::Tick(int64_t now_ns) {
  if (!ready()) {
    if (now_ns - wait_started_ns_ > kResolveWaitMaxNs) ResumeWaiters();
    return;
  }
  if (!stopping_ && !check_op_.in_flight) SubmitCheck();
}

void DocumentRoot::SubmitCheck() {
  // One STATX of the path per tick and worker: a walk of its components
  // (dentry-cache hits), through the ring so the worker never blocks.
  io_uring_sqe* sqe = loop_->Arm(&check_op_, OpKind::kRootCheck);
  io_uring_prep_statx(sqe, AT_FDCWD, path_.c_str(), 0, STATX_INO, &check_stx_);
}

void DocumentRoot::OnCheck(int res) {
  if (stopping_ || res < 0) return;  // Missing: keep the root we have.
  const uint64_t dev = makedev(check_stx_.stx_dev_major, check_stx_.stx_dev_minor);
  if (dev != current_->dev || check_stx_.stx_ino != current_->ino) StartResolve();
}

}  // namespace sluice
