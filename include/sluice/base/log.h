// Log lines on stderr in one stable, greppable shape:
//   2026-11-26T10:24:54.123Z sluice[1234] INFO message
// or, once SetLogFormatter() installed one, in another shape (main.cc
// installs JSON for --log_format=json; base/ knows no JSON escaping).
// Any thread; each line is written with a single write(2).
#ifndef SLUICE_BASE_LOG_H_
#define SLUICE_BASE_LOG_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

void LogInfo(std::string_view message);
void LogWarning(std::string_view message);
void LogError(std::string_view message);

// Builds one whole line (newline included) into `line`. `level` is "INFO",
// "WARN", "ERROR" or "FATAL"; `unix_ms` wall-clock milliseconds.
using LogFormatter = void (*)(std::string* line, int64_t unix_ms, int pid, std::string_view level,
                              std::string_view message);
// Start-up, before any thread but the main one logs; null: the text shape.
void SetLogFormatter(LogFormatter formatter);

}  // namespace sluice

#endif  // SLUICE_BASE_LOG_H_
