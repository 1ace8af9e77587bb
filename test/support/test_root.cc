#include "support/test_root.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace sluice::test {
namespace {

constexpr const char* kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr const char* kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string ErrnoText(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

// Removes `path` recursively. Never follows symlinks; makes directories
// searchable first so that a chmod 000 directory can still be emptied.
void RemoveTree(const std::string& path, int depth) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode) && depth < 64) {
    chmod(path.c_str(), 0700);
    std::vector<std::string> children;
    if (DIR* dir = opendir(path.c_str()); dir != nullptr) {
      while (struct dirent* entry = readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        children.push_back(path + "/" + std::string(name));
      }
      closedir(dir);
    }
    for (const std::string& child : children) RemoveTree(child, depth + 1);
    if (rmdir(path.c_str()) != 0) {
      ADD_FAILURE() << "rmdir " << path << ": " << ErrnoText(errno);
    }
  } else if (unlink(path.c_str()) != 0) {
    ADD_FAILURE() << "unlink " << path << ": " << ErrnoText(errno);
  }
}

bool MakeDirs(const std::string& path) {
  // Create every prefix ending before a '/', then the path itself.
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      ADD_FAILURE() << "mkdir " << prefix << ": " << ErrnoText(errno);
      return false;
    }
  }
  return true;
}

bool MakeParentDirs(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return true;
  return MakeDirs(path.substr(0, slash));
}

bool WriteAllAt(int fd, std::string_view data, off_t offset, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ADD_FAILURE() << "write " << path << ": " << ErrnoText(errno);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

TestRoot::TestRoot(std::string_view prefix) {
  std::string templ = "/tmp/" + std::string(prefix) + "XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << templ << ": " << ErrnoText(errno);
    return;
  }
  // mkdtemp creates the directory with mode 0700; let a server running as
  // another user (when the tests do not run as root) read it.
  chmod(templ.c_str(), 0755);
  path_ = templ;
}

TestRoot::~TestRoot() {
  if (!path_.empty()) RemoveTree(path_, 0);
}

std::string TestRoot::Path(std::string_view relative) const {
  return path_ + "/" + std::string(relative);
}

bool TestRoot::WriteFile(std::string_view relative, std::string_view content) const {
  const std::string path = Path(relative);
  if (!MakeParentDirs(path)) return false;
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoText(errno);
    return false;
  }
  const bool ok = WriteAllAt(fd, content, 0, path);
  close(fd);
  return ok;
}

bool TestRoot::MakeDir(std::string_view relative) const { return MakeDirs(Path(relative)); }

bool TestRoot::Symlink(std::string_view target, std::string_view relative) const {
  const std::string path = Path(relative);
  if (!MakeParentDirs(path)) return false;
  if (symlink(std::string(target).c_str(), path.c_str()) != 0) {
    ADD_FAILURE() << "symlink " << path << " -> " << target << ": " << ErrnoText(errno);
    return false;
  }
  return true;
}

bool TestRoot::MakeFifo(std::string_view relative) const {
  const std::string path = Path(relative);
  if (!MakeParentDirs(path)) return false;
  if (mkfifo(path.c_str(), 0644) != 0) {
    ADD_FAILURE() << "mkfifo " << path << ": " << ErrnoText(errno);
    return false;
  }
  return true;
}

bool TestRoot::Chmod(std::string_view relative, mode_t mode) const {
  const std::string path = Path(relative);
  if (chmod(path.c_str(), mode) != 0) {
    ADD_FAILURE() << "chmod " << path << ": " << ErrnoText(errno);
    return false;
  }
  return true;
}

bool TestRoot::SetMtime(std::string_view relative, std::time_t seconds) const {
  const std::string path = Path(relative);
  struct timespec times[2];
  times[0].tv_sec = seconds;
  times[0].tv_nsec = 0;
  times[1] = times[0];
  if (utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    ADD_FAILURE() << "utimensat " << path << ": " << ErrnoText(errno);
    return false;
  }
  return true;
}

bool TestRoot::WriteSparseFile(std::string_view relative, std::uint64_t size,
                               std::string_view tail) const {
  if (tail.size() > size) {
    ADD_FAILURE() << "sparse file tail larger than the file";
    return false;
  }
  const std::string path = Path(relative);
  if (!MakeParentDirs(path)) return false;
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoText(errno);
    return false;
  }
  bool ok = true;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    ADD_FAILURE() << "ftruncate " << path << ": " << ErrnoText(errno);
    ok = false;
  }
  if (ok) ok = WriteAllAt(fd, tail, static_cast<off_t>(size - tail.size()), path);
  close(fd);
  return ok;
}

std::string PseudoRandomBytes(std::size_t size, std::uint64_t seed) {
  std::string out(size, '\0');
  std::uint64_t state = seed;
  std::size_t i = 0;
  while (i < size) {
    state += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (int b = 0; b < 8 && i < size; ++b, ++i) {
      out[i] = static_cast<char>((z >> (8 * b)) & 0xff);
    }
  }
  return out;
}

std::uint64_t Fnv1a64(std::string_view data) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  out->clear();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoText(errno);
    return false;
  }
  char buffer[65536];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ADD_FAILURE() << "read " << path << ": " << ErrnoText(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buffer, static_cast<std::size_t>(n));
  }
  close(fd);
  return true;
}

std::string FormatImfFixdate(std::time_t seconds) {
  struct tm tm;
  gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                kDayNames[tm.tm_wday], tm.tm_mday, kMonthNames[tm.tm_mon], tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buffer;
}

bool ParseImfFixdate(std::string_view text, std::time_t* seconds) {
  // "Sun, 06 Nov 1994 08:49:37 GMT" is exactly 29 characters.
  if (text.size() != 29) return false;
  auto digits = [&](std::size_t pos, std::size_t count, int* value) {
    int v = 0;
    for (std::size_t i = pos; i < pos + count; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      v = v * 10 + (text[i] - '0');
    }
    *value = v;
    return true;
  };
  int wday = -1;
  for (int i = 0; i < 7; ++i) {
    if (text.substr(0, 3) == kDayNames[i]) wday = i;
  }
  int mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (text.substr(8, 3) == kMonthNames[i]) mon = i;
  }
  int mday = 0, year = 0, hour = 0, min = 0, sec = 0;
  if (wday < 0 || mon < 0 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT" ||
      !digits(5, 2, &mday) || !digits(12, 4, &year) || !digits(17, 2, &hour) ||
      !digits(20, 2, &min) || !digits(23, 2, &sec)) {
    return false;
  }
  struct tm tm = {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = mday;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  // Reject out-of-range fields (timegm normalises them) and a wrong weekday.
  if (FormatImfFixdate(t) != text) return false;
  *seconds = t;
  return true;
}

std::time_t FileMtime(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    ADD_FAILURE() << "stat " << path << ": " << ErrnoText(errno);
    return -1;
  }
  return st.st_mtim.tv_sec;
}

}  // namespace sluice::test
