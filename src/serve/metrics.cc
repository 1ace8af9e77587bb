#include "sluice/serve/metrics.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <map>
#include <string_view>
#include <utility>

#include "nlohmann/json.hpp"

namespace sluice {
namespace {

using Json = nlohmann::ordered_json;

// The op kinds operators see, folding ours into the names DESIGN.md uses.
struct OpGroup {
  const char* name;
  OpKind kinds[4];
  int count;
};
constexpr OpGroup kOpGroups[] = {
    {"accept", {OpKind::kAccept}, 1},
    {"recv", {OpKind::kRecv}, 1},
    {"send", {OpKind::kSend}, 1},
    {"splice", {OpKind::kSpliceIn}, 1},
    {"openat", {OpKind::kOpen, OpKind::kRootOpen}, 2},
    {"statx", {OpKind::kStatx, OpKind::kRootStatx, OpKind::kRootCheck}, 3},
    {"read", {OpKind::kRead, OpKind::kWake, OpKind::kPoolWake}, 3},
    {"write", {OpKind::kLogWrite}, 1},
    {"poll", {OpKind::kPollOut, OpKind::kInotifyPoll}, 2},
    {"shutdown", {OpKind::kShutdown}, 1},
    {"close", {OpKind::kClose, OpKind::kCloseFile}, 2},
    {"cancel", {OpKind::kCancel}, 1},
    {"timeout", {OpKind::kLingerTimeout, OpKind::kTick, OpKind::kAcceptRetry}, 3},
};

uint64_t InFlight(const WorkerMetrics& w, const OpGroup& g) {
  uint64_t n = 0;
  for (int i = 0; i < g.count; ++i) n += w.in_flight[static_cast<size_t>(g.kinds[i])].Get();
  return n;
}

std::string Rfc3339(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Histogram of microseconds → JSON in seconds (base units).
Json LatencyJson(const HistogramSnapshot& h) {
  Json buckets = Json::array();
  for (size_t i = 0; i < h.counts.size(); ++i) {
    Json b;
    if (i < h.bounds.size()) {
      b["le_seconds"] = static_cast<double>(h.bounds[i]) / 1e6;
    } else {
      b["le_seconds"] = "+Inf";
    }
    b["count"] = h.counts[i];
    buckets.push_back(b);
  }
  Json j;
  j["count"] = h.count;
  j["sum_seconds"] = static_cast<double>(h.sum) / 1e6;
  j["p50_seconds"] = h.Quantile(0.5) / 1e6;
  j["p90_seconds"] = h.Quantile(0.9) / 1e6;
  j["p99_seconds"] = h.Quantile(0.99) / 1e6;
  j["p999_seconds"] = h.Quantile(0.999) / 1e6;
  j["buckets"] = buckets;
  return j;
}

Json BatchJson(const HistogramSnapshot& h) {
  Json buckets = Json::array();
  for (size_t i = 0; i < h.counts.size(); ++i) {
    Json b;
    if (i < h.bounds.size()) {
      b["le"] = h.bounds[i];
    } else {
      b["le"] = "+Inf";
    }
    b["count"] = h.counts[i];
    buckets.push_back(b);
  }
  Json j;
  j["count"] = h.count;
  j["sum"] = h.sum;
  j["buckets"] = buckets;
  return j;
}

struct Counters {
  uint64_t active = 0, idle = 0, accepted = 0, closed = 0, rejected = 0, timeouts = 0, cut = 0;
  uint64_t proxy_header_errors = 0, per_ip_counted = 0, per_ip_rejected = 0;
  uint64_t bytes = 0, cq_overflow = 0, submit_calls = 0, cqes = 0;
  uint64_t log_lines = 0, log_errors = 0, log_dropped = 0;
  uint64_t cache_hits = 0, cache_misses = 0, cache_evictions = 0, cache_expired = 0,
           cache_events_lost = 0, cache_entries = 0, cache_bytes = 0;
  uint64_t listings_served = 0, listing_cache_hits = 0, listing_cache_entries = 0,
           listing_cache_bytes = 0;
  uint64_t jobs_queued = 0, jobs_rejected = 0, queue_depth = 0;
  uint64_t sq_ready = 0, cq_ready = 0;
  uint64_t recv_buffers = 0, recv_buffers_free = 0, pipes_lent = 0, pipes_idle = 0;
  uint64_t pipes_held_bytes = 0, pipes_resize_failed = 0, pipes_over_budget = 0;
  uint64_t file_chunks_inline = 0, file_chunks_ring = 0;
  uint64_t request_states = 0, request_states_spare = 0;
  uint64_t in_flight = 0;
  std::array<uint64_t, std::size(kOpGroups)> in_flight_by_group = {};
  std::map<std::string, uint64_t> by_method;
  std::map<int, uint64_t> by_status;
  uint64_t requests = 0;

  // Reads each of the worker's cells once: a live worker keeps counting,
  // and a second read could disagree with the first.
  void Add(const WorkerMetrics& w) {
    active += w.active.Get();
    idle += w.idle_keepalive.Get();
    accepted += w.accepted_total.Get();
    closed += w.closed_total.Get();
    rejected += w.rejected_total.Get();
    timeouts += w.timeouts_total.Get();
    cut += w.cut_total.Get();
    proxy_header_errors += w.proxy_header_errors_total.Get();
    per_ip_counted += w.per_ip_counted.Get();
    per_ip_rejected += w.per_ip_rejected_total.Get();
    bytes += w.bytes_sent_total.Get();
    cq_overflow += w.cq_overflow_total.Get();
    submit_calls += w.submit_calls_total.Get();
    cqes += w.cqes_total.Get();
    log_lines += w.log_lines_total.Get();
    log_errors += w.log_write_errors_total.Get();
    log_dropped += w.log_dropped_lines_total.Get();
    cache_hits += w.file_cache_hits_total.Get();
    cache_misses += w.file_cache_misses_total.Get();
    cache_evictions += w.file_cache_evictions_total.Get();
    cache_expired += w.file_cache_expired_total.Get();
    cache_events_lost += w.file_cache_events_lost_total.Get();
    cache_entries += w.file_cache_entries.Get();
    cache_bytes += w.file_cache_content_bytes.Get();
    listings_served += w.listings_served_total.Get();
    listing_cache_hits += w.listing_cache_hits_total.Get();
    listing_cache_entries += w.listing_cache_entries.Get();
    listing_cache_bytes += w.listing_cache_bytes.Get();
    jobs_queued += w.blocking_jobs_queued_total.Get();
    jobs_rejected += w.blocking_jobs_rejected_total.Get();
    queue_depth += w.blocking_queue_depth.Get();
    sq_ready += w.sq_ready.Get();
    cq_ready += w.cq_ready.Get();
    recv_buffers += w.recv_buffers.Get();
    recv_buffers_free += w.recv_buffers_free.Get();
    pipes_lent += w.pipes_lent.Get();
    pipes_idle += w.pipes_idle.Get();
    pipes_held_bytes += w.pipes_held_bytes.Get();
    pipes_resize_failed += w.pipes_resize_failed_total.Get();
    pipes_over_budget += w.pipes_over_budget_total.Get();
    file_chunks_inline += w.file_chunks_inline_total.Get();
    file_chunks_ring += w.file_chunks_ring_total.Get();
    request_states += w.request_states.Get();
    request_states_spare += w.request_states_spare.Get();
    for (size_t g = 0; g < std::size(kOpGroups); ++g) {
      const uint64_t n = InFlight(w, kOpGroups[g]);  // The groups cover every kind.
      in_flight_by_group[g] += n;
      in_flight += n;
    }
    for (size_t m = 0; m < w.requests.size(); ++m) {
      for (size_t code = 100; code < WorkerMetrics::kStatusCodes; ++code) {
        const uint64_t n = w.requests[m][code].Get();
        if (n == 0) continue;
        by_method[MethodClassName(static_cast<MethodClass>(m))] += n;
        by_status[static_cast<int>(code)] += n;
        requests += n;
      }
    }
  }

  // Adds what another Counters read (a worker's, for the totals).
  void Merge(const Counters& o) {
    for (auto [mine, theirs] : {std::pair{&active, o.active},
                                {&idle, o.idle},
                                {&accepted, o.accepted},
                                {&closed, o.closed},
                                {&rejected, o.rejected},
                                {&timeouts, o.timeouts},
                                {&cut, o.cut},
                                {&proxy_header_errors, o.proxy_header_errors},
                                {&per_ip_counted, o.per_ip_counted},
                                {&per_ip_rejected, o.per_ip_rejected},
                                {&bytes, o.bytes},
                                {&cq_overflow, o.cq_overflow},
                                {&submit_calls, o.submit_calls},
                                {&cqes, o.cqes},
                                {&log_lines, o.log_lines},
                                {&log_errors, o.log_errors},
                                {&log_dropped, o.log_dropped},
                                {&cache_hits, o.cache_hits},
                                {&cache_misses, o.cache_misses},
                                {&cache_evictions, o.cache_evictions},
                                {&cache_expired, o.cache_expired},
                                {&cache_events_lost, o.cache_events_lost},
                                {&cache_entries, o.cache_entries},
                                {&cache_bytes, o.cache_bytes},
                                {&listings_served, o.listings_served},
                                {&listing_cache_hits, o.listing_cache_hits},
                                {&listing_cache_entries, o.listing_cache_entries},
                                {&listing_cache_bytes, o.listing_cache_bytes},
                                {&jobs_queued, o.jobs_queued},
                                {&jobs_rejected, o.jobs_rejected},
                                {&queue_depth, o.queue_depth},
                                {&sq_ready, o.sq_ready},
                                {&cq_ready, o.cq_ready},
                                {&recv_buffers, o.recv_buffers},
                                {&recv_buffers_free, o.recv_buffers_free},
                                {&pipes_lent, o.pipes_lent},
                                {&pipes_idle, o.pipes_idle},
                                {&pipes_held_bytes, o.pipes_held_bytes},
                                {&pipes_resize_failed, o.pipes_resize_failed},
                                {&pipes_over_budget, o.pipes_over_budget},
                                {&file_chunks_inline, o.file_chunks_inline},
                                {&file_chunks_ring, o.file_chunks_ring},
                                {&request_states, o.request_states},
                                {&request_states_spare, o.request_states_spare},
                                {&in_flight, o.in_flight},
                                {&requests, o.requests}}) {
      *mine += theirs;
    }
    for (size_t g = 0; g < in_flight_by_group.size(); ++g) {
      in_flight_by_group[g] += o.in_flight_by_group[g];
    }
    for (const auto& [m, n] : o.by_method) by_method[m] += n;
    for (const auto& [code, n] : o.by_status) by_status[code] += n;
  }
};

Json InFlightJson(const Counters& c) {
  Json j = {{"total", c.in_flight}};
  for (size_t g = 0; g < std::size(kOpGroups); ++g) j[kOpGroups[g].name] = c.in_flight_by_group[g];
  return j;
}

void CountersJson(const Counters& c, Json* j) {
  (*j)["connections"] = {{"active", c.active},
                         {"idle_keepalive", c.idle},
                         {"accepted_total", c.accepted},
                         {"closed_total", c.closed},
                         {"rejected_total", c.rejected},
                         {"timeouts_total", c.timeouts},
                         {"cut_total", c.cut},
                         {"proxy_header_errors_total", c.proxy_header_errors},
                         {"per_ip_counted", c.per_ip_counted},
                         {"per_ip_rejected_total", c.per_ip_rejected}};
  Json by_status = Json::object();
  for (const auto& [code, n] : c.by_status) by_status[std::to_string(code)] = n;
  Json by_method = Json::object();
  for (const auto& [m, n] : c.by_method) by_method[m] = n;
  (*j)["requests"] = {{"total", c.requests}, {"by_method", by_method}, {"by_status", by_status}};
  (*j)["bytes_sent_total"] = c.bytes;
  (*j)["access_log"] = {{"lines_total", c.log_lines},
                        {"write_errors_total", c.log_errors},
                        {"dropped_lines_total", c.log_dropped}};
  (*j)["file_cache"] = {{"entries", c.cache_entries},
                        {"content_bytes", c.cache_bytes},
                        {"hits_total", c.cache_hits},
                        {"misses_total", c.cache_misses},
                        {"evictions_total", c.cache_evictions},
                        {"expired_total", c.cache_expired},
                        {"events_lost_total", c.cache_events_lost}};
  (*j)["directory_listing"] = {{"served_total", c.listings_served},
                               {"cache_hits_total", c.listing_cache_hits},
                               {"cache_entries", c.listing_cache_entries},
                               {"cache_bytes", c.listing_cache_bytes}};
  (*j)["blocking_pool"] = {{"jobs_queued_total", c.jobs_queued},
                           {"jobs_rejected_total", c.jobs_rejected},
                           {"queue_depth", c.queue_depth}};
  (*j)["buffers"] = {{"recv_buffers", c.recv_buffers},
                     {"recv_buffers_free", c.recv_buffers_free},
                     {"pipes_lent", c.pipes_lent},
                     {"pipes_idle", c.pipes_idle},
                     {"pipes_held_bytes", c.pipes_held_bytes},
                     {"pipes_resize_failed_total", c.pipes_resize_failed},
                     {"pipes_over_budget_total", c.pipes_over_budget},
                     {"file_chunks_inline_total", c.file_chunks_inline},
                     {"file_chunks_ring_total", c.file_chunks_ring},
                     {"request_states", c.request_states},
                     {"request_states_spare", c.request_states_spare}};
}

void AppendMetric(std::string* out, std::string_view name, std::string_view labels, double value) {
  out->append(name);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  char buf[64];
  if (value == static_cast<double>(static_cast<uint64_t>(value)) && value < 1e15) {
    snprintf(buf, sizeof(buf), " %llu\n", static_cast<unsigned long long>(value));
  } else {
    snprintf(buf, sizeof(buf), " %.9g\n", value);
  }
  out->append(buf);
}

void AppendHelp(std::string* out, std::string_view name, std::string_view type,
                std::string_view help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// Label values escape backslash, double quote and newline (exposition format 0.0.4).
std::string LabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string WorkerLabel(size_t i) { return "worker=\"" + std::to_string(i) + "\""; }

}  // namespace

const char* MethodClassName(MethodClass m) {
  switch (m) {
    case MethodClass::kGet:
      return "GET";
    case MethodClass::kHead:
      return "HEAD";
    case MethodClass::kOptions:
      return "OPTIONS";
    default:
      return "OTHER";
  }
}

void HistogramSnapshot::Merge(const HistogramSnapshot& other) {
  if (counts.empty()) {
    *this = other;
    return;
  }
  for (size_t i = 0; i < counts.size() && i < other.counts.size(); ++i)
    counts[i] += other.counts[i];
  count += other.count;
  sum += other.sum;
}

double HistogramSnapshot::Quantile(double q) const {
  if (count == 0 || counts.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  double seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double c = static_cast<double>(counts[i]);
    if (c > 0 && seen + c >= rank) {
      if (i >= bounds.size()) return static_cast<double>(bounds.back());
      const double lower = i == 0 ? 0 : static_cast<double>(bounds[i - 1]);
      const double upper = static_cast<double>(bounds[i]);
      return lower + (upper - lower) * std::clamp((rank - seen) / c, 0.0, 1.0);
    }
    seen += c;
  }
  return bounds.empty() ? 0 : static_cast<double>(bounds.back());
}

std::string RenderMetricsJson(const ServerInfo& info,
                              const std::vector<const WorkerMetrics*>& workers,
                              int64_t now_monotonic_ns) {
  Json root;
  root["server"] = {
      {"version", info.version},
      {"uptime_seconds", static_cast<double>(now_monotonic_ns - info.start_monotonic_ns) / 1e9},
      {"threads", info.threads},
      {"io_uring_setup_flags", info.ring_flags},
      {"kernel_release", info.kernel},
      {"start_time", Rfc3339(info.start_time_unix)},
      {"start_time_unix_seconds", info.start_time_unix},
      {"pipes",
       {{"bytes", info.pipe_bytes},
        {"idle_max", info.pipe_idle_max},
        {"budget_bytes", info.pipe_budget_bytes},
        {"user_limit_pages", info.pipe_user_limit_pages}}}};
  {
    const ConfigStatus none;
    const ConfigStatus& c = info.config != nullptr ? *info.config : none;
    const int64_t loaded = c.loaded_unix.load() != 0 ? c.loaded_unix.load() : info.start_time_unix;
    root["server"]["config"] = {
        {"generation", c.generation.load()},
        {"loaded_time_unix_seconds", loaded},
        {"reloads_total", {{"ok", c.reloads_ok.load()}, {"error", c.reloads_error.load()}}}};
  }
  Json jw = Json::array();
  // Every worker's cells are read once, and the totals summed from those
  // reads, so they add up exactly even while the workers keep counting.
  Counters totals;
  HistogramSnapshot latency;
  HistogramSnapshot batch;
  for (size_t i = 0; i < workers.size(); ++i) {
    const WorkerMetrics& w = *workers[i];
    Counters c;
    c.Add(w);
    totals.Merge(c);
    const HistogramSnapshot wl = w.latency_us.Snapshot();
    const HistogramSnapshot wb = w.batch.Snapshot();
    latency.Merge(wl);
    batch.Merge(wb);
    Json one;
    one["worker"] = i;
    one["cpu"] = w.cpu;
    one["ring"] = {{"sq_entries", w.sq_entries.Get()},
                   {"cq_entries", w.cq_entries.Get()},
                   {"sq_ready", c.sq_ready},
                   {"cq_ready", c.cq_ready},
                   {"in_flight", InFlightJson(c)},
                   {"cq_overflow_total", c.cq_overflow},
                   {"submit_calls_total", c.submit_calls},
                   {"cqes_total", c.cqes},
                   {"batch_size", BatchJson(wb)}};
    CountersJson(c, &one);
    one["latency"] = LatencyJson(wl);
    jw.push_back(one);
  }
  root["workers"] = jw;
  Json t;
  t["ring"] = {{"sq_ready", totals.sq_ready},
               {"cq_ready", totals.cq_ready},
               {"in_flight", InFlightJson(totals)},
               {"cq_overflow_total", totals.cq_overflow},
               {"submit_calls_total", totals.submit_calls},
               {"cqes_total", totals.cqes},
               {"batch_size", BatchJson(batch)}};
  CountersJson(totals, &t);
  t["latency"] = LatencyJson(latency);
  root["totals"] = t;
  return root.dump(2) + "\n";
}

std::string RenderMetricsPrometheus(const ServerInfo& info,
                                    const std::vector<const WorkerMetrics*>& workers,
                                    int64_t now_monotonic_ns) {
  std::string out;
  out.reserve(16384);
  AppendHelp(&out, "sluice_info", "gauge", "Build and runtime information (value is always 1).");
  AppendMetric(&out, "sluice_info",
               "version=\"" + LabelValue(info.version) + "\",kernel=\"" + LabelValue(info.kernel) +
                   "\",ring_flags=\"" + LabelValue(info.ring_flags) + "\"",
               1);
  AppendHelp(&out, "sluice_start_time_seconds", "gauge", "Start time, Unix seconds.");
  AppendMetric(&out, "sluice_start_time_seconds", "", static_cast<double>(info.start_time_unix));
  AppendHelp(&out, "sluice_uptime_seconds", "gauge", "Seconds since start.");
  AppendMetric(&out, "sluice_uptime_seconds", "",
               static_cast<double>(now_monotonic_ns - info.start_monotonic_ns) / 1e9);
  AppendHelp(&out, "sluice_threads", "gauge", "Worker threads, one io_uring each.");
  AppendMetric(&out, "sluice_threads", "", info.threads);
  {
    const ConfigStatus none;
    const ConfigStatus& c = info.config != nullptr ? *info.config : none;
    const int64_t loaded = c.loaded_unix.load() != 0 ? c.loaded_unix.load() : info.start_time_unix;
    AppendHelp(&out, "sluice_config_generation", "gauge",
               "Configuration generation in force (1 at start, +1 per successful reload).");
    AppendMetric(&out, "sluice_config_generation", "", static_cast<double>(c.generation.load()));
    AppendHelp(&out, "sluice_config_last_reload_success_timestamp_seconds", "gauge",
               "When the configuration in force was loaded, Unix seconds.");
    AppendMetric(&out, "sluice_config_last_reload_success_timestamp_seconds", "",
                 static_cast<double>(loaded));
    AppendHelp(&out, "sluice_config_reloads_total", "counter",
               "Configuration reloads (SIGHUP) by result; on error the old one stays.");
    AppendMetric(&out, "sluice_config_reloads_total", "result=\"ok\"",
                 static_cast<double>(c.reloads_ok.load()));
    AppendMetric(&out, "sluice_config_reloads_total", "result=\"error\"",
                 static_cast<double>(c.reloads_error.load()));
  }
  AppendHelp(&out, "sluice_pipe_size_bytes", "gauge",
             "Size of each splice pipe, as decided at start.");
  AppendMetric(&out, "sluice_pipe_size_bytes", "", static_cast<double>(info.pipe_bytes));
  AppendHelp(&out, "sluice_pipe_idle_max", "gauge", "Idle splice pipes a worker keeps at most.");
  AppendMetric(&out, "sluice_pipe_idle_max", "", static_cast<double>(info.pipe_idle_max));
  AppendHelp(&out, "sluice_pipe_budget_bytes", "gauge",
             "Pipe capacity a worker may grow its pipes to in all (0: no budget).");
  AppendMetric(&out, "sluice_pipe_budget_bytes", "", static_cast<double>(info.pipe_budget_bytes));
  AppendHelp(&out, "sluice_pipe_user_limit_pages", "gauge",
             "The user's pipe allowance (fs.pipe-user-pages-soft/-hard) that applies (0: none).");
  AppendMetric(&out, "sluice_pipe_user_limit_pages", "",
               static_cast<double>(info.pipe_user_limit_pages));

  // Requests by code and method, summed over workers.
  std::map<std::pair<int, std::string>, uint64_t> requests;
  Counters totals;
  HistogramSnapshot latency;
  for (const WorkerMetrics* w : workers) {
    totals.Add(*w);
    latency.Merge(w->latency_us.Snapshot());
    for (size_t m = 0; m < w->requests.size(); ++m) {
      for (size_t code = 100; code < WorkerMetrics::kStatusCodes; ++code) {
        if (const uint64_t n = w->requests[m][code].Get()) {
          requests[{static_cast<int>(code), MethodClassName(static_cast<MethodClass>(m))}] += n;
        }
      }
    }
  }
  AppendHelp(&out, "sluice_http_requests_total", "counter",
             "HTTP requests answered, by status code and method.");
  for (const auto& [key, n] : requests) {
    AppendMetric(&out, "sluice_http_requests_total",
                 "code=\"" + std::to_string(key.first) + "\",method=\"" + key.second + "\"",
                 static_cast<double>(n));
  }
  AppendHelp(&out, "sluice_http_request_duration_seconds", "histogram",
             "From the first byte of a request to the last byte of its response handed to "
             "the kernel.");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < latency.counts.size(); ++i) {
    cumulative += latency.counts[i];
    char le[32];
    if (i < latency.bounds.size()) {
      snprintf(le, sizeof(le), "%.6g", static_cast<double>(latency.bounds[i]) / 1e6);
    } else {
      snprintf(le, sizeof(le), "+Inf");
    }
    AppendMetric(&out, "sluice_http_request_duration_seconds_bucket",
                 std::string("le=\"") + le + "\"", static_cast<double>(cumulative));
  }
  AppendMetric(&out, "sluice_http_request_duration_seconds_sum", "",
               static_cast<double>(latency.sum) / 1e6);
  AppendMetric(&out, "sluice_http_request_duration_seconds_count", "",
               static_cast<double>(latency.count));
  AppendHelp(&out, "sluice_bytes_sent_total", "counter", "Response bytes handed to the kernel.");
  AppendMetric(&out, "sluice_bytes_sent_total", "", static_cast<double>(totals.bytes));
  AppendHelp(&out, "sluice_access_log_lines_total", "counter", "Access log lines written.");
  AppendMetric(&out, "sluice_access_log_lines_total", "", static_cast<double>(totals.log_lines));
  AppendHelp(&out, "sluice_access_log_write_errors_total", "counter",
             "Access log writes that failed (e.g. a full disk).");
  AppendMetric(&out, "sluice_access_log_write_errors_total", "",
               static_cast<double>(totals.log_errors));
  AppendHelp(&out, "sluice_access_log_dropped_lines_total", "counter",
             "Access log lines dropped because the buffer was full.");
  AppendMetric(&out, "sluice_access_log_dropped_lines_total", "",
               static_cast<double>(totals.log_dropped));

  struct PerWorker {
    const char* name;
    const char* type;
    const char* help;
    uint64_t (*get)(const WorkerMetrics&);
  };
  static constexpr PerWorker kPerWorker[] = {
      {"sluice_ring_sq_entries", "gauge", "Submission queue size.",
       [](const WorkerMetrics& w) { return w.sq_entries.Get(); }},
      {"sluice_ring_cq_entries", "gauge", "Completion queue size.",
       [](const WorkerMetrics& w) { return w.cq_entries.Get(); }},
      {"sluice_ring_sq_ready", "gauge", "SQEs prepared and not yet submitted (sampled per loop).",
       [](const WorkerMetrics& w) { return w.sq_ready.Get(); }},
      {"sluice_ring_cq_ready", "gauge", "CQEs waiting when the worker last woke.",
       [](const WorkerMetrics& w) { return w.cq_ready.Get(); }},
      {"sluice_ring_cq_overflow_total", "counter", "CQEs that overflowed the CQ (kept by NODROP).",
       [](const WorkerMetrics& w) { return w.cq_overflow_total.Get(); }},
      {"sluice_ring_submit_calls_total", "counter", "io_uring_enter calls that submitted.",
       [](const WorkerMetrics& w) { return w.submit_calls_total.Get(); }},
      {"sluice_ring_cqes_total", "counter", "CQEs reaped.",
       [](const WorkerMetrics& w) { return w.cqes_total.Get(); }},
      {"sluice_connections_active", "gauge", "Open connections.",
       [](const WorkerMetrics& w) { return w.active.Get(); }},
      {"sluice_connections_idle", "gauge", "Idle keep-alive connections.",
       [](const WorkerMetrics& w) { return w.idle_keepalive.Get(); }},
      {"sluice_connections_accepted_total", "counter", "Connections accepted.",
       [](const WorkerMetrics& w) { return w.accepted_total.Get(); }},
      {"sluice_connections_closed_total", "counter", "Connections closed.",
       [](const WorkerMetrics& w) { return w.closed_total.Get(); }},
      {"sluice_connections_rejected_total", "counter",
       "Connections closed at once because --max_connections was reached.",
       [](const WorkerMetrics& w) { return w.rejected_total.Get(); }},
      {"sluice_connection_timeouts_total", "counter",
       "Connections that hit the header, keep-alive or send timeout.",
       [](const WorkerMetrics& w) { return w.timeouts_total.Get(); }},
      {"sluice_connections_cut_total", "counter",
       "Responses reset mid-body because their file changed on disk.",
       [](const WorkerMetrics& w) { return w.cut_total.Get(); }},
      {"sluice_connections_proxy_header_errors_total", "counter",
       "Connections closed for a missing, invalid or late PROXY protocol header.",
       [](const WorkerMetrics& w) { return w.proxy_header_errors_total.Get(); }},
      {"sluice_connections_per_ip_counted", "gauge",
       "Connections (or proxied requests) counted against a client address.",
       [](const WorkerMetrics& w) { return w.per_ip_counted.Get(); }},
      {"sluice_connections_per_ip_rejected_total", "counter",
       "Connections closed (or proxied requests answered 429) by --max_connections_per_ip.",
       [](const WorkerMetrics& w) { return w.per_ip_rejected_total.Get(); }},
      {"sluice_file_cache_entries", "gauge", "Entries in the open-file cache.",
       [](const WorkerMetrics& w) { return w.file_cache_entries.Get(); }},
      {"sluice_file_cache_content_bytes", "gauge", "Bytes of small files held by the cache.",
       [](const WorkerMetrics& w) { return w.file_cache_content_bytes.Get(); }},
      {"sluice_file_cache_hits_total", "counter", "Path lookups answered by the open-file cache.",
       [](const WorkerMetrics& w) { return w.file_cache_hits_total.Get(); }},
      {"sluice_file_cache_misses_total", "counter",
       "Path lookups the cache could not answer (opened and stat'ed instead).",
       [](const WorkerMetrics& w) { return w.file_cache_misses_total.Get(); }},
      {"sluice_file_cache_evictions_total", "counter",
       "Entries dropped to stay within --file_cache_entries / --file_cache_bytes.",
       [](const WorkerMetrics& w) { return w.file_cache_evictions_total.Get(); }},
      {"sluice_file_cache_expired_total", "counter",
       "Entries dropped after --file_cache_valid without a change event.",
       [](const WorkerMetrics& w) { return w.file_cache_expired_total.Get(); }},
      {"sluice_file_cache_events_lost_total", "counter",
       "inotify queue overflows: change events lost, every entry dropped.",
       [](const WorkerMetrics& w) { return w.file_cache_events_lost_total.Get(); }},
      {"sluice_directory_listings_served_total", "counter",
       "Directory listings sent (--directory_listing).",
       [](const WorkerMetrics& w) { return w.listings_served_total.Get(); }},
      {"sluice_directory_listing_cache_hits_total", "counter",
       "Directory listings answered from the listing cache.",
       [](const WorkerMetrics& w) { return w.listing_cache_hits_total.Get(); }},
      {"sluice_directory_listing_cache_entries", "gauge", "Listings in the listing cache.",
       [](const WorkerMetrics& w) { return w.listing_cache_entries.Get(); }},
      {"sluice_directory_listing_cache_bytes", "gauge", "Bytes held by the listing cache.",
       [](const WorkerMetrics& w) { return w.listing_cache_bytes.Get(); }},
      {"sluice_blocking_jobs_queued_total", "counter",
       "Jobs accepted by the helper pool for blocking calls.",
       [](const WorkerMetrics& w) { return w.blocking_jobs_queued_total.Get(); }},
      {"sluice_blocking_jobs_rejected_total", "counter",
       "Jobs the helper pool refused because its queue was full (answered 503).",
       [](const WorkerMetrics& w) { return w.blocking_jobs_rejected_total.Get(); }},
      {"sluice_blocking_queue_depth", "gauge",
       "Jobs accepted by the helper pool and not yet completed.",
       [](const WorkerMetrics& w) { return w.blocking_queue_depth.Get(); }},
      {"sluice_recv_buffers", "gauge", "Provided receive buffers registered with the ring.",
       [](const WorkerMetrics& w) { return w.recv_buffers.Get(); }},
      {"sluice_recv_buffers_free", "gauge",
       "Provided receive buffers in the ring (all of them when idle).",
       [](const WorkerMetrics& w) { return w.recv_buffers_free.Get(); }},
      {"sluice_pipes_lent", "gauge", "Splice pipes lent to responses in progress.",
       [](const WorkerMetrics& w) { return w.pipes_lent.Get(); }},
      {"sluice_pipes_idle", "gauge", "Empty splice pipes kept for reuse.",
       [](const WorkerMetrics& w) { return w.pipes_idle.Get(); }},
      {"sluice_pipes_held_bytes", "gauge", "Capacity of the splice pipes held, idle and lent.",
       [](const WorkerMetrics& w) { return w.pipes_held_bytes.Get(); }},
      {"sluice_pipes_resize_failed_total", "counter",
       "Pipes whose F_SETPIPE_SZ failed (the user's pipe allowance): used at their real size.",
       [](const WorkerMetrics& w) { return w.pipes_resize_failed_total.Get(); }},
      {"sluice_file_chunks_inline_total", "counter",
       "File chunks spliced into a pipe in place: every page was cached and up to date.",
       [](const WorkerMetrics& w) { return w.file_chunks_inline_total.Get(); }},
      {"sluice_file_chunks_ring_total", "counter",
       "File chunks spliced into a pipe by the ring's SPLICE (an io-wq thread).",
       [](const WorkerMetrics& w) { return w.file_chunks_ring_total.Get(); }},
      {"sluice_pipes_over_budget_total", "counter",
       "Pipes left at their first size because the worker's pipe budget was spent.",
       [](const WorkerMetrics& w) { return w.pipes_over_budget_total.Get(); }},
      {"sluice_request_states", "gauge",
       "Request states allocated: lent to requests in progress, and spare.",
       [](const WorkerMetrics& w) { return w.request_states.Get(); }},
      {"sluice_request_states_spare", "gauge",
       "Spare request states kept for the next requests (at most 128).",
       [](const WorkerMetrics& w) { return w.request_states_spare.Get(); }},
  };
  for (const PerWorker& m : kPerWorker) {
    AppendHelp(&out, m.name, m.type, m.help);
    for (size_t i = 0; i < workers.size(); ++i) {
      AppendMetric(&out, m.name, WorkerLabel(i), static_cast<double>(m.get(*workers[i])));
    }
  }
  AppendHelp(&out, "sluice_ring_in_flight", "gauge", "Operations in the kernel, by kind.");
  for (size_t i = 0; i < workers.size(); ++i) {
    for (const OpGroup& g : kOpGroups) {
      AppendMetric(&out, "sluice_ring_in_flight", WorkerLabel(i) + ",op=\"" + g.name + "\"",
                   static_cast<double>(InFlight(*workers[i], g)));
    }
  }
  AppendHelp(&out, "sluice_ring_batch_size", "histogram", "CQEs reaped per loop iteration.");
  for (size_t i = 0; i < workers.size(); ++i) {
    const HistogramSnapshot b = workers[i]->batch.Snapshot();
    uint64_t cum = 0;
    for (size_t k = 0; k < b.counts.size(); ++k) {
      cum += b.counts[k];
      const std::string le = k < b.bounds.size() ? std::to_string(b.bounds[k]) : "+Inf";
      AppendMetric(&out, "sluice_ring_batch_size_bucket", WorkerLabel(i) + ",le=\"" + le + "\"",
                   static_cast<double>(cum));
    }
    AppendMetric(&out, "sluice_ring_batch_size_sum", WorkerLabel(i), static_cast<double>(b.sum));
    AppendMetric(&out, "sluice_ring_batch_size_count", WorkerLabel(i),
                 static_cast<double>(b.count));
  }
  return out;
}

}  // namespace sluice
