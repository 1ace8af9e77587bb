// Slow and failing storage for integration tests: test/support/slowfs.py
// (a FUSE passthrough) mounted in a temporary directory.
//
// SlowFs creates /tmp/sluice-slowfs-XXXXXX with backing/ (the files, written
// directly), mnt/ (the mount, the document root to serve) and control/ (the
// fault rules and the log of faulted calls), starts slowfs.py with
// /usr/bin/python3 and waits until mnt/ appears in /proc/self/mountinfo. The
// destructor unmounts (fusermount3 -u, then a lazy unmount if the mount is
// busy), stops the FS process by its PID (SIGTERM, then SIGKILL) and removes
// the directory, so cleanup happens even when a test fails. Declare it
// before the ServerProcess serving it, so that the server stops first.
//
// Use SLUICE_MOUNT_SLOWFS_OR_SKIP(fs) in a test body or SetUp(): it skips the
// test only when FUSE itself is unavailable (no /dev/fuse, no fusepy, not
// root), and fails it on any other mount problem. Only the test's thread may
// use a SlowFs.

#ifndef SLUICE_TEST_SUPPORT_SLOW_FS_H_
#define SLUICE_TEST_SUPPORT_SLOW_FS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::test {

class SlowFs {
 public:
  SlowFs() = default;
  ~SlowFs();

  SlowFs(const SlowFs&) = delete;
  SlowFs& operator=(const SlowFs&) = delete;

  // Why FUSE cannot be used here, or nullopt if it can.
  static std::optional<std::string> Unavailable();

  // Creates the directories, starts the FS and waits (at most `timeout`) for
  // the mount. On failure returns false and error() says why.
  bool Mount(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // The mount point: the directory to serve.
  const std::string& mount_path() const { return mount_path_; }
  // Writes `relative` into the backing directory (visible through the mount).
  bool WriteFile(std::string_view relative, std::string_view content) const;
  // Creates directory `relative` in the backing directory.
  bool MakeDir(std::string_view relative) const;

  // Replaces the rules (slowfs.py's JSON format) atomically; the FS applies
  // them to its next call. "{}" clears every fault.
  bool SetRules(std::string_view json) const;
  // The log of faulted calls so far ("<op> <path> <begin|end> ...").
  std::string Log() const;
  // Waits until Log() holds `count` lines containing `needle`.
  bool WaitForLog(std::string_view needle, int count, std::chrono::milliseconds timeout) const;
  // The FS process's stderr so far, for failure messages.
  std::string Stderr() const;

  // Unmounts and stops the FS (the destructor does this too). Returns false
  // and ADD_FAILURE()s if the mount or the process could not be removed.
  bool Unmount();

 private:
  bool IsMounted() const;
  bool WaitForFsExit(std::chrono::milliseconds timeout);

  std::string base_;
  std::string mount_path_;
  std::string backing_path_;
  std::string control_path_;
  pid_t pid_ = -1;
  bool mounted_ = false;
  std::string error_;
};

// The targets of /proc/PID/fd/* (readlink), one per open descriptor.
std::vector<std::string> OpenDescriptors(pid_t pid);

}  // namespace sluice::test

#define SLUICE_MOUNT_SLOWFS_OR_SKIP(fs)                                   \
  do {                                                                    \
    if (const std::optional<std::string> sluice_fuse_missing =            \
            ::sluice::test::SlowFs::Unavailable()) {                      \
      GTEST_SKIP() << "FUSE unavailable: " << *sluice_fuse_missing;       \
    }                                                                     \
    ASSERT_TRUE((fs).Mount()) << "slowfs mount failed: " << (fs).error(); \
  } while (false)

#endif  // SLUICE_TEST_SUPPORT_SLOW_FS_H_
