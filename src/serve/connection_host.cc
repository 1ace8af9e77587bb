#include "sluice/serve/connection_host.h"

#include <sys/random.h>

#include "absl/strings/str_cat.h"
#include "sluice/base/log.h"

namespace sluice {

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
  file_cache_.reset();
  document_root_.reset();
}

void ConnectionHost::DisableMultishotRecv() {
  if (!multishot_recv_) return;
  multishot_recv_ = false;
  LogWarning(absl::StrCat("worker ", index_,
                          ": multishot RECV refused (Linux < 6.0?): single-shot receives"));
}

}  // namespace sluice
