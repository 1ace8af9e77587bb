// Log lines on stderr in one stable, greppable shape:
//   2026-11-26T10:24:54.123Z sluice[1234] INFO message
// Any thread; each line is written with a single write(2).
#ifndef SLUICE_BASE_LOG_H_
#define SLUICE_BASE_LOG_H_

#include <string_view>

namespace sluice {

void LogInfo(std::string_view message);
void LogWarning(std::string_view message);
void LogError(std::string_view message);

}  // namespace sluice

#endif  // SLUICE_BASE_LOG_H_
