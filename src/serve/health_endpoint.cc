// Connection, the liveness and readiness probes (/healthz, /readyz): a
// fixed body from memory, no file access, no allocation beyond the
// request's reused output buffer. Open to every address: probes come from
// the kubelet or a load balancer, whose addresses vary, and tell nothing
// but "up" or "draining". On the owning worker's thread.
#include <string_view>

#include "sluice/base/clock.h"
#include "sluice/http/http_parser.h"
#include "sluice/http/response.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"

namespace sluice {
namespace {

// `target` is `path`, alone or with a query ("/readyz?verbose").
bool MatchesPath(std::string_view target, const std::string& path) {
  if (path.empty() || target.substr(0, path.size()) != path) return false;
  return target.size() == path.size() || target[path.size()] == '?';
}

}  // namespace

bool Connection::HandleProbe(std::string_view target) {
  const ServerConfig& config = host_->config();
  const bool health = MatchesPath(target, config.health_path);
  const bool ready = !health && MatchesPath(target, config.ready_path);
  if (!health && !ready) return false;
  rs_->response.probe = true;
  const Request& r = rs_->input.parser.request();
  if (r.method != Method::kGet && r.method != Method::kHead) {
    RespondError(405, !rs_->response.keep_alive, "Allow: GET, HEAD\r\n");
    return true;
  }
  const HealthState* state = host_->health();
  // Liveness: every worker's loop turned recently. Readiness: not draining,
  // neither the whole server (SIGTERM) nor this worker.
  const bool live = state == nullptr || state->Live(MonotonicNanos());
  const bool ok =
      health ? live : live && !host_->stopping() && (state == nullptr || state->ready());
  std::string_view body = ok ? "ok\n" : (health ? "stalled\n" : "draining\n");
  const int status = ok ? 200 : 503;
  RespondFromMemory(status, "text/plain; charset=utf-8", body);
  return true;
}

}  // namespace sluice
