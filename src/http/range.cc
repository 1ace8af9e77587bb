#include "sluice/http/range.h"

#include <algorithm>
#include <limits>

#include "sluice/http/http_parser.h"

namespace sluice {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// 1*DIGIT, saturating at 2^64-1 instead of wrapping.
bool ParseNumber(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<uint64_t>(c - '0');
    n = (n > (kMax - d) / 10) ? kMax : n * 10 + d;
  }
  *out = n;
  return true;
}

bool StartsWithBytesUnit(std::string_view v) {
  if (v.size() < 6) return false;
  static constexpr std::string_view kUnit = "bytes=";
  for (size_t i = 0; i < kUnit.size(); ++i) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != kUnit[i]) return false;
  }
  return true;
}

// One range-spec (RFC 9110 §14.1.1). kInvalid: the whole header is ignored;
// kUnsatisfiable: valid syntax but nothing of the file; else *range is set.
enum class SpecResult { kInvalid, kUnsatisfiable, kRange };

SpecResult ParseSpec(std::string_view spec, uint64_t size, ByteRange* range) {
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return SpecResult::kInvalid;
  const std::string_view a = spec.substr(0, dash);
  const std::string_view b = spec.substr(dash + 1);
  uint64_t first = 0;
  uint64_t last = 0;
  if (a.empty()) {
    // suffix-range: the last N bytes.
    uint64_t suffix = 0;
    if (!ParseNumber(b, &suffix)) return SpecResult::kInvalid;
    if (suffix == 0 || size == 0) return SpecResult::kUnsatisfiable;
    first = suffix >= size ? 0 : size - suffix;
    last = size - 1;
  } else {
    if (!ParseNumber(a, &first)) return SpecResult::kInvalid;
    if (b.empty()) {
      last = kMax;
    } else if (!ParseNumber(b, &last) || last < first) {
      return SpecResult::kInvalid;
    }
    if (first >= size) return SpecResult::kUnsatisfiable;
    last = std::min(last, size - 1);
  }
  *range = ByteRange{first, last - first + 1};
  return SpecResult::kRange;
}

// Merges overlapping or touching ranges, so that "0-,0-,0-" costs one range.
void MergeRanges(RangeSet* out) {
  ByteRange sorted[kMaxRangesLimit];
  std::copy(out->ranges, out->ranges + out->count, sorted);
  std::sort(sorted, sorted + out->count,
            [](const ByteRange& x, const ByteRange& y) { return x.first < y.first; });
  bool merged_any = false;
  size_t merged = 0;
  for (size_t i = 0; i < out->count; ++i) {
    if (merged > 0 && sorted[i].first <= sorted[merged - 1].last() + 1) {
      ByteRange& m = sorted[merged - 1];
      m.length = std::max(m.last(), sorted[i].last()) - m.first + 1;
      merged_any = true;
    } else {
      sorted[merged++] = sorted[i];
    }
  }
  if (merged_any) {
    std::copy(sorted, sorted + merged, out->ranges);
    out->count = merged;
  }
}

}  // namespace

RangeSet ParseRange(std::string_view value, uint64_t size, size_t max_ranges) {
  RangeSet out;
  max_ranges = std::min(max_ranges, kMaxRangesLimit);
  value = TrimOws(value);
  if (!StartsWithBytesUnit(value)) return out;
  value.remove_prefix(6);

  size_t specs = 0;
  bool any_valid = false;
  bool done = false;
  while (!done) {
    const size_t comma = value.find(',');
    const std::string_view spec = TrimOws(value.substr(0, comma));
    if (comma == std::string_view::npos) {
      done = true;
    } else {
      value.remove_prefix(comma + 1);
    }
    // Empty list elements are allowed by the list syntax (RFC 9110 §5.6.1).
    if (spec.empty()) continue;
    if (++specs > max_ranges) return RangeSet();
    ByteRange range;
    const SpecResult r = ParseSpec(spec, size, &range);
    if (r == SpecResult::kInvalid) return RangeSet();
    any_valid = true;
    if (r == SpecResult::kRange) out.ranges[out.count++] = range;
  }
  if (!any_valid) return RangeSet();
  if (out.count == 0) {
    out.kind = RangeSet::Kind::kUnsatisfiable;
    return out;
  }
  // Several ranges that together ask for the whole file (or more, counting
  // overlaps) gain nothing over one response: send it whole.
  uint64_t requested = 0;
  for (size_t i = 0; i < out.count; ++i) {
    requested = requested > kMax - out.ranges[i].length ? kMax : requested + out.ranges[i].length;
  }
  if (out.count > 1 && requested >= size) return RangeSet();
  MergeRanges(&out);
  out.kind = RangeSet::Kind::kSatisfiable;
  return out;
}

}  // namespace sluice
