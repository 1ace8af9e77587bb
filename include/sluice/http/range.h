// Range requests (RFC 9110 §14): parsing a Range field against a
// representation's length, with the abuse limits a public server needs.
// Pure functions; any thread.
#ifndef SLUICE_HTTP_RANGE_H_
#define SLUICE_HTTP_RANGE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

struct ByteRange {
  uint64_t first = 0;   // Inclusive.
  uint64_t length = 0;  // > 0.
  uint64_t last() const { return first + length - 1; }
};

inline constexpr size_t kMaxRangesLimit = 64;

struct RangeSet {
  enum class Kind : uint8_t {
    kIgnore,         // Absent, malformed, not "bytes", or refused: send 200 and the whole file.
    kSatisfiable,    // 206 with `ranges`.
    kUnsatisfiable,  // 416 with "Content-Range: bytes */size".
  };
  Kind kind = Kind::kIgnore;
  ByteRange ranges[kMaxRangesLimit];
  size_t count = 0;
};

// Parses `value` (the Range field) for a representation of `size` bytes.
// - Syntax errors, another unit, or a first-pos after last-pos anywhere in
//   the list → kIgnore (RFC 9110 §14.2 lets a server ignore a Range it
//   cannot parse).
// - More than `max_ranges` ranges → kIgnore (whole file).
// - Ranges starting at or past `size` are dropped; if none is left →
//   kUnsatisfiable. Numbers too large for 64 bits saturate, never wrap.
// - If several ranges together (overlaps counted) are not smaller than the
//   file → kIgnore: the whole file is cheaper for everyone.
// - Overlapping or adjacent ranges are merged (then listed in ascending
//   order); otherwise the request order is kept.
RangeSet ParseRange(std::string_view value, uint64_t size, size_t max_ranges);

}  // namespace sluice

#endif  // SLUICE_HTTP_RANGE_H_
