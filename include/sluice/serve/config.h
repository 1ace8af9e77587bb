// Server configuration, filled from flags in main.cc and read-only afterwards,
// so every worker thread may read it without synchronisation.
#ifndef SLUICE_SERVE_CONFIG_H_
#define SLUICE_SERVE_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "sluice/base/ip_address.h"
#include "sluice/http/client_address.h"
#include "sluice/http/http_parser.h"

namespace sluice {

// The `tiny` preset (SLUICE_TINY_RESOURCES) shrinks the rings and the pipe
// pool so that the test suite exercises SQ-full, CQ-overflow and pipe-reuse
// paths that production sizes rarely reach.
#ifdef SLUICE_TINY_RESOURCES
inline constexpr unsigned kDefaultRingEntries = 4;
inline constexpr unsigned kDefaultRecvBuffers = 4;
inline constexpr uint32_t kDefaultPipeBytes = 4096;
inline constexpr size_t kDefaultIdlePipesMax = 1;
#else
inline constexpr unsigned kDefaultRingEntries = 1024;
inline constexpr unsigned kDefaultRecvBuffers = 1024;
inline constexpr uint32_t kDefaultPipeBytes = 1024 * 1024;
inline constexpr size_t kDefaultIdlePipesMax = 32;
#endif

struct ServerConfig {
  std::string root = "www";
  std::string listen = "127.0.0.1:8080";
  int threads = 1;
  int backlog = 4096;
  // TCP_DEFER_ACCEPT on --listen (whole seconds, rounded up; zero: off): a
  // connection is accepted once its first bytes are in, or after about this
  // long without any (then --header_timeout runs as usual).
  absl::Duration defer_accept = absl::Seconds(1);
  absl::Duration drain_timeout = absl::Seconds(10);
  // On SIGTERM: readiness fails at once, but the listeners keep accepting
  // and serving for this long (load balancers take time to stop sending),
  // then the drain above runs. Zero: drain at once.
  absl::Duration drain_delay = absl::Seconds(5);
  // The whole request head must arrive within this time of its first byte
  // (of the connection, for a new one): slowloris defence. 408 then close.
  absl::Duration header_timeout = absl::Seconds(15);
  // An idle keep-alive connection is closed after this long.
  absl::Duration keepalive_timeout = absl::Seconds(30);
  // A response that makes no progress for this long is abandoned (slow readers).
  absl::Duration send_timeout = absl::Seconds(30);
  // Connections open at once, over all workers (each worker takes its share).
  int max_connections = 16384;
  // /metrics: the path it answers on, who may read it, and optionally a
  // listener of its own (then the main listener serves files only).
  std::string metrics_path = "/metrics";
  CidrList metrics_allow;
  std::string metrics_listen;
  // Behind a load balancer: peers whose forwarding fields name the client,
  // and which fields, in which order (README "Behind a load balancer").
  TrustedProxies trusted_proxies;
  ForwardedSourceOrder forwarded_sources;
  // The main listener's connections open with a PROXY protocol header.
  bool proxy_protocol = false;
  // Connections one client address may hold open at once; 0: no limit.
  uint32_t max_connections_per_ip = 0;
  // Liveness and readiness probes, answered before any file lookup; an
  // empty path turns that probe off. Logged only with log_health_checks.
  std::string health_path = "/healthz";
  std::string ready_path = "/readyz";
  bool log_health_checks = false;
  // Access log: empty = off, "-" = stdout; one line per request in nginx's
  // combined format or as one JSON object.
  std::string access_log;
  enum class AccessLogFormat : uint8_t { kCombined, kJson };
  AccessLogFormat access_log_format = AccessLogFormat::kCombined;
  // When started as root: drop to this user (and group) after binding;
  // empty means nobody/nogroup, "root" stays root.
  std::string user;
  std::string group;
  ParserLimits limits;
  // Request bodies (which a static server ignores) up to this size are read
  // and discarded so the connection stays usable; larger ones get 413+close.
  uint64_t request_body_drain_bytes_max = 64 * 1024;
  // Files up to this size are read into the connection's send buffer and go
  // out with their head in one SEND; larger ones are spliced.
  uint32_t small_file_bytes_max = 16 * 1024;
  // How long a closing connection keeps reading (and discarding) what the
  // client still sends, so that our last response is not destroyed by a RST.
  absl::Duration linger_timeout = absl::Seconds(2);
  size_t max_ranges = 16;     // More ranges in one request → 200 with the whole file.
  std::string cache_control;  // Cache-Control value for files; empty: none.
  bool precompressed = true;  // Serve foo.br / foo.zst / foo.gz for foo when accepted.
  // A directory requested with a trailing slash and without index.html is
  // listed (HTML or JSON) instead of 404: at most this many entries, and
  // each worker caches listings up to this many bytes.
  bool directory_listing = false;
  size_t directory_listing_entries_max = 10000;
  size_t directory_listing_cache_bytes = 8 << 20;
  // Helper threads per worker for calls io_uring cannot make (reading a
  // directory), and the jobs a worker may have queued or running there.
  unsigned blocking_pool_threads = 2;
  size_t blocking_pool_queue = 64;
  // Open-file cache, per worker: entries (0 turns it off), bytes of small
  // files' content, and how long an entry may be trusted without inotify.
  size_t file_cache_entries = 16384;
  size_t file_cache_bytes = 64 << 20;
  absl::Duration file_cache_valid = absl::Seconds(10);
  unsigned ring_entries = kDefaultRingEntries;
  // Provided-buffer ring per worker (a power of two; 0: none).
  unsigned recv_buffers = kDefaultRecvBuffers;
  unsigned recv_buffer_bytes = 2048;
  // One multishot RECV per connection on that ring, left armed across
  // requests (false: a single-shot RECV per read).
  bool multishot_recv = true;
  unsigned iowq_bounded_max = 4;
  unsigned iowq_unbounded_max = 16;
  // A kernel SQ-polling thread per ring (off by default: on one core per
  // worker it competes with the worker; see perf/README.md).
  bool sqpoll = false;
  absl::Duration sqpoll_idle = absl::Milliseconds(10);
  // Splice pipes: as configured, then fitted by the server at start-up to
  // the pipe allowance of the user it runs as (SizePipes in io/pipe_pool.h).
  uint32_t pipe_bytes = kDefaultPipeBytes;
  size_t idle_pipes_max = kDefaultIdlePipesMax;
  uint64_t pipe_budget_bytes = 0;      // Per worker; 0: no budget.
  uint64_t pipe_user_limit_pages = 0;  // The limit that applies; 0: none.
};

}  // namespace sluice

#endif  // SLUICE_SERVE_CONFIG_H_
