// PathGlob::Matches: every rule of a site is matched against every request's
// path (MatchRules), so its cost is paid once per rule per request. The
// patterns are those of perf/sluice.rules.toml.in's measured site; the path
// is the `rules` scenario's.
#include <benchmark/benchmark.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "sluice/http/path_glob.h"

namespace sluice {
namespace {

void BM_PathGlobMatches(benchmark::State& state, std::string_view pattern, std::string_view path) {
  const absl::StatusOr<PathGlob> glob = PathGlob::Compile(pattern);
  if (!glob.ok()) {
    state.SkipWithError("pattern does not compile");
    return;
  }
  for (auto _ : state) {
    bool matched = glob->Matches(path);
    benchmark::DoNotOptimize(matched);
  }
  state.SetItemsProcessed(state.iterations());
}

constexpr std::string_view kPath = "/1k.html";
constexpr std::string_view kDeepPath = "/static/js/vendor/app.3f2a9c.min.js";

BENCHMARK_CAPTURE(BM_PathGlobMatches, everything, std::string_view("/**"), kPath);
BENCHMARK_CAPTURE(BM_PathGlobMatches, basename_html, std::string_view("*.html"), kPath);
BENCHMARK_CAPTURE(BM_PathGlobMatches, prefix_miss, std::string_view("/assets/**"), kPath);
BENCHMARK_CAPTURE(BM_PathGlobMatches, literal, std::string_view("/robots.txt"), kPath);
BENCHMARK_CAPTURE(BM_PathGlobMatches, everything_deep, std::string_view("/**"), kDeepPath);
BENCHMARK_CAPTURE(BM_PathGlobMatches, segments_deep, std::string_view("/static/**/*.js"),
                  kDeepPath);

}  // namespace
}  // namespace sluice
