#include "sluice/base/log.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "absl/strings/str_format.h"
#include "sluice/base/check.h"

namespace sluice {
namespace {

LogFormatter formatter = nullptr;  // Set at start-up only, read by any thread after.

void Write(std::string_view level, std::string_view message) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  if (formatter != nullptr) {
    std::string line;
    formatter(&line, static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000, getpid(), level,
              message);
    [[maybe_unused]] ssize_t n = write(STDERR_FILENO, line.data(), line.size());
    return;
  }
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  std::string line = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ sluice[%d] %s %s\n",
                                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                     tm.tm_min, tm.tm_sec, static_cast<int>(tv.tv_usec / 1000),
                                     getpid(), std::string(level), std::string(message));
  [[maybe_unused]] ssize_t n = write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

void SetLogFormatter(LogFormatter f) { formatter = f; }

void LogInfo(std::string_view message) { Write("INFO", message); }
void LogWarning(std::string_view message) { Write("WARN", message); }
void LogError(std::string_view message) { Write("ERROR", message); }

void CheckFailed(const char* what, const char* cond, const char* file, int line) {
  Write("FATAL", absl::StrFormat("invariant broken: %s (%s) at %s:%d", what, cond, file, line));
  abort();
}

}  // namespace sluice
