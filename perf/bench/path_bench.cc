// ResolveTarget: request-target → path beneath the root (decode once,
// remove dot-segments, note dotfiles and the query).
#include <benchmark/benchmark.h>

#include <string_view>

#include "sluice/http/path.h"

namespace sluice {
namespace {

void BM_ResolveTarget(benchmark::State& state, std::string_view target) {
  ResolvedPath out;
  for (auto _ : state) {
    const PathError error = ResolveTarget(target, &out);
    benchmark::DoNotOptimize(error);
    benchmark::DoNotOptimize(out.relative.data());
    if (error != PathError::kOk) {
      state.SkipWithError("target not resolved");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * target.size()));
  state.SetItemsProcessed(state.iterations());
}

// A fresh ResolvedPath each time: the cost when nothing is reused.
void BM_ResolveTargetFresh(benchmark::State& state, std::string_view target) {
  for (auto _ : state) {
    ResolvedPath out;
    const PathError error = ResolveTarget(target, &out);
    benchmark::DoNotOptimize(error);
    benchmark::DoNotOptimize(out.relative.data());
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(BM_ResolveTarget, root, std::string_view("/"));
BENCHMARK_CAPTURE(BM_ResolveTarget, short_file, std::string_view("/1k.html"));
BENCHMARK_CAPTURE(BM_ResolveTarget, nested_with_query,
                  std::string_view("/static/js/vendor/app.3f2a9c.min.js?v=20240301&lang=en"));
BENCHMARK_CAPTURE(BM_ResolveTarget, percent_encoded,
                  std::string_view("/docs/R%C3%A9sum%C3%A9%20de%20l%27ann%C3%A9e%202024.pdf"));
BENCHMARK_CAPTURE(BM_ResolveTarget, dot_segments,
                  std::string_view("/a/b/./c/../d/./e/../../f/index.html"));
BENCHMARK_CAPTURE(BM_ResolveTarget, absolute_form,
                  std::string_view("http://www.example.org:8080/images/photos/2024/img_0042.jpg"));
BENCHMARK_CAPTURE(BM_ResolveTargetFresh, nested_with_query,
                  std::string_view("/static/js/vendor/app.3f2a9c.min.js?v=20240301&lang=en"));

}  // namespace
}  // namespace sluice
