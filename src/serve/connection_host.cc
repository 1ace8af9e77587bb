#include "sluice/serve/connection_host.h"

#include <sys/random.h>

#include "absl/strings/str_cat.h"
#include "sluice/base/log.h"

namespace sluice {

ConnectionHost::ConnectionHost(int index, const ServerConfig& config)
    : index_(index),
      config_(config),
      loop_(index, &metrics_.in_flight, &metrics_.submit_calls_total),
      pipes_(config.pipe_bytes, config.idle_pipes_max),
      wheel_(loop_.now_s()),
      multishot_recv_(config.multishot_recv),
      scratch_(std::make_unique<char[]>(kScratchBytes)) {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed) && seed != 0) random_ = seed;
}

ConnectionHost::~ConnectionHost() {
  // Pending closes become plain close() from here on: the ring goes away.
  loop_.set_synchronous();
  // Jobs still in the pool hold root generations and listing reads: they
  // go first, while both are alive.
  blocking_pool_.reset();
  listings_.reset();
  file_cache_.reset();
  document_root_.reset();
}

void ConnectionHost::EnableDirectoryListings() {
  listings_ = std::make_unique<ListingCache>(file_cache_.get(), document_root_.get(), &metrics_,
                                             config_.directory_listing_cache_bytes,
                                             config_.file_cache_valid);
  blocking_pool_ = std::make_unique<BlockingPool>(
      &loop_, config_.blocking_pool_threads, config_.blocking_pool_queue,
      BlockingPoolCells{&metrics_.blocking_jobs_queued_total,
                        &metrics_.blocking_jobs_rejected_total, &metrics_.blocking_queue_depth});
}

void ConnectionHost::DisableMultishotRecv() {
  if (!multishot_recv_) return;
  multishot_recv_ = false;
  LogWarning(absl::StrCat("worker ", index_,
                          ": multishot RECV refused (Linux < 6.0?): single-shot receives"));
}

}  // namespace sluice
