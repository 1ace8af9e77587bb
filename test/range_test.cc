// ParseRange (RFC 9110 §14.1-§14.2): syntax, satisfiability, 64-bit
// saturation, the max_ranges limit and merging, as a table.

#include "sluice/http/range.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using Kind = RangeSet::Kind;
// Inclusive [first, last] pairs, in the order ParseRange must list them.
using Spans = std::vector<std::pair<uint64_t, uint64_t>>;

constexpr uint64_t kSize = 1000;
constexpr size_t kDefaultMax = 16;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kIgnore:
      return "kIgnore";
    case Kind::kSatisfiable:
      return "kSatisfiable";
    case Kind::kUnsatisfiable:
      return "kUnsatisfiable";
  }
  return "?";
}

std::string Describe(const RangeSet& set) {
  std::string text = KindName(set.kind);
  text += " [";
  for (size_t i = 0; i < set.count; ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(set.ranges[i].first) + "-" + std::to_string(set.ranges[i].last());
  }
  return text + "]";
}

// `count` copies of `spec`, joined by commas, after "bytes=".
std::string Repeated(std::string_view spec, size_t count) {
  std::string value = "bytes=";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) value += ",";
    value += spec;
  }
  return value;
}

// `count` one-byte ranges at 0, 2, 4, ...: disjoint and never adjacent.
std::string Disjoint(size_t count) {
  std::string value = "bytes=";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) value += ",";
    value += std::to_string(2 * i) + "-" + std::to_string(2 * i);
  }
  return value;
}

Spans DisjointSpans(size_t count) {
  Spans spans;
  for (size_t i = 0; i < count; ++i) spans.emplace_back(2 * i, 2 * i);
  return spans;
}

struct RangeCase {
  std::string name;
  std::string value;
  uint64_t size = kSize;
  size_t max_ranges = kDefaultMax;
  Kind kind = Kind::kIgnore;
  Spans spans;  // Only for kSatisfiable.
};

std::ostream& operator<<(std::ostream& os, const RangeCase& c) {
  return os << c.name << ": '" << c.value.substr(0, 80) << (c.value.size() > 80 ? "...'" : "'")
            << " size=" << c.size << " max=" << c.max_ranges;
}

std::vector<RangeCase> Cases() {
  const Kind sat = Kind::kSatisfiable;
  const Kind unsat = Kind::kUnsatisfiable;
  const Kind ignore = Kind::kIgnore;
  return {
      // Single ranges (RFC 9110 §14.1.2).
      {"FirstBytes", "bytes=0-8", kSize, kDefaultMax, sat, {{0, 8}}},
      {"OneByte", "bytes=0-0", kSize, kDefaultMax, sat, {{0, 0}}},
      {"LastByteByPosition", "bytes=999-999", kSize, kDefaultMax, sat, {{999, 999}}},
      {"OpenEnded", "bytes=990-", kSize, kDefaultMax, sat, {{990, 999}}},
      {"Suffix", "bytes=-10", kSize, kDefaultMax, sat, {{990, 999}}},
      {"SuffixLongerThanFile", "bytes=-5000", kSize, kDefaultMax, sat, {{0, 999}}},
      {"SuffixExactlyFile", "bytes=-1000", kSize, kDefaultMax, sat, {{0, 999}}},
      {"EndPastTheEndClamped", "bytes=500-5000", kSize, kDefaultMax, sat, {{500, 999}}},
      {"WholeFileAsOneRange", "bytes=0-", kSize, kDefaultMax, sat, {{0, 999}}},
      {"WholeFileExactEnd", "bytes=0-999", kSize, kDefaultMax, sat, {{0, 999}}},
      // Unsatisfiable (RFC 9110 §14.1.1: first-pos past the end, suffix of 0).
      {"SuffixZero", "bytes=-0", kSize, kDefaultMax, unsat, {}},
      {"FirstAtSize", "bytes=1000-", kSize, kDefaultMax, unsat, {}},
      {"FirstAtSizeClosed", "bytes=1000-1000", kSize, kDefaultMax, unsat, {}},
      {"FirstPastSize", "bytes=5000-6000", kSize, kDefaultMax, unsat, {}},
      {"AllUnsatisfiable", "bytes=1000-,-0,2000-3000", kSize, kDefaultMax, unsat, {}},
      {"UnsatisfiableOnesDropped", "bytes=2000-,10-19,-0", kSize, kDefaultMax, sat, {{10, 19}}},
      // Syntax errors: the Range field is ignored (RFC 9110 §14.2).
      {"LettersForNumbers", "bytes=a-b", kSize, kDefaultMax, ignore, {}},
      {"LastBeforeFirst", "bytes=5-1", kSize, kDefaultMax, ignore, {}},
      {"LastBeforeFirstInList", "bytes=0-1,5-1", kSize, kDefaultMax, ignore, {}},
      {"EmptySet", "bytes=", kSize, kDefaultMax, ignore, {}},
      {"OnlyCommas", "bytes=,, ,", kSize, kDefaultMax, ignore, {}},
      {"SpaceForEquals", "bytes 0-1", kSize, kDefaultMax, ignore, {}},
      {"SpaceBeforeEquals", "bytes =0-1", kSize, kDefaultMax, ignore, {}},
      {"OtherUnit", "items=0-1", kSize, kDefaultMax, ignore, {}},
      {"UnitPrefixOnly", "byte=0-1", kSize, kDefaultMax, ignore, {}},
      {"DoubleDash", "bytes=--1", kSize, kDefaultMax, ignore, {}},
      {"TwoDashes", "bytes=1-2-3", kSize, kDefaultMax, ignore, {}},
      {"NoDash", "bytes=5", kSize, kDefaultMax, ignore, {}},
      {"LoneDash", "bytes=-", kSize, kDefaultMax, ignore, {}},
      {"NegativeFirst", "bytes=-5-10", kSize, kDefaultMax, ignore, {}},
      {"PlusSign", "bytes=+1-2", kSize, kDefaultMax, ignore, {}},
      {"SpaceInsideSpec", "bytes=0 - 1", kSize, kDefaultMax, ignore, {}},
      {"SemicolonSeparator", "bytes=0-1;5-6", kSize, kDefaultMax, ignore, {}},
      {"GoodThenBad", "bytes=0-1,x", kSize, kDefaultMax, ignore, {}},
      {"Empty", "", kSize, kDefaultMax, ignore, {}},
      // Case-insensitive unit (RFC 9110 §14.1: range units are compared
      // case-insensitively).
      {"UpperCaseUnit", "BYTES=0-8", kSize, kDefaultMax, sat, {{0, 8}}},
      {"MixedCaseUnit", "Bytes=-10", kSize, kDefaultMax, sat, {{990, 999}}},
      // OWS around commas and empty list elements (RFC 9110 §5.6.1).
      {"SpacesAroundCommas", "bytes=0-1 , 5-6", kSize, kDefaultMax, sat, {{0, 1}, {5, 6}}},
      {"TabsAroundCommas", "bytes=0-1\t,\t5-6", kSize, kDefaultMax, sat, {{0, 1}, {5, 6}}},
      {"LeadingSpaceInSet", "bytes= 0-1", kSize, kDefaultMax, sat, {{0, 1}}},
      {"SurroundingOws", "  bytes=0-1  ", kSize, kDefaultMax, sat, {{0, 1}}},
      {"EmptyElements", "bytes=,0-1,,5-6,", kSize, kDefaultMax, sat, {{0, 1}, {5, 6}}},
      // Numbers beyond 64 bits saturate, never wrap.
      {"HugeFirst", "bytes=99999999999999999999-", kSize, kDefaultMax, unsat, {}},
      {"HugeFirstAndLast",
       "bytes=99999999999999999999-99999999999999999999",
       kSize,
       kDefaultMax,
       unsat,
       {}},
      {"HugeLastClamped", "bytes=0-99999999999999999999", kSize, kDefaultMax, sat, {{0, 999}}},
      {"HugeSuffixIsWholeFile", "bytes=-99999999999999999999", kSize, kDefaultMax, sat, {{0, 999}}},
      {"U64MaxFirst", "bytes=18446744073709551615-", kSize, kDefaultMax, unsat, {}},
      {"U64MaxPlusOneFirst", "bytes=18446744073709551616-", kSize, kDefaultMax, unsat, {}},
      // 2^64 + 5 would wrap to 5 if the parser overflowed.
      {"WrapToSmallFirst", "bytes=18446744073709551621-", kSize, kDefaultMax, unsat, {}},
      {"WrapToSmallLast", "bytes=10-18446744073709551621", kSize, kDefaultMax, sat, {{10, 999}}},
      {"WrapToSmallSuffix", "bytes=-18446744073709551621", kSize, kDefaultMax, sat, {{0, 999}}},
      {"HugeFileTail", "bytes=-1", kU64Max, kDefaultMax, sat, {{kU64Max - 1, kU64Max - 1}}},
      {"HugeFileOpen", "bytes=0-", kU64Max, kDefaultMax, sat, {{0, kU64Max - 1}}},
      {"HugeFileHugeLast",
       "bytes=5-99999999999999999999",
       kU64Max,
       kDefaultMax,
       sat,
       {{5, kU64Max - 1}}},
      // Several ranges: disjoint ones keep the request order (RFC 9110 §14.6).
      {"DisjointInOrder", "bytes=0-1,5-6", kSize, kDefaultMax, sat, {{0, 1}, {5, 6}}},
      {"DisjointReverseOrderKept",
       "bytes=500-599,0-99",
       kSize,
       kDefaultMax,
       sat,
       {{500, 599}, {0, 99}}},
      {"DisjointMixedKinds",
       "bytes=-10,0-9,100-199",
       kSize,
       kDefaultMax,
       sat,
       {{990, 999}, {0, 9}, {100, 199}}},
      // Overlapping or adjacent: merged, then listed in ascending order.
      {"OverlapMerged", "bytes=0-10,5-20", kSize, kDefaultMax, sat, {{0, 20}}},
      {"AdjacentMerged", "bytes=0-9,10-19", kSize, kDefaultMax, sat, {{0, 19}}},
      {"ContainedMerged", "bytes=100-200,150-160", kSize, kDefaultMax, sat, {{100, 200}}},
      {"SameRangeTwice", "bytes=5-9,5-9", kSize, kDefaultMax, sat, {{5, 9}}},
      {"MergeSortsTheRest",
       "bytes=500-599,20-29,0-9,10-19",
       kSize,
       kDefaultMax,
       sat,
       {{0, 29}, {500, 599}}},
      {"SuffixMergesWithTail",
       "bytes=-10,980-989,0-0",
       kSize,
       kDefaultMax,
       sat,
       {{0, 0}, {980, 999}}},
      // Several ranges that together are not smaller than the file: ignored
      // (range.h), as is asking for the whole file in pieces.
      {"HalvesOfTheFile", "bytes=0-499,500-999", kSize, kDefaultMax, ignore, {}},
      {"OverlappingHalves", "bytes=0-600,400-999", kSize, kDefaultMax, ignore, {}},
      {"WholeFileTwice", "bytes=0-,0-", kSize, kDefaultMax, ignore, {}},
      {"SuffixAndStartCoverAll", "bytes=-600,0-500", kSize, kDefaultMax, ignore, {}},
      // The max_ranges limit counts the ranges as sent.
      {"ExactlyMax", Disjoint(16), kSize, 16, sat, DisjointSpans(16)},
      {"OneOverMax", Disjoint(17), kSize, 16, ignore, {}},
      {"MaxOfOne", "bytes=0-1,5-6", kSize, 1, ignore, {}},
      {"MaxOfOneSingle", "bytes=5-6", kSize, 1, sat, {{5, 6}}},
      {"EmptyElementsDoNotCount",
       "bytes=0-0,,,,,,,,,,,,,,,,,,,,2-2",
       kSize,
       2,
       sat,
       {{0, 0}, {2, 2}}},
      {"UnsatisfiableOnesCount", "bytes=0-0,5000-,6000-", kSize, 2, ignore, {}},
      {"RequestedMaxClampedTo64", Disjoint(64), kSize, 1000, sat, DisjointSpans(64)},
      {"SixtyFiveNeverFit", Disjoint(65), kSize, std::numeric_limits<size_t>::max(), ignore, {}},
      {"FiveHundredWholeFilesOverMax", Repeated("0-", 500), kSize, kDefaultMax, ignore, {}},
      {"FiveHundredWholeFilesHighMax",
       Repeated("0-", 500),
       kSize,
       std::numeric_limits<size_t>::max(),
       ignore,
       {}},
      {"SixtyFourCopiesMergeIntoOne", Repeated("0-9", 64), kSize, kMaxRangesLimit, sat, {{0, 9}}},
      // Sixteen copies ask for 1600 bytes of a 1000-byte file: whole file.
      {"SixteenCopiesOutweighTheFile", Repeated("100-199", 16), kSize, kDefaultMax, ignore, {}},
      {"FiveCopiesMergeIntoOne", Repeated("100-199", 5), kSize, kDefaultMax, sat, {{100, 199}}},
      // An empty representation: nothing is satisfiable (RFC 9110 §14.1.1).
      {"EmptyFileOpen", "bytes=0-", 0, kDefaultMax, unsat, {}},
      {"EmptyFileClosed", "bytes=0-0", 0, kDefaultMax, unsat, {}},
      {"EmptyFileSuffix", "bytes=-1", 0, kDefaultMax, unsat, {}},
      {"EmptyFileSyntaxError", "bytes=x", 0, kDefaultMax, ignore, {}},
      {"OneByteFileSuffix", "bytes=-5", 1, kDefaultMax, sat, {{0, 0}}},
  };
}

class ParseRangeTest : public ::testing::TestWithParam<RangeCase> {};

TEST_P(ParseRangeTest, MatchesTable) {
  const RangeCase& c = GetParam();
  const RangeSet set = ParseRange(c.value, c.size, c.max_ranges);
  Spans actual;
  for (size_t i = 0; i < set.count && i < kMaxRangesLimit; ++i) {
    actual.emplace_back(set.ranges[i].first, set.ranges[i].last());
  }
  EXPECT_EQ(KindName(set.kind), std::string(KindName(c.kind))) << "got " << Describe(set);
  if (c.kind == Kind::kSatisfiable) {
    EXPECT_EQ(actual, c.spans) << "got " << Describe(set);
  }
  for (size_t i = 0; i < set.count && i < kMaxRangesLimit; ++i) {
    EXPECT_GT(set.ranges[i].length, 0u) << Describe(set);
    if (c.size > 0) {
      EXPECT_LT(set.ranges[i].last(), c.size) << Describe(set);
    }
  }
  EXPECT_LE(set.count, kMaxRangesLimit);
}

struct CaseName {
  std::string operator()(const ::testing::TestParamInfo<RangeCase>& param_info) const {
    return param_info.param.name;
  }
};

INSTANTIATE_TEST_SUITE_P(Table, ParseRangeTest, ::testing::ValuesIn(Cases()), CaseName());

// Names in the table must be unique for the test names to be.
TEST(ParseRangeTableTest, NamesAreUnique) {
  std::vector<std::string> names;
  for (const RangeCase& c : Cases()) names.push_back(c.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

// The result never depends on anything but its arguments.
TEST(ParseRangePurityTest, RepeatedCallsAgree) {
  for (int i = 0; i < 3; ++i) {
    const RangeSet set = ParseRange("bytes=10-19,0-4", kSize, kDefaultMax);
    ASSERT_EQ(set.kind, Kind::kSatisfiable);
    ASSERT_EQ(set.count, 2u);
    EXPECT_EQ(set.ranges[0].first, 10u);
    EXPECT_EQ(set.ranges[1].first, 0u);
  }
}

}  // namespace
}  // namespace sluice
