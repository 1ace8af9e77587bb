// Metrics: one shard per worker, written only by that worker's thread with
// relaxed atomic stores (no read-modify-write: a single writer needs none),
// read by whichever worker answers a scrape, without locks. A Histogram is
// a fixed set of log-spaced buckets, so recording is one increment.
#ifndef SLUICE_SERVE_METRICS_H_
#define SLUICE_SERVE_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sluice/base/cell.h"
#include "sluice/base/check.h"
#include "sluice/io/operation.h"

namespace sluice {

// Request latency buckets: upper bounds in microseconds, 1-2-5 steps from
// 1 µs to 10 s, then +Inf.
inline constexpr std::array<uint64_t, 22> kLatencyBoundsUs = {
    1,    2,     5,     10,    20,     50,     100,    200,     500,     1000,    2000,
    5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000, 2000000, 5000000, 10000000};

struct HistogramSnapshot {
  std::vector<uint64_t> bounds;  // Upper bounds (inclusive); +Inf bucket is counts.back().
  std::vector<uint64_t> counts;  // Per bucket (not cumulative), bounds.size() + 1 entries.
  uint64_t count = 0;
  uint64_t sum = 0;  // In the bounds' unit.

  void Merge(const HistogramSnapshot& other);
  // Estimate of quantile q (0..1) by linear interpolation inside the bucket
  // that holds it; the +Inf bucket answers with the last finite bound.
  double Quantile(double q) const;
};

// Single-writer histogram over fixed bounds.
template <size_t N>
class Histogram {
 public:
  explicit Histogram(const std::array<uint64_t, N>& bounds) : bounds_(bounds) {}
  void Record(uint64_t value) {
    size_t i = 0;
    while (i < N && value > bounds_[i]) ++i;
    counts_[i].Add();
    count_.Add();
    sum_.Add(value);
  }
  HistogramSnapshot Snapshot() const {
    HistogramSnapshot s;
    s.bounds.assign(bounds_.begin(), bounds_.end());
    s.counts.resize(N + 1);
    for (size_t i = 0; i <= N; ++i) s.counts[i] = counts_[i].Get();
    s.count = count_.Get();
    s.sum = sum_.Get();
    return s;
  }

 private:
  const std::array<uint64_t, N>& bounds_;
  std::array<Cell, N + 1> counts_;
  Cell count_;
  Cell sum_;
};

// CQEs reaped per loop iteration: 1, 2, 4, ... 512, then more.
inline constexpr std::array<uint64_t, 10> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

enum class MethodClass : uint8_t { kGet, kHead, kOptions, kOther, kCount };
const char* MethodClassName(MethodClass m);

struct WorkerMetrics {
  WorkerMetrics() : batch(kBatchBounds), latency_us(kLatencyBoundsUs) {}

  int cpu = -1;
  // Ring.
  Cell sq_entries, cq_entries;
  Cell sq_ready;  // SQEs prepared, not yet submitted (sampled before each submit).
  Cell cq_ready;  // CQEs waiting when the worker woke (sampled each loop).
  std::array<Cell, static_cast<size_t>(OpKind::kCount)> in_flight;
  Cell cq_overflow_total, submit_calls_total, cqes_total;
  Histogram<kBatchBounds.size()> batch;
  // Connections.
  Cell active, idle_keepalive, accepted_total, closed_total, rejected_total, timeouts_total;
  // Responses reset mid-body because their file changed on disk.
  Cell cut_total;
  // --proxy_protocol: connections closed for a missing or invalid header.
  Cell proxy_header_errors_total;
  // --max_connections_per_ip: connections (or requests through a trusted
  // proxy) this worker counts in the shared table now, and those refused.
  Cell per_ip_counted, per_ip_rejected_total;
  // Requests, by method class and status code (index = code, 100-599).
  static constexpr size_t kStatusCodes = 600;
  std::array<std::array<Cell, kStatusCodes>, static_cast<size_t>(MethodClass::kCount)> requests;
  void CountRequest(MethodClass m, int status) {
    if (status >= 100 && status < static_cast<int>(kStatusCodes)) {
      requests[static_cast<size_t>(m)][static_cast<size_t>(status)].Add();
    }
  }
  Cell bytes_sent_total;
  Histogram<kLatencyBoundsUs.size()> latency_us;
  // Access log.
  Cell log_lines_total, log_write_errors_total, log_dropped_lines_total;
  // Open-file cache: lookups answered from it or not, entries dropped to
  // make room, and its size.
  // expired: dropped after --file_cache_valid without a change event.
  Cell file_cache_hits_total, file_cache_misses_total, file_cache_evictions_total;
  Cell file_cache_expired_total;
  Cell file_cache_events_lost_total;  // inotify queue overflows: everything dropped.
  Cell file_cache_entries, file_cache_content_bytes;
  // Directory listings (--directory_listing): 200s with a listing, those
  // answered from the listing cache, and its size.
  Cell listings_served_total, listing_cache_hits_total, listing_cache_entries, listing_cache_bytes;
  // The helper pool for blocking calls: jobs accepted, jobs refused (queue
  // full: 503), jobs accepted and not yet completed (gauge).
  Cell blocking_jobs_queued_total, blocking_jobs_rejected_total, blocking_queue_depth;
  // Resources that must all be back at idle: provided receive buffers in
  // the ring (of recv_buffers), pipes lent to responses and kept idle.
  Cell recv_buffers, recv_buffers_free, pipes_lent, pipes_idle;
  // Pipe capacity held (idle and lent), pipes whose F_SETPIPE_SZ failed
  // (used at the size they had), pipes not grown because the budget was spent.
  Cell pipes_held_bytes, pipes_resize_failed_total, pipes_over_budget_total;
  // File chunks moved into a pipe by a plain splice() (every page was in
  // the page cache and up to date) and by the ring's SPLICE (io-wq).
  Cell file_chunks_inline_total, file_chunks_ring_total;
  // Request states allocated (lent to connections with a request in
  // progress, and spare), and the spare ones.
  Cell request_states, request_states_spare;
};

// The configuration in force and its reloads (SIGHUP), written by the main
// thread, read by whichever worker renders /metrics.
struct ConfigStatus {
  std::atomic<uint64_t> generation{1};
  std::atomic<int64_t> loaded_unix{0};  // When the generation in force was loaded.
  std::atomic<uint64_t> reloads_ok{0};
  std::atomic<uint64_t> reloads_error{0};
};

struct ServerInfo {
  std::string version;
  int threads = 0;
  std::string ring_flags;
  std::string kernel;
  int64_t start_time_unix = 0;
  int64_t start_monotonic_ns = 0;
  const ConfigStatus* config = nullptr;  // Null: generation 1, never reloaded.
  // The splice pipes decided at start-up (ServerConfig's pipe fields).
  uint64_t pipe_bytes = 0, pipe_idle_max = 0, pipe_budget_bytes = 0, pipe_user_limit_pages = 0;
};

// What a scrape reads: immutable once the workers run.
struct MetricsRegistry {
  ServerInfo info;
  std::vector<const WorkerMetrics*> workers;
};

// Renders every worker's shard and their totals.
std::string RenderMetricsJson(const ServerInfo& info,
                              const std::vector<const WorkerMetrics*>& workers,
                              int64_t now_monotonic_ns);
// The same data in the Prometheus text exposition format (version 0.0.4).
std::string RenderMetricsPrometheus(const ServerInfo& info,
                                    const std::vector<const WorkerMetrics*>& workers,
                                    int64_t now_monotonic_ns);

}  // namespace sluice

#endif  // SLUICE_SERVE_METRICS_H_
