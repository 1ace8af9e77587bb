#include "sluice/serve/connection_host.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "sluice/base/log.h"

namespace sluice {

RootFiles::RootFiles(Loop* loop, WorkerMetrics* metrics, const ServerConfig& config, size_t roots,
                     std::string path, int fd)
    : path_(std::move(path)) {
  // The worker's own descriptor: each worker replaces it on its own when
  // the root's path changes. Off the data path (start-up or a reload's
  // switch), so plain syscalls.
  struct stat st = {};
  const int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own >= 0) fstat(own, &st);
  root_ = std::make_unique<DocumentRoot>(loop, path_, own, static_cast<uint64_t>(st.st_dev),
                                         static_cast<uint64_t>(st.st_ino));
  // The configured cache budget is the worker's: each root gets its share.
  const size_t n = std::max<size_t>(roots, 1);
  const size_t entries =
      config.file_cache_entries == 0 ? 0 : std::max<size_t>(config.file_cache_entries / n, 1);
  cache_ = std::make_unique<FileCache>(loop, metrics, entries, config.file_cache_bytes / n,
                                       config.file_cache_valid, root_.get());
  listings_ = std::make_unique<ListingCache>(cache_.get(), root_.get(), metrics,
                                             config.directory_listing_cache_bytes / n,
                                             config.file_cache_valid);
}

void RootFiles::Start() {
  if (started_ || stopped_) return;
  started_ = true;
  cache_->Start();
  root_->Start(cache_.get());
}

void RootFiles::Stop() {
  if (stopped_) return;
  stopped_ = true;
  cache_->StopWatching();
  root_->Stop();
}

ConnectionHost::ConnectionHost(int index, const ServerConfig& config)
    : index_(index),
      config_(config),
      loop_(index, &metrics_.in_flight, &metrics_.submit_calls_total),
      pipes_(config.pipe_bytes, config.idle_pipes_max, config.pipe_budget_bytes),
      wheel_(loop_.now_s()),
      multishot_recv_(config.multishot_recv),
      scratch_(std::make_unique<char[]>(kScratchBytes)) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed) && seed != 0) random_ = seed;
}

ConnectionHost::~ConnectionHost() {
  // Pending closes become plain close() from here on: the ring goes away.
  loop_.set_synchronous();
  // Jobs still in the pool hold roots: they go first, while those live.
  if (blocking_pool_ != nullptr) blocking_pool_->Stop();
  blocking_pool_.reset();
  current_roots_.clear();
  roots_.clear();
}

void ConnectionHost::AdoptGeneration(std::shared_ptr<const ServeGeneration> gen) {
  SLUICE_CHECK(gen != nullptr && !gen->roots.empty() && gen->roots.size() == gen->root_fds.size(),
               "a generation has its roots open");
  std::vector<RootFiles*> next;
  for (size_t i = 0; i < gen->roots.size(); ++i) {
    RootFiles* found = nullptr;
    for (const auto& r : roots_) {
      if (!r->stopped() && r->path() == gen->roots[i]) found = r.get();
    }
    if (found == nullptr) {
      roots_.push_back(std::make_unique<RootFiles>(&loop_, &metrics_, config_, gen->roots.size(),
                                                   gen->roots[i], gen->root_fds[i].get()));
      found = roots_.back().get();
      if (roots_started_) found->Start();
    }
    next.push_back(found);
  }
  for (const auto& r : roots_) {
    if (std::find(next.begin(), next.end(), r.get()) == next.end()) r->Stop();
  }
  current_roots_ = std::move(next);
  if (gen->directory_listing || gen->any_listing) EnableDirectoryListings();
  generation_ = std::move(gen);
}

void ConnectionHost::StartRoots() {
  roots_started_ = true;
  for (const auto& r : roots_) r->Start();
  StartBlockingPool();
}

void ConnectionHost::StopRoots() {
  for (const auto& r : roots_) r->Stop();
}

void ConnectionHost::TickRoots(int64_t now_ns) {
  for (RootFiles* r : current_roots_) r->root().Tick(now_ns);
  std::erase_if(roots_, [this](const std::unique_ptr<RootFiles>& r) {
    const bool current =
        std::find(current_roots_.begin(), current_roots_.end(), r.get()) != current_roots_.end();
    return !current && r->stopped() && r->users == 0 && r->idle_in_kernel();
  });
}

void ConnectionHost::EnableDirectoryListings() {
  if (blocking_pool_ != nullptr) return;
  blocking_pool_ = std::make_unique<BlockingPool>(
      &loop_, config_.blocking_pool_threads, config_.blocking_pool_queue,
      BlockingPoolCells{&metrics_.blocking_jobs_queued_total,
                        &metrics_.blocking_jobs_rejected_total, &metrics_.blocking_queue_depth});
  if (roots_started_) StartBlockingPool();
}

void ConnectionHost::StartBlockingPool() {
  if (blocking_pool_ == nullptr) return;
  if (absl::Status st = blocking_pool_->Start(); !st.ok()) {
    // Without helpers every listing is a 503 (Submit refuses): say why once.
    LogError(absl::StrCat("worker ", index_, ": directory listings unavailable: ", st.message()));
  }
}

void ConnectionHost::DisableMultishotRecv() {
  if (!multishot_recv_) return;
  multishot_recv_ = false;
  LogWarning(absl::StrCat("worker ", index_,
                          ": multishot RECV refused (Linux < 6.0?): single-shot receives"));
}

}  // namespace sluice
