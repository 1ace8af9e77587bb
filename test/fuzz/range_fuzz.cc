// Fuzzes ParseRange: whatever the Range value and the file size, every
// returned range lies inside the file, there are at most max_ranges of them,
// several ranges never overlap, touch, or add up to the whole file, and no
// arithmetic wraps.
//
// Input: byte 0 picks the file size (small sizes, and sizes near 2^64 to
// provoke overflow), byte 1 max_ranges, the rest is the field value.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "sluice/http/range.h"

namespace {

using sluice::ByteRange;
using sluice::RangeSet;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

uint64_t SizeFrom(uint8_t b) {
  switch (b % 8) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return b / 8;  // 0..31
    case 3:
      return 100;
    case 4:
      return 10000;
    case 5:
      return uint64_t{1} << 32;
    case 6:
      return kMax - b / 8;
    default:
      return kMax / 2 + b;
  }
}

[[noreturn]] void Fail(const char* what, std::string_view value, uint64_t size) {
  std::fprintf(stderr, "range_fuzz: %s (size %llu, value '%.*s')\n", what,
               static_cast<unsigned long long>(size), static_cast<int>(value.size()), value.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint64_t file_size = SizeFrom(data[0]);
  const size_t max_ranges = 1 + data[1] % 70;  // Past kMaxRangesLimit too.
  const std::string copy(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string_view value = copy;
  const RangeSet set = sluice::ParseRange(value, file_size, max_ranges);

  if (set.count > sluice::kMaxRangesLimit) Fail("count beyond the array", value, file_size);
  if (set.kind != RangeSet::Kind::kSatisfiable) return 0;
  if (set.count == 0) Fail("satisfiable without ranges", value, file_size);
  if (set.count > max_ranges) Fail("more ranges than max_ranges", value, file_size);
  uint64_t total = 0;
  for (size_t i = 0; i < set.count; ++i) {
    const ByteRange& r = set.ranges[i];
    if (r.length == 0) Fail("empty range", value, file_size);
    if (r.first >= file_size) Fail("range starts past the end", value, file_size);
    if (r.length > file_size - r.first) Fail("range ends past the end", value, file_size);
    if (r.last() < r.first) Fail("last() wrapped", value, file_size);
    total += r.length;  // Cannot wrap: each range lies within the file.
    if (total < r.length) Fail("total wrapped", value, file_size);
    for (size_t j = 0; j < i; ++j) {
      const ByteRange& o = set.ranges[j];
      // Disjoint and not adjacent: one ends at least a byte before the other starts.
      const bool apart = (o.last() < r.first && r.first - o.last() > 1) ||
                         (r.last() < o.first && o.first - r.last() > 1);
      if (!apart) Fail("overlapping or touching ranges were not merged", value, file_size);
    }
  }
  if (set.count > 1 && total >= file_size) {
    Fail("several ranges covering the whole file", value, file_size);
  }
  return 0;
}
