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

namespace sluice {

class Connection;
struct RequestState;

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
  FileCache& file_cache() { return *file_cache_; }
  // The document root as it is now (it follows deploys).
  DocumentRoot& document_root() { return *document_root_; }
  AccessLogWriter* access_log() { return access_log_.get(); }
  // --directory_listing: the listing cache and the helper pool that reads
  // directories; both null when listings are off.
  ListingCache* listings() { return listings_.get(); }
  BlockingPool* blocking_pool() { return blocking_pool_.get(); }
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
  // Creates the listing cache and the helper pool (after the file cache);
  // the pool starts with the worker's loop (BlockingPool::Start).
  void EnableDirectoryListings();

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
  std::unique_ptr<DocumentRoot> document_root_;  // Outlives file_cache_.
  std::unique_ptr<FileCache> file_cache_;
  std::unique_ptr<ListingCache> listings_;  // Uses file_cache_ and document_root_.
  // Its jobs hold root generations and listing reads: destroyed first.
  std::unique_ptr<BlockingPool> blocking_pool_;
  bool stopping_ = false;
  bool multishot_recv_ = true;  // --multishot_recv, off for good after EINVAL.
  static constexpr size_t kScratchBytes = 16 * 1024;
  std::unique_ptr<char[]> scratch_;
  uint64_t random_ = 0x9E3779B97F4A7C15ull;
};

}  // namespace sluice

#endif  // SLUICE_SERVE_CONNECTION_HOST_H_
