// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.
// Pure functions plus DateCache, which belongs to one worker thread.
#ifndef SLUICE_HTTP_HTTP_DATE_H_
#define SLUICE_HTTP_HTTP_DATE_H_

#include <ctime>
#include <optional>
#include <string_view>

namespace sluice {

inline constexpr size_t kHttpDateLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// Writes exactly kHttpDateLength bytes (no NUL) for `t` in UTC.
void FormatHttpDate(time_t t, char* out);

// IMF-fixdate, RFC 850 and asctime forms; nullopt for anything else.
std::optional<time_t> ParseHttpDate(std::string_view s);

// The Date header value, re-formatted at most once per second.
class DateCache {
 public:
  DateCache() { Refresh(time(nullptr)); }
  // Call once per loop iteration; cheap when the second has not changed.
  void Refresh(time_t now) {
    if (now == now_) return;
    now_ = now;
    FormatHttpDate(now, text_);
  }
  std::string_view text() const { return std::string_view(text_, kHttpDateLength); }
  time_t now() const { return now_; }

 private:
  time_t now_ = -1;
  char text_[kHttpDateLength] = {};
};

}  // namespace sluice

#endif  // SLUICE_HTTP_HTTP_DATE_H_
