// ConnectionHost: what the connections of one worker share (the loop, the
// open-file cache, the document root, pipes, receive buffers, the timer
// wheel, metrics) and the four things they ask of their worker (request
// state, a slot back, a wait for receive buffers). The worker (server/)
// derives from it; connections, the cache and the document root see only
// this, never the worker's accept policy or drain. One worker thread.
#ifndef SLUICE_SERVE_CONNECTION_HOST_H_
#define SLUICE_SERVE_CONNECTION_HOST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/base/check.h"
#include "sluice/http/http_date.h"
#include "sluice/io/blocking_pool.h"
#include "sluice/io/loop.h"
#include "sluice/io/pipe_pool.h"
#include "sluice/io/timer_wheel.h"
#include "sluice/serve/access_log.h"
#include "sluice/serve/config.h"
#include "sluice/serve/connections_per_address.h"
#include "sluice/serve/document_root.h"
#include "sluice/serve/file_cache.h"
#include "sluice/serve/health.h"
#include "sluice/serve/listing_cache.h"
#include "sluice/serve/metrics.h"
#include "sluice/serve/sites.h"

namespace sluice {

class Connection;
struct RequestState;

// One document root of a worker and its open-file cache. A worker has one
// per distinct root of its configuration generation; a root that a reload
// drops is retired: it stops watching, and is freed once no request uses it
// and none of its operations is in the kernel.
class RootFiles {
 public:
  RootFiles(Loop* loop, WorkerMetrics* metrics, const ServerConfig& config, size_t roots,
            std::string path, int fd);
  RootFiles(const RootFiles&) = delete;
  RootFiles& operator=(const RootFiles&) = delete;

  DocumentRoot& root() { return *root_; }
  FileCache& cache() { return *cache_; }
  // Directory listings of this root (used only where listings are on).
  ListingCache& listings() { return *listings_; }
  const std::string& path() const { return path_; }

  void Start();
  void Stop();
  bool stopped() const { return stopped_; }
  bool idle_in_kernel() const { return cache_->idle_in_kernel() && root_->idle_in_kernel(); }

  uint32_t users = 0;  // Requests holding it (ConnectionHost::UseRoot).

 private:
  const std::string path_;
  std::unique_ptr<DocumentRoot> root_;  // Outlives cache_.
  std::unique_ptr<FileCache> cache_;
  std::unique_ptr<ListingCache> listings_;  // Uses cache_ and root_.
  bool started_ = false;
  bool stopped_ = false;
};

class ConnectionHost {
 public:
  ConnectionHost(const ConnectionHost&) = delete;
  ConnectionHost& operator=(const ConnectionHost&) = delete;

  Loop& loop() { return loop_; }
  const ServerConfig& config() const { return config_; }
  WorkerMetrics& metrics() { return metrics_; }
  const WorkerMetrics& metrics() const { return metrics_; }
  // Every worker's shard and the server's facts, for /metrics.
  const MetricsRegistry* registry() const { return registry_; }
  // Liveness and readiness of the server (null in a worker without one).
  const HealthState* health() const { return health_; }
  // The configuration generation new requests start with (sites, rules,
  // roots); a request keeps the one it started with.
  const ServeGeneration& generation() const { return *generation_; }
  const std::shared_ptr<const ServeGeneration>& generation_ptr() const { return generation_; }
  // The current generation's root `index` (SiteConfig::root_index), held for
  // a request until ReleaseRoot.
  RootFiles* UseRoot(size_t index) {
    RootFiles* files = current_roots_[index];
    ++files->users;
    return files;
  }
  void ReleaseRoot(RootFiles* files) {
    SLUICE_CHECK(files->users > 0, "a root is released once per use");
    --files->users;
  }
  AccessLogWriter* access_log() { return access_log_.get(); }
  // The helper pool that reads directories for listings; null while no
  // listing is configured (--directory_listing or a rule's `listing`).
  BlockingPool* blocking_pool() { return blocking_pool_.get(); }
  // A root held once more (a listing job outlives its request's hold).
  void HoldRoot(RootFiles* files) { ++files->users; }
  // --max_connections_per_ip's table, shared by every worker; null when off.
  ConnectionsPerAddress* connections_per_address() { return connections_per_address_; }
  // Before the worker runs; the table outlives it.
  void set_connections_per_address(ConnectionsPerAddress* table) {
    connections_per_address_ = table;
  }
  const DateCache& date() const { return date_; }
  PipePool& pipes() { return pipes_; }
  TimerWheel& wheel() { return wheel_; }
  // Idle keep-alive connections, oldest first.
  IntrusiveList& idle_connections() { return idle_; }
  // The graceful drain has begun.
  bool stopping() const { return stopping_; }
  // Connections receive with one multishot RECV each (Linux 6.0+).
  bool multishot_recv() const { return loop_.recv_buffers().enabled() && multishot_recv_; }
  void DisableMultishotRecv();
  // True when /metrics is answered on the main listener (no --metrics_listen).
  bool ServesMetricsOnMainListener() const { return config_.metrics_listen.empty(); }
  // Memory any connection may receive into and never read (discarded input).
  char* scratch() { return scratch_.get(); }
  size_t scratch_bytes() const { return kScratchBytes; }
  // xorshift64*: multipart boundaries need to be unpredictable to clients
  // that cannot see other responses, not cryptographic.
  uint64_t NextRandom() {
    random_ ^= random_ >> 12;
    random_ ^= random_ << 25;
    random_ ^= random_ >> 27;
    return random_ * 0x2545F4914F6CDD1Dull;
  }

  // Request state for a connection with a request in progress.
  virtual RequestState* AcquireRequestState() = 0;
  virtual void ReleaseRequestState(RequestState* rs) = 0;
  // `conn` got ENOBUFS; its RECV is re-armed once buffers are back.
  virtual void WaitForRecvBuffers(Connection* conn) = 0;
  // `conn`'s socket is closed and nothing of it is in flight.
  virtual void Recycle(Connection* conn) = 0;

 protected:
  ConnectionHost(int index, const ServerConfig& config);
  ~ConnectionHost();
  // Creates the helper pool that reads directories, started with the
  // worker's loop (at once when it already runs). Idempotent.
  void EnableDirectoryListings();
  void StartBlockingPool();

  // Switches new requests to `gen` (on the worker thread, between
  // completions): roots it keeps keep their caches, new ones are set up
  // (and started once the worker runs), the others are retired.
  void AdoptGeneration(std::shared_ptr<const ServeGeneration> gen);
  void StartRoots();
  void StopRoots();
  // Every tick: the roots' backstop checks; retired roots no longer used
  // are freed.
  void TickRoots(int64_t now_ns);

  const int index_;
  const ServerConfig& config_;
  WorkerMetrics metrics_;  // Before loop_, which counts into it.
  Loop loop_;
  const MetricsRegistry* registry_ = nullptr;
  HealthState* health_ = nullptr;
  DateCache date_;
  PipePool pipes_;
  TimerWheel wheel_;
  IntrusiveList idle_;
  std::unique_ptr<AccessLogWriter> access_log_;
  ConnectionsPerAddress* connections_per_address_ = nullptr;
  std::shared_ptr<const ServeGeneration> generation_;
  std::vector<std::unique_ptr<RootFiles>> roots_;  // Every one alive, retired ones too.
  std::vector<RootFiles*> current_roots_;          // By the generation's root index.
  bool roots_started_ = false;
  // Its jobs hold roots (and their listing reads): destroyed before them.
  std::unique_ptr<BlockingPool> blocking_pool_;
  bool stopping_ = false;
  bool multishot_recv_ = true;  // --multishot_recv, off for good after EINVAL.
  static constexpr size_t kScratchBytes = 16 * 1024;
  std::unique_ptr<char[]> scratch_;
  uint64_t random_ = 0x9E3779B97F4A7C15ull;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_CONNECTION_HOST_H_
