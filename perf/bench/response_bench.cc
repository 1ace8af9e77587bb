// The head of a 200 response for a file, written the way the server's file
// path writes it (src/serve/file_response.cc): status line and common fields,
// Last-Modified, ETag, Vary, Accept-Ranges, Content-Type, Content-Length,
// the blank line; into one std::string reused between responses.
#include <benchmark/benchmark.h>

#include <ctime>
#include <string>
#include <string_view>

#include "sluice/http/http_date.h"
#include "sluice/http/mime.h"
#include "sluice/http/response.h"

namespace sluice {
namespace {

struct FileHeadInputs {
  char date[kHttpDateLength];
  char last_modified[kHttpDateLength];
  std::string etag;
  std::string_view path;
  uint64_t size;
};

FileHeadInputs MakeInputs(std::string_view path, uint64_t size) {
  FileHeadInputs in{};
  FormatHttpDate(1700000000, in.date);
  FormatHttpDate(1699990000, in.last_modified);
  AppendEtag(&in.etag, 1234567, size, 1699990000, 123456789);
  in.path = path;
  in.size = size;
  return in;
}

void WriteFileHead(std::string* out, const FileHeadInputs& in, bool keep_alive) {
  out->clear();
  CommonFields common;
  common.status = 200;
  common.date = std::string_view(in.date, kHttpDateLength);
  common.keep_alive = keep_alive;
  AppendStatusAndCommon(out, common);
  AppendField(out, "Last-Modified", std::string_view(in.last_modified, kHttpDateLength));
  AppendField(out, "ETag", in.etag);
  AppendField(out, "Vary", "Accept-Encoding");
  AppendField(out, "Accept-Ranges", "bytes");
  AppendField(out, "Content-Type", MimeTypeForPath(in.path));
  AppendFieldUint(out, "Content-Length", in.size);
  EndHead(out);
}

void BM_FileHead(benchmark::State& state, std::string_view path, bool keep_alive) {
  const FileHeadInputs in = MakeInputs(path, 1024);
  std::string out;
  out.reserve(512);
  for (auto _ : state) {
    WriteFileHead(&out, in, keep_alive);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
  state.SetItemsProcessed(state.iterations());
}

// The pieces that are computed once per file (in FileInfo::Derive) or once
// per second (DateCache), for scale.
void BM_AppendEtag(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    out.clear();
    AppendEtag(&out, 1234567, 65536, 1699990000, 123456789);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FormatHttpDate(benchmark::State& state) {
  char text[kHttpDateLength];
  time_t t = 1700000000;
  for (auto _ : state) {
    FormatHttpDate(t++, text);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_MimeTypeForPath(benchmark::State& state, std::string_view path) {
  for (auto _ : state) {
    std::string_view type = MimeTypeForPath(path);
    benchmark::DoNotOptimize(type.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_ErrorResponse404(benchmark::State& state) {
  char date[kHttpDateLength];
  FormatHttpDate(1700000000, date);
  CommonFields common;
  common.status = 404;
  common.date = std::string_view(date, kHttpDateLength);
  std::string out;
  out.reserve(512);
  for (auto _ : state) {
    out.clear();
    AppendErrorResponse(&out, common, /*head_only=*/false);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK_CAPTURE(BM_FileHead, html_keep_alive, std::string_view("docs/index.html"), true);
BENCHMARK_CAPTURE(BM_FileHead, jpg_close, std::string_view("images/photo.JPG"), false);
BENCHMARK(BM_AppendEtag);
BENCHMARK(BM_FormatHttpDate);
BENCHMARK_CAPTURE(BM_MimeTypeForPath, html, std::string_view("docs/index.html"));
BENCHMARK_CAPTURE(BM_MimeTypeForPath, unknown, std::string_view("data/blob.xyz123"));
BENCHMARK(BM_ErrorResponse404);

}  // namespace
}  // namespace sluice
