// The /metrics endpoint and the access-log line: the parts of Connection
// that look at the server as a whole. On the owning worker's thread.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <ctime>
#include <optional>
#include <string>

#include "sluice/base/clock.h"
#include "sluice/base/ip_address.h"
#include "sluice/serve/access_log.h"
#include "sluice/serve/connection.h"
#include "sluice/serve/connection_host.h"
#include "sluice/serve/metrics.h"

namespace sluice {
namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

bool Connection::IsMetricsTarget(std::string_view target) const {
  const std::string& path = host_->config().metrics_path;
  if (target.substr(0, path.size()) != path) return false;
  return target.size() == path.size() || target[path.size()] == '?';
}

bool Connection::PeerAllowedMetrics() {
  // The client as resolved: behind a trusted proxy, whom it names.
  const IpAddress* client = Client();
  return client != nullptr && host_->config().metrics_allow.Contains(*client);
}

void Connection::HandleMetrics() {
  const Request& r = rs_->input.parser.request();
  if (r.method != Method::kGet && r.method != Method::kHead) {
    RespondError(405, !rs_->response.keep_alive, "Allow: GET, HEAD\r\n");
    return;
  }
  // Prometheus text when asked for by query or by Accept; JSON otherwise.
  const std::string_view target = r.target;
  const std::string_view accept = r.field(Field::kAccept);
  bool prometheus = Contains(accept, "text/plain") || Contains(accept, "openmetrics");
  if (Contains(target, "format=prometheus")) prometheus = true;
  if (Contains(target, "format=json")) prometheus = false;

  const MetricsRegistry* registry = host_->registry();
  std::string body;
  if (registry != nullptr) {
    body = prometheus ? RenderMetricsPrometheus(registry->info, registry->workers, MonotonicNanos())
                      : RenderMetricsJson(registry->info, registry->workers, MonotonicNanos());
  }
  RespondFromMemory(
      200, prometheus ? "text/plain; version=0.0.4; charset=utf-8" : "application/json", body);
}

}  // namespace sluice
