// A temporary document root for integration tests, plus small file helpers.
//
// TestRoot creates a fresh directory with mkdtemp under /tmp and removes it
// (recursively, without following symlinks) when destroyed. The helpers
// report problems with ADD_FAILURE() and return false, so call them as
// ASSERT_TRUE(root.WriteFile(...)).

#ifndef SLUICE_TEST_SUPPORT_TEST_ROOT_H_
#define SLUICE_TEST_SUPPORT_TEST_ROOT_H_

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace sluice::test {

class TestRoot {
 public:
  // Creates /tmp/<prefix>XXXXXX. On failure path() is empty and the test fails.
  explicit TestRoot(std::string_view prefix = "sluice-test-");
  ~TestRoot();

  TestRoot(const TestRoot&) = delete;
  TestRoot& operator=(const TestRoot&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // Absolute path of `relative` (which must not start with '/').
  std::string Path(std::string_view relative) const;

  // Creates `relative` (and any missing parent directories) with `content`.
  bool WriteFile(std::string_view relative, std::string_view content) const;
  // Creates a directory (and parents).
  bool MakeDir(std::string_view relative) const;
  // Creates a symlink at `relative` pointing to `target` (any string).
  bool Symlink(std::string_view target, std::string_view relative) const;
  // Creates a FIFO at `relative`.
  bool MakeFifo(std::string_view relative) const;
  bool Chmod(std::string_view relative, mode_t mode) const;
  // Sets both atime and mtime of `relative` to `seconds` since the epoch.
  bool SetMtime(std::string_view relative, std::time_t seconds) const;
  // Creates a sparse file of `size` bytes whose last `tail.size()` bytes are `tail`.
  bool WriteSparseFile(std::string_view relative, std::uint64_t size, std::string_view tail) const;

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes (splitmix64 stream seeded with `seed`).
std::string PseudoRandomBytes(std::size_t size, std::uint64_t seed);

// 64-bit FNV-1a.
std::uint64_t Fnv1a64(std::string_view data);

// Reads a whole file; ADD_FAILURE() and returns false on error.
bool ReadWholeFile(const std::string& path, std::string* out);

// Formats `seconds` since the epoch as an RFC 9110 IMF-fixdate,
// e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string FormatImfFixdate(std::time_t seconds);

// Parses an IMF-fixdate strictly; returns false if `text` is not exactly one.
bool ParseImfFixdate(std::string_view text, std::time_t* seconds);

// The file's mtime in whole seconds, or -1 (and ADD_FAILURE) on error.
std::time_t FileMtime(const std::string& path);

}  // namespace sluice::test

#endif  // SLUICE_TEST_SUPPORT_TEST_ROOT_H_
