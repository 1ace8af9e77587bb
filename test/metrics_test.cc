// Metrics: Histogram bucket edges, HistogramSnapshot::Quantile and Merge,
// and the two renderings of a scrape (JSON parsed back with nlohmann::json,
// Prometheus text checked line by line against the exposition format).

#include "sluice/serve/metrics.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sluice/io/operation.h"

namespace sluice {
namespace {

using Json = nlohmann::json;

constexpr std::array<uint64_t, 4> kSmallBounds = {10, 20, 50, 100};

size_t Op(OpKind k) { return static_cast<size_t>(k); }

// ----------------------------------------------------------- Histogram --

TEST(Histogram, ValueEqualToABoundLandsInThatBucket) {
  Histogram<kSmallBounds.size()> h(kSmallBounds);
  for (uint64_t v : kSmallBounds) h.Record(v);
  const HistogramSnapshot s = h.Snapshot();
  ASSERT_EQ(s.counts.size(), kSmallBounds.size() + 1);
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{1, 1, 1, 1, 0}));
}

TEST(Histogram, ValueJustAboveABoundLandsInTheNextBucket) {
  Histogram<kSmallBounds.size()> h(kSmallBounds);
  h.Record(0);
  h.Record(11);
  h.Record(21);
  h.Record(51);
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.counts, (std::vector<uint64_t>{1, 1, 1, 1, 0}));
}

TEST(Histogram, AboveTheLastBoundGoesToInf) {
  Histogram<kSmallBounds.size()> h(kSmallBounds);
  h.Record(101);
  h.Record(UINT64_C(1) << 40);
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.counts.back(), 2u);
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.sum, 101u + (UINT64_C(1) << 40));
}

TEST(Histogram, SnapshotCarriesBoundsCountAndSum) {
  Histogram<kLatencyBoundsUs.size()> h(kLatencyBoundsUs);
  uint64_t sum = 0;
  for (uint64_t v = 0; v < 1000; v += 7) {
    h.Record(v);
    sum += v;
  }
  const HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.bounds, std::vector<uint64_t>(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end()));
  EXPECT_EQ(s.counts.size(), kLatencyBoundsUs.size() + 1);
  uint64_t n = 0;
  for (uint64_t c : s.counts) n += c;
  EXPECT_EQ(n, s.count);
  EXPECT_EQ(s.count, (1000u + 6) / 7);
  EXPECT_EQ(s.sum, sum);
}

TEST(Histogram, LatencyBoundsAreStrictlyIncreasing) {
  for (size_t i = 1; i < kLatencyBoundsUs.size(); ++i) {
    EXPECT_LT(kLatencyBoundsUs[i - 1], kLatencyBoundsUs[i]);
  }
  for (size_t i = 1; i < kBatchBounds.size(); ++i) EXPECT_LT(kBatchBounds[i - 1], kBatchBounds[i]);
}

// ------------------------------------------------------------ Quantile --

HistogramSnapshot Snap(std::vector<uint64_t> bounds, std::vector<uint64_t> counts) {
  HistogramSnapshot s;
  s.bounds = std::move(bounds);
  s.counts = std::move(counts);
  for (uint64_t c : s.counts) s.count += c;
  return s;
}

TEST(Quantile, EmptyIsZero) {
  HistogramSnapshot s = Snap({10, 20}, {0, 0, 0});
  EXPECT_EQ(s.Quantile(0.5), 0);
  EXPECT_EQ(HistogramSnapshot().Quantile(0.99), 0);
}

TEST(Quantile, InterpolatesInsideTheBucket) {
  const HistogramSnapshot s = Snap({10, 20, 50}, {0, 4, 0, 0});
  EXPECT_DOUBLE_EQ(s.Quantile(0.5), 15);
  EXPECT_DOUBLE_EQ(s.Quantile(0.25), 12.5);
  EXPECT_DOUBLE_EQ(s.Quantile(1.0), 20);
  // The first bucket's lower edge is 0.
  const HistogramSnapshot first = Snap({10, 20}, {2, 0, 0});
  EXPECT_DOUBLE_EQ(first.Quantile(0.5), 5);
}

TEST(Quantile, InfBucketAnswersTheLastFiniteBound) {
  const HistogramSnapshot s = Snap({10, 20}, {1, 0, 9});
  EXPECT_DOUBLE_EQ(s.Quantile(0.5), 20);
  EXPECT_DOUBLE_EQ(s.Quantile(0.99), 20);
}

TEST(Quantile, OutOfRangeQIsClamped) {
  const HistogramSnapshot s = Snap({10, 20}, {0, 4, 0});
  EXPECT_DOUBLE_EQ(s.Quantile(-1), s.Quantile(0));
  EXPECT_DOUBLE_EQ(s.Quantile(2), s.Quantile(1));
}

// The bucket index a value falls in (bounds inclusive; bounds.size() is +Inf).
size_t BucketOf(const std::vector<uint64_t>& bounds, uint64_t v) {
  return static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
}

TEST(Quantile, EstimateLiesInTheBucketOfTheTrueQuantile) {
  std::mt19937_64 rng(20261126);
  // Log-uniform latencies from 0.5 µs to ~30 s: every bucket, +Inf included.
  std::uniform_real_distribution<double> exponent(-0.3, 7.5);
  const std::vector<uint64_t> bounds(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end());
  for (int round = 0; round < 50; ++round) {
    Histogram<kLatencyBoundsUs.size()> h(kLatencyBoundsUs);
    const size_t n = 1 + rng() % 2000;
    std::vector<uint64_t> samples;
    for (size_t i = 0; i < n; ++i) {
      const auto v = static_cast<uint64_t>(std::pow(10.0, exponent(rng)));
      samples.push_back(v);
      h.Record(v);
    }
    std::sort(samples.begin(), samples.end());
    const HistogramSnapshot s = h.Snapshot();
    for (double q : {0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0}) {
      // Nearest-rank reference: the k-th smallest, k = ceil(q n), at least 1.
      const double rank = q * static_cast<double>(n);
      const size_t k = std::max<size_t>(1, static_cast<size_t>(std::ceil(rank)));
      const uint64_t truth = samples[k - 1];
      const size_t b = BucketOf(bounds, truth);
      const double est = s.Quantile(q);
      SCOPED_TRACE("round " + std::to_string(round) + " n=" + std::to_string(n) +
                   " q=" + std::to_string(q) + " truth=" + std::to_string(truth));
      if (b == bounds.size()) {
        EXPECT_DOUBLE_EQ(est, static_cast<double>(bounds.back()));
      } else {
        const double lower = b == 0 ? 0 : static_cast<double>(bounds[b - 1]);
        EXPECT_GE(est, lower);
        EXPECT_LE(est, static_cast<double>(bounds[b]));
      }
    }
  }
}

TEST(Quantile, IsMonotoneInQ) {
  std::mt19937_64 rng(7);
  Histogram<kLatencyBoundsUs.size()> h(kLatencyBoundsUs);
  for (int i = 0; i < 5000; ++i) h.Record(rng() % 3000000);
  const HistogramSnapshot s = h.Snapshot();
  double prev = -1;
  for (int i = 0; i <= 1000; ++i) {
    const double est = s.Quantile(i / 1000.0);
    EXPECT_GE(est, prev) << "q=" << i / 1000.0;
    prev = est;
  }
}

// --------------------------------------------------------------- Merge --

TEST(Merge, IntoEmptyCopies) {
  const HistogramSnapshot b = Snap({10, 20}, {1, 2, 3});
  HistogramSnapshot a;
  a.Merge(b);
  EXPECT_EQ(a.bounds, b.bounds);
  EXPECT_EQ(a.counts, b.counts);
  EXPECT_EQ(a.count, 6u);
}

TEST(Merge, AddsCountsCountAndSum) {
  Histogram<kSmallBounds.size()> x(kSmallBounds), y(kSmallBounds), both(kSmallBounds);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 300; ++i) {
    const uint64_t v = rng() % 150;
    ((i % 3 == 0) ? x : y).Record(v);
    both.Record(v);
  }
  HistogramSnapshot m = x.Snapshot();
  m.Merge(y.Snapshot());
  const HistogramSnapshot want = both.Snapshot();
  EXPECT_EQ(m.bounds, want.bounds);
  EXPECT_EQ(m.counts, want.counts);
  EXPECT_EQ(m.count, want.count);
  EXPECT_EQ(m.sum, want.sum);
  EXPECT_DOUBLE_EQ(m.Quantile(0.9), want.Quantile(0.9));
}

TEST(Merge, EmptyOtherChangesNothing) {
  HistogramSnapshot a = Snap({10, 20}, {1, 2, 3});
  a.sum = 99;
  a.Merge(Snap({10, 20}, {0, 0, 0}));
  EXPECT_EQ(a.counts, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(a.count, 6u);
  EXPECT_EQ(a.sum, 99u);
}

// ------------------------------------------------------- the renderings --

constexpr int64_t kStartNs = 5'000'000'000;
constexpr int64_t kNowNs = kStartNs + 12'500'000'000;  // 12.5 s of uptime.

ServerInfo Info() {
  ServerInfo info;
  info.version = "0.1.0";
  info.threads = 2;
  info.ring_flags = "SINGLE_ISSUER|DEFER_TASKRUN";
  info.kernel = "6.1.0-test";
  info.start_time_unix = 1700000000;  // 2023-11-14T22:13:20Z
  info.start_monotonic_ns = kStartNs;
  info.pipe_bytes = 512 * 1024;
  info.pipe_idle_max = 8;
  info.pipe_budget_bytes = 32 << 20;
  info.pipe_user_limit_pages = 16384;
  return info;
}

// Two workers with distinct, known values in every field.
struct Fixture {
  std::vector<std::unique_ptr<WorkerMetrics>> owned;
  std::vector<const WorkerMetrics*> workers;

  Fixture() {
    for (int i = 0; i < 2; ++i) {
      owned.push_back(std::make_unique<WorkerMetrics>());
      WorkerMetrics& w = *owned.back();
      const uint64_t k = static_cast<uint64_t>(i) + 1;
      w.cpu = i;
      w.sq_entries.Set(1024);
      w.cq_entries.Set(4096);
      w.sq_ready.Set(k);
      w.cq_ready.Set(2 * k);
      w.in_flight[Op(OpKind::kAccept)].Set(1);
      w.in_flight[Op(OpKind::kWake)].Set(1);
      w.in_flight[Op(OpKind::kRead)].Set(k);
      w.in_flight[Op(OpKind::kTick)].Set(1);
      w.in_flight[Op(OpKind::kLingerTimeout)].Set(k);
      w.in_flight[Op(OpKind::kAcceptRetry)].Set(1);
      w.in_flight[Op(OpKind::kRecv)].Set(3 * k);
      w.in_flight[Op(OpKind::kSend)].Set(4 * k);
      w.in_flight[Op(OpKind::kSpliceIn)].Set(3 * k);
      w.in_flight[Op(OpKind::kOpen)].Set(5);
      w.in_flight[Op(OpKind::kStatx)].Set(6);
      w.in_flight[Op(OpKind::kLogWrite)].Set(1);
      w.in_flight[Op(OpKind::kPollOut)].Set(7);
      w.in_flight[Op(OpKind::kShutdown)].Set(8);
      w.in_flight[Op(OpKind::kClose)].Set(9);
      w.in_flight[Op(OpKind::kCloseFile)].Set(10);
      w.in_flight[Op(OpKind::kCancel)].Set(11);
      w.cq_overflow_total.Set(0);
      w.submit_calls_total.Set(100 * k);
      w.cqes_total.Set(150 * k);
      for (uint64_t b : {1, 1, 3, 700}) w.batch.Record(b * k);
      w.active.Set(5 * k);
      w.idle_keepalive.Set(2 * k);
      w.accepted_total.Set(50 * k);
      w.closed_total.Set(45 * k);
      w.rejected_total.Set(k);
      w.timeouts_total.Set(2 * k);
      for (uint64_t n = 0; n < 10 * k; ++n) w.CountRequest(MethodClass::kGet, 200);
      for (uint64_t n = 0; n < k; ++n) w.CountRequest(MethodClass::kHead, 304);
      w.CountRequest(MethodClass::kGet, 404);
      if (i == 1) w.CountRequest(MethodClass::kOther, 405);
      w.CountRequest(MethodClass::kOptions, 204);
      w.CountRequest(MethodClass::kGet, 99);   // Out of range: ignored.
      w.CountRequest(MethodClass::kGet, 600);  // Out of range: ignored.
      w.bytes_sent_total.Set(123456 * k);
      for (uint64_t us : {3, 40, 40, 800, 15000}) w.latency_us.Record(us * k);
      w.log_lines_total.Set(17 * k);
      w.log_write_errors_total.Set(k - 1);
      w.log_dropped_lines_total.Set(0);
      w.file_cache_hits_total.Set(30 * k);
      w.file_cache_misses_total.Set(4 * k);
      w.file_cache_evictions_total.Set(k - 1);
      w.file_cache_entries.Set(12 * k);
      w.file_cache_content_bytes.Set(4096 * k);
      w.recv_buffers.Set(64 * k);
      w.recv_buffers_free.Set(60 * k);
      w.pipes_lent.Set(k);
      w.pipes_idle.Set(3 * k);
      w.pipes_held_bytes.Set(65536 * k);
      w.pipes_resize_failed_total.Set(5 * k);
      w.pipes_over_budget_total.Set(7 * k);
      w.request_states.Set(9 * k);
      w.request_states_spare.Set(8 * k);
      workers.push_back(&w);
    }
  }
};

Json RenderJson(const Fixture& f) {
  const std::string text = RenderMetricsJson(Info(), f.workers, kNowNs);
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  return Json::parse(text);  // Throws (and fails the test) if malformed.
}

const char* const kOpGroups[] = {"accept", "recv", "send",     "splice", "openat", "statx",  "read",
                                 "write",  "poll", "shutdown", "close",  "cancel", "timeout"};

void ExpectUint(const Json& j, const char* key) {
  ASSERT_TRUE(j.contains(key)) << key << " missing in " << j.dump();
  EXPECT_TRUE(j[key].is_number_unsigned()) << key << " = " << j[key].dump();
}

TEST(RenderMetricsJson, ServerSection) {
  Fixture f;
  const Json j = RenderJson(f);
  const Json& s = j.at("server");
  EXPECT_EQ(s.at("version"), "0.1.0");
  EXPECT_DOUBLE_EQ(s.at("uptime_seconds").get<double>(), 12.5);
  EXPECT_EQ(s.at("threads"), 2);
  EXPECT_EQ(s.at("io_uring_setup_flags"), "SINGLE_ISSUER|DEFER_TASKRUN");
  EXPECT_EQ(s.at("kernel_release"), "6.1.0-test");
  EXPECT_EQ(s.at("start_time"), "2023-11-14T22:13:20Z");
  EXPECT_EQ(s.at("start_time_unix_seconds"), 1700000000);
  const Json& pipes = s.at("pipes");
  EXPECT_EQ(pipes.at("bytes"), 512 * 1024);
  EXPECT_EQ(pipes.at("idle_max"), 8);
  EXPECT_EQ(pipes.at("budget_bytes"), 32 << 20);
  EXPECT_EQ(pipes.at("user_limit_pages"), 16384);
}

TEST(RenderMetricsJson, WorkerFieldsHaveTheRightTypesAndValues) {
  Fixture f;
  const Json j = RenderJson(f);
  ASSERT_TRUE(j.at("workers").is_array());
  ASSERT_EQ(j.at("workers").size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE("worker " + std::to_string(i));
    const Json& w = j.at("workers")[i];
    const uint64_t k = i + 1;
    EXPECT_EQ(w.at("worker"), i);
    EXPECT_EQ(w.at("cpu"), static_cast<int>(i));
    const Json& r = w.at("ring");
    for (const char* key : {"sq_entries", "cq_entries", "sq_ready", "cq_ready", "cq_overflow_total",
                            "submit_calls_total", "cqes_total"}) {
      ExpectUint(r, key);
    }
    EXPECT_EQ(r.at("sq_entries"), 1024u);
    EXPECT_EQ(r.at("cq_entries"), 4096u);
    EXPECT_EQ(r.at("sq_ready"), k);
    EXPECT_EQ(r.at("cq_ready"), 2 * k);
    EXPECT_EQ(r.at("submit_calls_total"), 100 * k);
    EXPECT_EQ(r.at("cqes_total"), 150 * k);
    const Json& fl = r.at("in_flight");
    EXPECT_EQ(fl.size(), 1 + std::size(kOpGroups));
    for (const char* g : kOpGroups) ExpectUint(fl, g);
    EXPECT_EQ(fl.at("accept"), 1u);
    EXPECT_EQ(fl.at("recv"), 3 * k);
    EXPECT_EQ(fl.at("send"), 4 * k);
    EXPECT_EQ(fl.at("splice"), 3 * k);  // in + out
    EXPECT_EQ(fl.at("openat"), 5u);
    EXPECT_EQ(fl.at("statx"), 6u);
    EXPECT_EQ(fl.at("read"), 1 + k);  // file reads + the wake eventfd
    EXPECT_EQ(fl.at("write"), 1u);
    EXPECT_EQ(fl.at("poll"), 7u);
    EXPECT_EQ(fl.at("shutdown"), 8u);
    EXPECT_EQ(fl.at("close"), 19u);  // sockets + files
    EXPECT_EQ(fl.at("cancel"), 11u);
    EXPECT_EQ(fl.at("timeout"), 2 + k);  // linger + tick + accept retry
    uint64_t groups = 0;
    for (const char* g : kOpGroups) groups += fl[g].get<uint64_t>();
    EXPECT_EQ(fl.at("total").get<uint64_t>(), groups);
    const Json& b = r.at("batch_size");
    EXPECT_EQ(b.at("count"), 4u);
    EXPECT_EQ(b.at("sum"), (1 + 1 + 3 + 700) * k);
    ASSERT_EQ(b.at("buckets").size(), kBatchBounds.size() + 1);
    EXPECT_EQ(b.at("buckets").back().at("le"), "+Inf");
    EXPECT_EQ(b.at("buckets")[0].at("le"), 1);

    const Json& c = w.at("connections");
    EXPECT_EQ(c.at("active"), 5 * k);
    EXPECT_EQ(c.at("idle_keepalive"), 2 * k);
    EXPECT_EQ(c.at("accepted_total"), 50 * k);
    EXPECT_EQ(c.at("closed_total"), 45 * k);
    EXPECT_EQ(c.at("rejected_total"), k);
    EXPECT_EQ(c.at("timeouts_total"), 2 * k);

    const Json& q = w.at("requests");
    const uint64_t total = 10 * k + k + 1 + (i == 1 ? 1 : 0) + 1;
    EXPECT_EQ(q.at("total"), total);
    EXPECT_EQ(q.at("by_status").at("200"), 10 * k);
    EXPECT_EQ(q.at("by_status").at("304"), k);
    EXPECT_EQ(q.at("by_status").at("404"), 1u);
    EXPECT_EQ(q.at("by_status").at("204"), 1u);
    EXPECT_EQ(q.at("by_status").contains("405"), i == 1);
    EXPECT_FALSE(q.at("by_status").contains("99"));
    EXPECT_FALSE(q.at("by_status").contains("600"));
    EXPECT_EQ(q.at("by_method").at("GET"), 10 * k + 1);
    EXPECT_EQ(q.at("by_method").at("HEAD"), k);
    EXPECT_EQ(q.at("by_method").at("OPTIONS"), 1u);
    EXPECT_EQ(q.at("by_method").contains("OTHER"), i == 1);
    uint64_t sum_status = 0, sum_method = 0;
    for (const auto& [code, n] : q.at("by_status").items()) sum_status += n.get<uint64_t>();
    for (const auto& [m, n] : q.at("by_method").items()) sum_method += n.get<uint64_t>();
    EXPECT_EQ(sum_status, total);
    EXPECT_EQ(sum_method, total);

    EXPECT_EQ(w.at("bytes_sent_total"), 123456 * k);
    EXPECT_EQ(w.at("access_log").at("lines_total"), 17 * k);
    EXPECT_EQ(w.at("access_log").at("write_errors_total"), k - 1);
    EXPECT_EQ(w.at("access_log").at("dropped_lines_total"), 0u);
    const Json& fc = w.at("file_cache");
    EXPECT_EQ(fc.at("hits_total"), 30 * k);
    EXPECT_EQ(fc.at("misses_total"), 4 * k);
    EXPECT_EQ(fc.at("evictions_total"), k - 1);
    EXPECT_EQ(fc.at("entries"), 12 * k);
    EXPECT_EQ(fc.at("content_bytes"), 4096 * k);

    const Json& l = w.at("latency");
    EXPECT_EQ(l.at("count"), 5u);
    EXPECT_NEAR(l.at("sum_seconds").get<double>(), (3 + 40 + 40 + 800 + 15000) * k / 1e6, 1e-12);
    const HistogramSnapshot snap = f.owned[i]->latency_us.Snapshot();
    EXPECT_DOUBLE_EQ(l.at("p50_seconds").get<double>(), snap.Quantile(0.5) / 1e6);
    EXPECT_DOUBLE_EQ(l.at("p90_seconds").get<double>(), snap.Quantile(0.9) / 1e6);
    EXPECT_DOUBLE_EQ(l.at("p99_seconds").get<double>(), snap.Quantile(0.99) / 1e6);
    EXPECT_DOUBLE_EQ(l.at("p999_seconds").get<double>(), snap.Quantile(0.999) / 1e6);
    ASSERT_EQ(l.at("buckets").size(), kLatencyBoundsUs.size() + 1);
    for (size_t n = 0; n < kLatencyBoundsUs.size(); ++n) {
      EXPECT_DOUBLE_EQ(l.at("buckets")[n].at("le_seconds").get<double>(),
                       static_cast<double>(kLatencyBoundsUs[n]) / 1e6);
      EXPECT_EQ(l.at("buckets")[n].at("count"), snap.counts[n]);
    }
    EXPECT_EQ(l.at("buckets").back().at("le_seconds"), "+Inf");
  }
}

TEST(RenderMetricsJson, TotalsAreSumsOverWorkers) {
  Fixture f;
  const Json j = RenderJson(f);
  const Json& t = j.at("totals");
  const Json& w = j.at("workers");
  auto sum = [&](const Json::json_pointer& p) {
    uint64_t n = 0;
    for (const Json& one : w) n += one.value(p, uint64_t{0});
    return n;
  };
  for (const char* path : {"/ring/sq_ready",
                           "/ring/cq_ready",
                           "/ring/cq_overflow_total",
                           "/ring/submit_calls_total",
                           "/ring/cqes_total",
                           "/ring/in_flight/total",
                           "/ring/batch_size/count",
                           "/ring/batch_size/sum",
                           "/connections/active",
                           "/connections/idle_keepalive",
                           "/connections/accepted_total",
                           "/connections/closed_total",
                           "/connections/rejected_total",
                           "/connections/timeouts_total",
                           "/requests/total",
                           "/requests/by_status/200",
                           "/requests/by_status/304",
                           "/requests/by_status/404",
                           "/requests/by_status/405",
                           "/requests/by_status/204",
                           "/requests/by_method/GET",
                           "/requests/by_method/HEAD",
                           "/requests/by_method/OPTIONS",
                           "/requests/by_method/OTHER",
                           "/bytes_sent_total",
                           "/access_log/lines_total",
                           "/access_log/write_errors_total",
                           "/access_log/dropped_lines_total",
                           "/file_cache/entries",
                           "/file_cache/content_bytes",
                           "/file_cache/hits_total",
                           "/file_cache/misses_total",
                           "/file_cache/evictions_total",
                           "/buffers/recv_buffers",
                           "/buffers/recv_buffers_free",
                           "/buffers/pipes_lent",
                           "/buffers/pipes_idle",
                           "/buffers/pipes_held_bytes",
                           "/buffers/pipes_resize_failed_total",
                           "/buffers/pipes_over_budget_total",
                           "/buffers/request_states",
                           "/buffers/request_states_spare",
                           "/latency/count"}) {
    const Json::json_pointer p(path);
    ASSERT_TRUE(t.contains(p)) << path;
    EXPECT_EQ(t.at(p).get<uint64_t>(), sum(p)) << path;
  }
  for (const char* g : kOpGroups) {
    const Json::json_pointer p(std::string("/ring/in_flight/") + g);
    EXPECT_EQ(t.at(p).get<uint64_t>(), sum(p)) << g;
  }
  EXPECT_EQ(t.at("ring").at("in_flight").size(), 1 + std::size(kOpGroups));
  // Histograms: bucket by bucket.
  for (size_t n = 0; n <= kLatencyBoundsUs.size(); ++n) {
    EXPECT_EQ(t.at("latency").at("buckets")[n].at("count").get<uint64_t>(),
              w[0].at("latency").at("buckets")[n].at("count").get<uint64_t>() +
                  w[1].at("latency").at("buckets")[n].at("count").get<uint64_t>());
  }
  for (size_t n = 0; n <= kBatchBounds.size(); ++n) {
    EXPECT_EQ(t.at("ring").at("batch_size").at("buckets")[n].at("count").get<uint64_t>(),
              w[0].at("ring").at("batch_size").at("buckets")[n].at("count").get<uint64_t>() +
                  w[1].at("ring").at("batch_size").at("buckets")[n].at("count").get<uint64_t>());
  }
  EXPECT_NEAR(t.at("latency").at("sum_seconds").get<double>(),
              w[0].at("latency").at("sum_seconds").get<double>() +
                  w[1].at("latency").at("sum_seconds").get<double>(),
              1e-12);
  HistogramSnapshot merged = f.owned[0]->latency_us.Snapshot();
  merged.Merge(f.owned[1]->latency_us.Snapshot());
  EXPECT_DOUBLE_EQ(t.at("latency").at("p50_seconds").get<double>(), merged.Quantile(0.5) / 1e6);
  EXPECT_DOUBLE_EQ(t.at("latency").at("p99_seconds").get<double>(), merged.Quantile(0.99) / 1e6);
}

TEST(RenderMetricsJson, NoWorkersAndNoTraffic) {
  const Json j = Json::parse(RenderMetricsJson(Info(), {}, kNowNs));
  EXPECT_TRUE(j.at("workers").empty());
  EXPECT_EQ(j.at("totals").at("requests").at("total"), 0u);
  EXPECT_TRUE(j.at("totals").at("requests").at("by_status").is_object());
  EXPECT_TRUE(j.at("totals").at("requests").at("by_method").is_object());
  EXPECT_EQ(j.at("totals").at("latency").at("p99_seconds"), 0.0);
  WorkerMetrics idle;
  const Json k = Json::parse(RenderMetricsJson(Info(), {&idle}, kNowNs));
  EXPECT_EQ(k.at("workers").size(), 1u);
  EXPECT_TRUE(k.at("workers")[0].at("requests").at("by_status").is_object());
  EXPECT_EQ(k.at("totals").at("latency").at("buckets").size(), kLatencyBoundsUs.size() + 1);
}

// ---------------------------------------------------------- Prometheus --

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
  size_t line = 0;
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> type;  // family → type
  std::map<std::string, int> help_count, type_count;
  std::vector<std::string> errors;
};

// Parses `{a="x",b="y"}` with the exposition format's escapes (\\, \", \n).
bool ParseLabels(const std::string& s, size_t* pos, std::map<std::string, std::string>* out) {
  static const std::regex kName("[a-zA-Z_][a-zA-Z0-9_]*");
  ++*pos;  // '{'
  while (*pos < s.size() && s[*pos] != '}') {
    const size_t eq = s.find('=', *pos);
    if (eq == std::string::npos) return false;
    const std::string name = s.substr(*pos, eq - *pos);
    if (!std::regex_match(name, kName)) return false;
    if (eq + 1 >= s.size() || s[eq + 1] != '"') return false;
    std::string value;
    size_t i = eq + 2;
    for (; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] == '\n') return false;
      if (s[i] == '\\') {
        if (++i >= s.size()) return false;
        if (s[i] == 'n') {
          value += '\n';
        } else if (s[i] == '\\' || s[i] == '"') {
          value += s[i];
        } else {
          return false;
        }
      } else {
        value += s[i];
      }
    }
    if (i >= s.size()) return false;
    if (out->count(name) != 0) return false;
    (*out)[name] = value;
    *pos = i + 1;
    if (*pos < s.size() && s[*pos] == ',') ++*pos;
  }
  if (*pos >= s.size()) return false;
  ++*pos;  // '}'
  return true;
}

bool ParseValue(const std::string& text, double* v) {
  if (text == "+Inf") {
    *v = INFINITY;
    return true;
  }
  if (text == "-Inf") {
    *v = -INFINITY;
    return true;
  }
  if (text == "NaN") {
    *v = NAN;
    return true;
  }
  static const std::regex kNumber("[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  if (!std::regex_match(text, kNumber)) return false;
  *v = std::stod(text);
  return true;
}

std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& type) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = type.find(base);
      if (it != type.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

Exposition ParseExposition(const std::string& text) {
  static const std::regex kMetricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                               "untyped"};
  Exposition e;
  std::istringstream in(text);
  std::string line;
  size_t n = 0;
  std::string current_family;
  std::set<std::string> finished_families;
  auto error = [&](const std::string& what) {
    e.errors.push_back("line " + std::to_string(n) + ": " + what + ": " + line);
  };
  if (text.empty() || text.back() != '\n') e.errors.push_back("does not end in a newline");
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) {
      error("empty line");
      continue;
    }
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // A plain comment.
      if (!std::regex_match(name, kMetricName)) error("bad metric name");
      if (kind == "HELP") {
        ++e.help_count[name];
      } else {
        std::string type, extra;
        words >> type;
        if (kTypes.count(type) == 0) error("bad type");
        if (words >> extra) error("junk after TYPE");
        if (e.type.count(name) != 0) error("second TYPE");
        // TYPE must come before the family's first sample.
        for (const Sample& s : e.samples) {
          if (FamilyOf(s.name, {{name, type}}) == name) {
            error("TYPE after a sample of its family");
            break;
          }
        }
        e.type[name] = type;
        ++e.type_count[name];
      }
      continue;
    }
    Sample s;
    s.line = n;
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    s.name = line.substr(0, pos);
    if (!std::regex_match(s.name, kMetricName)) {
      error("bad metric name");
      continue;
    }
    if (pos < line.size() && line[pos] == '{' && !ParseLabels(line, &pos, &s.labels)) {
      error("bad labels");
      continue;
    }
    if (pos >= line.size() || line[pos] != ' ') {
      error("no single space before the value");
      continue;
    }
    const std::string rest = line.substr(pos + 1);
    const size_t space = rest.find(' ');
    const std::string value = rest.substr(0, space);
    if (!ParseValue(value, &s.value)) {
      error("bad value '" + value + "'");
      continue;
    }
    if (space != std::string::npos) {
      // Only a timestamp (an integer) may follow.
      if (!std::regex_match(rest.substr(space + 1), std::regex("-?[0-9]+"))) error("bad timestamp");
    }
    const std::string family = FamilyOf(s.name, e.type);
    if (e.type.count(family) == 0) error("sample without a TYPE for " + family);
    if (family != current_family) {
      if (finished_families.count(family) != 0) error("family " + family + " is not contiguous");
      if (!current_family.empty()) finished_families.insert(current_family);
      current_family = family;
    }
    e.samples.push_back(std::move(s));
  }
  return e;
}

std::string LabelsWithout(const std::map<std::string, std::string>& labels, const char* drop) {
  std::string key;
  for (const auto& [k, v] : labels) {
    if (k != drop) key += k + "=" + v + ";";
  }
  return key;
}

// Every histogram: per label set, buckets with increasing le, cumulative
// counts never falling, the last le="+Inf" and equal to _count.
void CheckHistograms(const Exposition& e) {
  for (const auto& [family, type] : e.type) {
    if (type != "histogram") continue;
    SCOPED_TRACE(family);
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // (le, count)
    std::map<std::string, double> counts, sums;
    for (const Sample& s : e.samples) {
      if (s.name == family + "_bucket") {
        auto le = s.labels.find("le");
        ASSERT_NE(le, s.labels.end()) << "line " << s.line;
        double bound = 0;
        ASSERT_TRUE(ParseValue(le->second, &bound)) << "le=" << le->second;
        buckets[LabelsWithout(s.labels, "le")].emplace_back(bound, s.value);
      } else if (s.name == family + "_count") {
        counts[LabelsWithout(s.labels, "le")] = s.value;
      } else if (s.name == family + "_sum") {
        sums[LabelsWithout(s.labels, "le")] = s.value;
      } else if (s.name == family) {
        ADD_FAILURE() << "bare sample " << s.name << " of a histogram";
      }
    }
    ASSERT_FALSE(buckets.empty());
    for (const auto& [key, list] : buckets) {
      SCOPED_TRACE(key);
      ASSERT_FALSE(list.empty());
      for (size_t i = 1; i < list.size(); ++i) {
        EXPECT_LT(list[i - 1].first, list[i].first) << "le not increasing";
        EXPECT_LE(list[i - 1].second, list[i].second) << "buckets not cumulative";
      }
      EXPECT_TRUE(std::isinf(list.back().first)) << "last bucket is not +Inf";
      ASSERT_EQ(counts.count(key), 1u) << "no _count";
      ASSERT_EQ(sums.count(key), 1u) << "no _sum";
      EXPECT_EQ(list.back().second, counts[key]) << "+Inf bucket != _count";
    }
  }
}

TEST(RenderMetricsPrometheus, LinesAreWellFormed) {
  Fixture f;
  const std::string text = RenderMetricsPrometheus(Info(), f.workers, kNowNs);
  const Exposition e = ParseExposition(text);
  for (const std::string& err : e.errors) ADD_FAILURE() << err;
  EXPECT_GT(e.samples.size(), 50u);
  // HELP and TYPE exactly once per family, and every family has both.
  for (const auto& [name, n] : e.type_count) {
    EXPECT_EQ(n, 1) << "TYPE of " << name;
    EXPECT_EQ(e.help_count.count(name) ? e.help_count.at(name) : 0, 1) << "HELP of " << name;
  }
  for (const auto& [name, n] : e.help_count) EXPECT_EQ(e.type_count.count(name), 1u) << name;
  // Counters end in _total (or are histogram parts); no duplicate series.
  std::set<std::string> series;
  for (const Sample& s : e.samples) {
    const std::string id = s.name + "{" + LabelsWithout(s.labels, "") + "}";
    EXPECT_TRUE(series.insert(id).second) << "duplicate series " << id;
    const std::string family = FamilyOf(s.name, e.type);
    if (e.type.at(family) == "counter") {
      EXPECT_TRUE(s.name.size() > 6 && s.name.substr(s.name.size() - 6) == "_total") << s.name;
    }
    EXPECT_GE(s.value, 0) << s.name;
  }
  CheckHistograms(e);
}

std::vector<Sample> Find(const Exposition& e, const std::string& name) {
  std::vector<Sample> out;
  for (const Sample& s : e.samples) {
    if (s.name == name) out.push_back(s);
  }
  return out;
}

TEST(RenderMetricsPrometheus, ValuesMatchTheWorkers) {
  Fixture f;
  const Exposition e = ParseExposition(RenderMetricsPrometheus(Info(), f.workers, kNowNs));
  ASSERT_TRUE(e.errors.empty());
  EXPECT_EQ(e.type.at("sluice_http_requests_total"), "counter");
  EXPECT_EQ(e.type.at("sluice_http_request_duration_seconds"), "histogram");
  EXPECT_EQ(e.type.at("sluice_ring_batch_size"), "histogram");
  EXPECT_EQ(e.type.at("sluice_connections_active"), "gauge");
  EXPECT_EQ(e.type.at("sluice_ring_in_flight"), "gauge");

  std::map<std::pair<std::string, std::string>, double> req;
  double total = 0;
  for (const Sample& s : Find(e, "sluice_http_requests_total")) {
    req[{s.labels.at("code"), s.labels.at("method")}] = s.value;
    total += s.value;
    EXPECT_EQ(s.labels.size(), 2u);
  }
  EXPECT_EQ((req[{"200", "GET"}]), 30);
  EXPECT_EQ((req[{"304", "HEAD"}]), 3);
  EXPECT_EQ((req[{"404", "GET"}]), 2);
  EXPECT_EQ((req[{"405", "OTHER"}]), 1);
  EXPECT_EQ((req[{"204", "OPTIONS"}]), 2);
  EXPECT_EQ(total, 38);

  const std::vector<Sample> count = Find(e, "sluice_http_request_duration_seconds_count");
  ASSERT_EQ(count.size(), 1u);
  EXPECT_EQ(count[0].value, 10);
  const std::vector<Sample> sum = Find(e, "sluice_http_request_duration_seconds_sum");
  ASSERT_EQ(sum.size(), 1u);
  EXPECT_NEAR(sum[0].value, (3 + 40 + 40 + 800 + 15000) * 3 / 1e6, 1e-9);
  const std::vector<Sample> buckets = Find(e, "sluice_http_request_duration_seconds_bucket");
  ASSERT_EQ(buckets.size(), kLatencyBoundsUs.size() + 1);
  for (size_t i = 0; i < kLatencyBoundsUs.size(); ++i) {
    double le = 0;
    ASSERT_TRUE(ParseValue(buckets[i].labels.at("le"), &le));
    EXPECT_NEAR(le, static_cast<double>(kLatencyBoundsUs[i]) / 1e6, 1e-15);
  }

  for (const Sample& s : Find(e, "sluice_connections_active")) {
    const int w = std::stoi(s.labels.at("worker"));
    EXPECT_EQ(s.value, 5 * (w + 1));
  }
  EXPECT_EQ(Find(e, "sluice_connections_active").size(), 2u);
  EXPECT_EQ(e.type.at("sluice_file_cache_hits_total"), "counter");
  EXPECT_EQ(e.type.at("sluice_file_cache_entries"), "gauge");
  for (const Sample& s : Find(e, "sluice_file_cache_hits_total")) {
    EXPECT_EQ(s.value, 30 * (std::stoi(s.labels.at("worker")) + 1));
  }
  for (const Sample& s : Find(e, "sluice_file_cache_content_bytes")) {
    EXPECT_EQ(s.value, 4096 * (std::stoi(s.labels.at("worker")) + 1));
  }
  EXPECT_EQ(Find(e, "sluice_file_cache_evictions_total").size(), 2u);
  EXPECT_EQ(Find(e, "sluice_ring_in_flight").size(), 2 * std::size(kOpGroups));
  for (const Sample& s : Find(e, "sluice_ring_in_flight")) {
    if (s.labels.at("op") == "splice") {
      EXPECT_EQ(s.value, 3 * (std::stoi(s.labels.at("worker")) + 1));
    }
  }
  const std::vector<Sample> uptime = Find(e, "sluice_uptime_seconds");
  ASSERT_EQ(uptime.size(), 1u);
  EXPECT_DOUBLE_EQ(uptime[0].value, 12.5);
  EXPECT_EQ(Find(e, "sluice_bytes_sent_total").at(0).value, 123456 * 3);
  EXPECT_EQ(Find(e, "sluice_info").at(0).labels.at("version"), "0.1.0");
}

// Label values are quoted strings: a backslash, a double quote or a newline
// in one (say a kernel release built with an odd CONFIG_LOCALVERSION) must be
// escaped, or the whole scrape is rejected by Prometheus.
TEST(RenderMetricsPrometheus, EscapesLabelValues) {
  ServerInfo info = Info();
  info.kernel = "6.1.0-\"odd\"\\build";
  info.version = "0.1.0\nx";
  const Exposition e = ParseExposition(RenderMetricsPrometheus(info, {}, kNowNs));
  for (const std::string& err : e.errors) ADD_FAILURE() << err;
  const std::vector<Sample> s = Find(e, "sluice_info");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].labels.at("kernel"), info.kernel);
  EXPECT_EQ(s[0].labels.at("version"), info.version);
}

TEST(RenderMetricsPrometheus, NoTrafficIsStillWellFormed) {
  WorkerMetrics idle;
  const Exposition e = ParseExposition(RenderMetricsPrometheus(Info(), {&idle}, kNowNs));
  for (const std::string& err : e.errors) ADD_FAILURE() << err;
  EXPECT_TRUE(Find(e, "sluice_http_requests_total").empty());
  EXPECT_EQ(e.type_count.at("sluice_http_requests_total"), 1);
  CheckHistograms(e);
}

}  // namespace
}  // namespace sluice
