// RequestParser::Feed on the request heads sluice sees most: a browser's
// navigation and sub-resource requests, curl's and wrk's.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "sluice/http/http_parser.h"

namespace sluice {
namespace {

constexpr std::string_view kCurl =
    "GET /index.html HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";

constexpr std::string_view kWrk =
    "GET /1k.html HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "\r\n";

// A browser's top-level navigation, header set and order as a current
// Chromium sends them.
constexpr std::string_view kBrowserNavigation =
    "GET /docs/guide/getting-started.html HTTP/1.1\r\n"
    "Host: www.example.org\r\n"
    "Connection: keep-alive\r\n"
    "Cache-Control: max-age=0\r\n"
    "sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Referer: https://www.example.org/docs/\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n"
    "Cookie: theme=dark; session=4f9c2a7e1b3d5f60718293a4b5c6d7e8\r\n"
    "If-None-Match: \"1b2c-3f-17a8d9e1f2a3b4c5\"\r\n"
    "If-Modified-Since: Tue, 14 Nov 2023 08:12:31 GMT\r\n"
    "\r\n";

// A sub-resource (stylesheet) request from the same page.
constexpr std::string_view kBrowserAsset =
    "GET /static/css/site.min.css?v=3f2a9c HTTP/1.1\r\n"
    "Host: www.example.org\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Accept: text/css,*/*;q=0.1\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Dest: style\r\n"
    "Referer: https://www.example.org/docs/guide/getting-started.html\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n"
    "\r\n";

// The whole head in one Feed(), as when one RECV brings it all.
void BM_ParseWhole(benchmark::State& state, std::string_view head) {
  const std::string buffer(head);
  RequestParser parser;
  for (auto _ : state) {
    parser.Reset();
    RequestParser::Status status = parser.Feed(buffer.data(), buffer.size());
    benchmark::DoNotOptimize(status);
    benchmark::DoNotOptimize(parser.request().target.data());
    if (status != RequestParser::Status::kDone) {
      state.SkipWithError("request not parsed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buffer.size()));
  state.SetItemsProcessed(state.iterations());
}

// The same head arriving in `pieces` RECVs: Feed() sees the buffer grow.
void BM_ParseInPieces(benchmark::State& state, std::string_view head) {
  const std::string buffer(head);
  const size_t pieces = static_cast<size_t>(state.range(0));
  RequestParser parser;
  for (auto _ : state) {
    parser.Reset();
    RequestParser::Status status = RequestParser::Status::kNeedMore;
    for (size_t i = 1; i <= pieces && status == RequestParser::Status::kNeedMore; ++i) {
      status = parser.Feed(buffer.data(), buffer.size() * i / pieces);
    }
    benchmark::DoNotOptimize(status);
    if (status != RequestParser::Status::kDone) {
      state.SkipWithError("request not parsed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buffer.size()));
  state.SetItemsProcessed(state.iterations());
}

// Pipelined keep-alive requests in one buffer, parsed one after another
// as Connection does (each request's head starts where the last one ended).
void BM_ParsePipelined(benchmark::State& state) {
  const size_t depth = static_cast<size_t>(state.range(0));
  std::string buffer;
  for (size_t i = 0; i < depth; ++i) buffer.append(kWrk);
  RequestParser parser;
  for (auto _ : state) {
    size_t offset = 0;
    while (offset < buffer.size()) {
      parser.Reset();
      if (parser.Feed(buffer.data() + offset, buffer.size() - offset) !=
          RequestParser::Status::kDone) {
        state.SkipWithError("request not parsed");
        return;
      }
      offset += parser.request().head_bytes;
    }
    benchmark::DoNotOptimize(offset);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buffer.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * depth));
}

BENCHMARK_CAPTURE(BM_ParseWhole, wrk, kWrk);
BENCHMARK_CAPTURE(BM_ParseWhole, curl, kCurl);
BENCHMARK_CAPTURE(BM_ParseWhole, browser_navigation, kBrowserNavigation);
BENCHMARK_CAPTURE(BM_ParseWhole, browser_asset, kBrowserAsset);
BENCHMARK_CAPTURE(BM_ParseInPieces, browser_navigation, kBrowserNavigation)->Arg(2)->Arg(8);
BENCHMARK(BM_ParsePipelined)->Arg(16);

}  // namespace
}  // namespace sluice
