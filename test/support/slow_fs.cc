#include "support/slow_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/server_process.h"
#include "support/test_root.h"

namespace sluice::test {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kFusermount = "/usr/bin/fusermount3";

std::string SlowFsScript() { return std::string(SLUICE_SOURCE_DIR) + "/test/support/slowfs.py"; }

std::string ErrnoText(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WriteText(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  return static_cast<bool>(out);
}

int RemoveEntry(const char* path, const struct stat* /*st*/, int type, FTW* /*ftw*/) {
  if (type == FTW_DP) return rmdir(path) == 0 ? 0 : -1;
  return unlink(path) == 0 ? 0 : -1;
}

// Removes `path` recursively, never following symlinks and never crossing
// into another file system (a mount that could not be removed stays put).
bool RemoveTree(const std::string& path) {
  return nftw(path.c_str(), RemoveEntry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0;
}

}  // namespace

std::optional<std::string> SlowFs::Unavailable() {
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse: " + ErrnoText(errno);
  if (geteuid() != 0) return std::string("mounting FUSE here needs root");
  if (access(kFusermount, X_OK) != 0) {
    return std::string(kFusermount) + " missing (Debian package fuse3)";
  }
  // Importing fusepy also loads libfuse.so.2 (Debian package libfuse2).
  const ProcessResult probe =
      RunProcess({kPython, "-c", "import fusepy"}, std::chrono::seconds(20));
  if (!probe.ExitedWithCode(0)) {
    return std::string(kPython) +
           " cannot import fusepy (Debian packages python3-fusepy, libfuse2): " + probe.Describe();
  }
  return std::nullopt;
}

SlowFs::~SlowFs() { Unmount(); }

bool SlowFs::Mount(milliseconds timeout) {
  char tmpl[] = "/tmp/sluice-slowfs-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp: " + ErrnoText(errno);
    return false;
  }
  base_ = tmpl;
  backing_path_ = base_ + "/backing";
  mount_path_ = base_ + "/mnt";
  control_path_ = base_ + "/control";
  for (const std::string* dir : {&backing_path_, &mount_path_, &control_path_}) {
    if (mkdir(dir->c_str(), 0755) != 0) {
      error_ = "mkdir " + *dir + ": " + ErrnoText(errno);
      return false;
    }
  }
  const std::string script = SlowFsScript();
  const std::string stderr_path = control_path_ + "/stderr";
  const int err_fd = open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    error_ = "open " + stderr_path + ": " + ErrnoText(errno);
    return false;
  }
  std::vector<std::string> args = {kPython, script, backing_path_, mount_path_, control_path_};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    const int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, 0);
    dup2(null_fd, 1);
    dup2(err_fd, 2);
    execv(kPython, argv.data());
    _exit(127);
  }
  close(err_fd);
  if (pid < 0) {
    error_ = "fork: " + ErrnoText(errno);
    return false;
  }
  pid_ = pid;
  const auto deadline = SteadyClock::now() + timeout;
  while (!IsMounted()) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "slowfs.py exited before mounting; stderr: " + Stderr();
      return false;
    }
    if (SteadyClock::now() > deadline) {
      error_ = "slowfs.py did not mount within " + std::to_string(timeout.count()) +
               " ms; stderr: " + Stderr();
      return false;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  mounted_ = true;
  return true;
}

bool SlowFs::IsMounted() const {
  if (mount_path_.empty()) return false;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // Fields: id parent major:minor root mount-point ...
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == mount_path_) return true;
  }
  return false;
}

bool SlowFs::WriteFile(std::string_view relative, std::string_view content) const {
  const std::string path = backing_path_ + "/" + std::string(relative);
  if (!WriteText(path, content)) {
    ADD_FAILURE() << "write " << path << " failed";
    return false;
  }
  return true;
}

bool SlowFs::MakeDir(std::string_view relative) const {
  const std::string path = backing_path_ + "/" + std::string(relative);
  if (mkdir(path.c_str(), 0755) != 0) {
    ADD_FAILURE() << "mkdir " << path << " failed: " << ErrnoText(errno);
    return false;
  }
  return true;
}

bool SlowFs::SetRules(std::string_view json) const {
  // Rename over the old file: the FS never reads half a file, and the new
  // inode tells it the rules changed even within one mtime tick.
  const std::string tmp = control_path_ + "/rules.json.tmp";
  const std::string path = control_path_ + "/rules.json";
  if (!WriteText(tmp, json) || rename(tmp.c_str(), path.c_str()) != 0) {
    ADD_FAILURE() << "writing " << path << " failed: " << ErrnoText(errno);
    return false;
  }
  return true;
}

std::string SlowFs::Log() const { return ReadText(control_path_ + "/log"); }

std::string SlowFs::Stderr() const { return ReadText(control_path_ + "/stderr"); }

bool SlowFs::WaitForLog(std::string_view needle, int count, milliseconds timeout) const {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    std::istringstream lines(Log());
    std::string line;
    int found = 0;
    while (std::getline(lines, line)) {
      if (line.find(needle) != std::string::npos) ++found;
    }
    if (found >= count) return true;
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

bool SlowFs::WaitForFsExit(milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      pid_ = -1;
      return true;
    }
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

bool SlowFs::Unmount() {
  bool ok = true;
  if (IsMounted()) {
    // A call still sleeping in the FS keeps the mount busy: then detach it
    // lazily; the FS process ends once the kernel lets go of it.
    RunProcess({kFusermount, "-u", mount_path_}, std::chrono::seconds(10));
    if (IsMounted()) {
      RunProcess({kFusermount, "-u", "-z", mount_path_}, std::chrono::seconds(10));
    }
    if (IsMounted()) {
      ADD_FAILURE() << "could not unmount " << mount_path_;
      ok = false;
    }
  }
  mounted_ = false;
  if (pid_ > 0 && !WaitForFsExit(std::chrono::seconds(5))) {
    kill(pid_, SIGTERM);
    if (!WaitForFsExit(std::chrono::seconds(3))) {
      kill(pid_, SIGKILL);
      WaitForFsExit(std::chrono::seconds(5));
      ADD_FAILURE() << "slowfs.py had to be killed";
      ok = false;
    }
  }
  if (!base_.empty() && ok) {
    if (!RemoveTree(base_)) {
      ADD_FAILURE() << "could not remove " << base_ << ": " << ErrnoText(errno);
      ok = false;
    }
    base_.clear();
  }
  return ok;
}

std::vector<std::string> OpenDescriptors(pid_t pid) {
  std::vector<std::string> targets;
  const std::string dir_path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = opendir(dir_path.c_str());
  if (dir == nullptr) return targets;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    char target[4096];
    const std::string link = dir_path + "/" + entry->d_name;
    const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    // A descriptor closed between readdir and readlink is simply gone.
    if (n >= 0) targets.emplace_back(target, static_cast<std::size_t>(n));
  }
  closedir(dir);
  return targets;
}

}  // namespace sluice::test
