// sluice: command-line flags → ServerConfig → RunServer.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/internal/private_handle_accessor.h"
#include "absl/flags/internal/program_name.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "sluice/base/log.h"
#include "sluice/http/json_log.h"
#include "sluice/http/mime.h"
#include "sluice/http/range.h"
#include "sluice/io/ring.h"
#include "sluice/server/config_file.h"
#include "sluice/server/generation.h"
#include "sluice/server/listener.h"
#include "sluice/server/server.h"

ABSL_FLAG(std::string, root, "www",
          "Directory to serve (the document root); symlinks on its path are followed "
          "again whenever they change.");
ABSL_FLAG(std::string, listen, "127.0.0.1:8080",
          "Address to listen on: IPv4 HOST:PORT, [IPv6]:PORT, or localhost:PORT. Port 0 picks a "
          "free port (printed at start-up).");
ABSL_FLAG(int, threads, sluice::AvailableCpuCount(),
          "Worker threads, one io_uring each, pinned to CPUs (default: CPUs available).");
ABSL_FLAG(bool, multishot_recv, true,
          "Receive with one multishot RECV per connection on the worker's provided-buffer ring, "
          "left armed across requests; false: a single-shot RECV for each read.");
ABSL_FLAG(bool, sqpoll, false,
          "Give each ring a kernel thread that polls for submissions (IORING_SETUP_SQPOLL), "
          "saving io_uring_enter calls while it is awake; it burns CPU beside the worker. Off "
          "by default: see perf/README.md for the measurement.");
ABSL_FLAG(absl::Duration, sqpoll_idle, absl::Milliseconds(10),
          "With --sqpoll: how long the SQ thread spins without work before it sleeps.");
ABSL_FLAG(int, backlog, 4096, "listen() backlog of each worker's socket.");
ABSL_FLAG(absl::Duration, defer_accept, absl::Seconds(1),
          "TCP_DEFER_ACCEPT on --listen: the kernel hands a connection to the server once its "
          "first bytes arrive (one wake-up per connection, not two), or after about this long "
          "without any; whole seconds, 0: off.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "On SIGINT/SIGTERM, how long in-flight responses may take to finish before the "
          "remaining connections are closed.");
ABSL_FLAG(absl::Duration, drain_delay, absl::Seconds(5),
          "On SIGTERM, how long to keep accepting and serving with /readyz failing (so load "
          "balancers and Kubernetes endpoints stop sending) before the drain; a second SIGTERM "
          "ends it early, SIGINT skips it. 0: drain at once.");
ABSL_FLAG(std::string, health_path, "/healthz",
          "Liveness probe path: 200 while every worker's event loop turns, else 503. Answered "
          "to anyone before any file lookup; empty: off.");
ABSL_FLAG(std::string, ready_path, "/readyz",
          "Readiness probe path: 200 while accepting, 503 from the moment a drain starts. "
          "Answered to anyone before any file lookup; empty: off.");
ABSL_FLAG(bool, log_health_checks, false,
          "Write --health_path and --ready_path requests to the access log too.");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(15),
          "A request head must arrive completely within this time of its first byte (of the "
          "connection, for a new one); else 408 and close.");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(30),
          "Idle keep-alive connections are closed after this long.");
ABSL_FLAG(absl::Duration, send_timeout, absl::Seconds(30),
          "A response that makes no progress for this long is abandoned and the connection "
          "closed.");
ABSL_FLAG(int, max_connections, 16384,
          "Connections open at once over all workers; past it the longest-idle keep-alive "
          "connection is closed, or, with none idle, new ones are refused until one closes.");
ABSL_FLAG(int64_t, file_cache_entries, 16384,
          "Open-file cache entries per worker (0 turns the cache off). Entries are dropped on "
          "inotify change events and after --file_cache_valid.");
ABSL_FLAG(int64_t, file_cache_bytes, 64 << 20,
          "Bytes of small files' content the open-file cache may hold per worker.");
ABSL_FLAG(absl::Duration, file_cache_valid, absl::Seconds(10),
          "Longest time a cache entry is trusted (a backstop for changes inotify cannot see).");
ABSL_FLAG(int64_t, small_file_bytes, 16384,
          "Files up to this size are kept in the open-file cache's memory and sent with their "
          "head in one SEND; larger ones are spliced from the file.");
ABSL_FLAG(std::string, metrics_path, "/metrics", "Path of the JSON/Prometheus metrics endpoint.");
ABSL_FLAG(std::string, metrics_allow, "127.0.0.0/8,::1",
          "Comma-separated CIDR ranges of clients that may read the metrics; others get 404.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Serve the metrics on this ADDR:PORT instead of the main listener (which then "
          "serves files only).");
ABSL_FLAG(std::string, trusted_proxies, "",
          "Comma-separated CIDR ranges of proxies whose Forwarded / X-Forwarded-For / X-Real-IP "
          "fields name the client (empty: nobody's).");
ABSL_FLAG(std::string, forwarded_sources, "x-forwarded-for,forwarded,x-real-ip",
          "Which forwarding fields of a trusted proxy to read, in order: any of forwarded, "
          "x-forwarded-for, x-real-ip.");
ABSL_FLAG(bool, proxy_protocol, false,
          "Connections to --listen start with a PROXY protocol v1/v2 header (from a load "
          "balancer); those without a valid one are closed.");
ABSL_FLAG(int, max_connections_per_ip, 0,
          "Connections one client address may have open (0: no limit); past it a connection is "
          "closed at once, or a request through a trusted proxy gets 429.");
ABSL_FLAG(std::string, access_log, "",
          "Access log path in nginx's combined format ('-' for stdout; empty: off). SIGUSR1 "
          "reopens it.");
ABSL_FLAG(std::string, access_log_format, "combined",
          "Access log lines: 'combined' (nginx's) or 'json' (one JSON object per line).");
ABSL_FLAG(std::string, log_format, "text",
          "The server's own log on stderr: 'text' or 'json' (one JSON object per line).");
ABSL_FLAG(std::string, user, "",
          "When started as root, switch to this user after binding and opening the root "
          "(default: nobody, group nogroup); 'root' stays root, with a warning.");
ABSL_FLAG(std::string, group, "", "With --user: the group to switch to (default: the user's).");
ABSL_FLAG(int, max_request_line, 8192, "Longest request line in bytes (longer: 414).");
ABSL_FLAG(int, max_header_bytes, 16384,
          "Largest request head (request line and header fields) in bytes (larger: 431).");
ABSL_FLAG(int, max_headers, 100, "Most header fields in one request (more: 431).");
ABSL_FLAG(int, max_ranges, 16,
          "Most byte ranges honoured in one Range request (more: 200 with the whole file).");
ABSL_FLAG(std::string, cache_control, "",
          "Cache-Control value sent with files (and their 304s); empty: none.");
ABSL_FLAG(bool, precompressed, true,
          "Serve FILE.br, FILE.zst or FILE.gz in place of FILE when the client accepts that "
          "encoding.");
ABSL_FLAG(bool, directory_listing, false,
          "List a directory requested with a trailing slash that has no index.html (HTML, or "
          "JSON for Accept: application/json); off: 404.");
ABSL_FLAG(int64_t, directory_listing_entries_max, 10000,
          "Most entries in one listing: the first ones by name, and a notice that it was cut.");
ABSL_FLAG(int64_t, directory_listing_cache_bytes, 8 << 20,
          "Bytes of directory listings each worker keeps, invalidated by inotify; 0: none.");
ABSL_FLAG(int, blocking_pool_threads, 2,
          "Helper threads per worker for calls io_uring cannot make (reading directories); "
          "started only when needed (--directory_listing).");
ABSL_FLAG(int, blocking_pool_queue, 64,
          "Jobs one worker may have waiting or running on its helper threads; past it: 503.");
ABSL_FLAG(std::string, config, "",
          "A configuration file (TOML; docs/sluice.example.toml has every key): top-level keys "
          "are these flags, [[site]] tables virtual hosts and their rules. A flag given on the "
          "command line overrides the file. SIGHUP reloads it.");
ABSL_FLAG(bool, check_config, false,
          "Validate --config (and the flags) as a start would, print 'FILE: ok' and exit 0, or "
          "print what is wrong (FILE:LINE:COL: ...) and exit 2; nothing is served.");
ABSL_FLAG(std::string, mime_types, "",
          "A types file in nginx's mime.types format whose entries override the built-in "
          "table.");

namespace {

constexpr int kExitConfig = 2;
constexpr int kExitNoIoUring = 3;

bool IsOurFlagFile(absl::string_view file) { return absl::EndsWith(file, "src/server/main.cc"); }

absl::Status Invalid(std::string_view message) {
  return absl::InvalidArgumentError(std::string(message));
}

// abseil exits 1 after --help; a help request that worked should exit 0.
bool PrintedHelp(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      absl::flags_internal::FlagsHelp(std::cout, "src/server/main.",
                                      absl::flags_internal::HelpFormat::kHumanReadable,
                                      absl::ProgramUsageMessage());
      std::cout << "\nAlso: --flagfile=FILE (one --flag=value per line), --version, --helpfull.\n";
      return true;
    }
  }
  return false;
}

void SetUpUsage(const char* argv0) {
  absl::flags_internal::SetProgramInvocationName(argv0);
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsOurFlagFile;
  usage.contains_helpshort_flags = IsOurFlagFile;
  usage.version_string = [] { return absl::StrCat("sluice ", sluice::kVersion, "\n"); };
  usage.normalize_filename = [](absl::string_view f) { return std::string(f); };
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "a static file HTTP/1.1 server on io_uring.\n"
      "Usage: sluice [--root=DIR] [--listen=ADDR:PORT] [--threads=N] ...");
}

absl::Status ReadTimeouts(sluice::ServerConfig* config) {
  config->sqpoll_idle = absl::GetFlag(FLAGS_sqpoll_idle);
  if (config->sqpoll_idle < absl::Milliseconds(1) || config->sqpoll_idle > absl::Seconds(10)) {
    return Invalid("--sqpoll_idle must be between 1ms and 10s");
  }
  config->drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  if (config->drain_timeout < absl::ZeroDuration()) return Invalid("--drain_timeout must be >= 0");
  config->drain_delay = absl::GetFlag(FLAGS_drain_delay);
  if (config->drain_delay < absl::ZeroDuration() || config->drain_delay > absl::Hours(1)) {
    return Invalid("--drain_delay must be between 0 and 1h");
  }
  config->defer_accept = absl::GetFlag(FLAGS_defer_accept);
  if (config->defer_accept < absl::ZeroDuration() || config->defer_accept > absl::Minutes(10)) {
    return Invalid("--defer_accept must be between 0 and 10m");
  }
  config->header_timeout = absl::GetFlag(FLAGS_header_timeout);
  config->keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  config->send_timeout = absl::GetFlag(FLAGS_send_timeout);
  for (absl::Duration d :
       {config->header_timeout, config->keepalive_timeout, config->send_timeout}) {
    if (d < absl::Seconds(1) || d > absl::Hours(24)) {
      return Invalid(
          "--header_timeout, --keepalive_timeout and --send_timeout must be between 1s and 24h");
    }
  }
  return absl::OkStatus();
}

absl::Status ReadMetricsFlags(sluice::ServerConfig* config) {
  config->metrics_path = absl::GetFlag(FLAGS_metrics_path);
  if (config->metrics_path.empty() || config->metrics_path[0] != '/' ||
      config->metrics_path.find_first_of("?# ") != std::string::npos) {
    return Invalid("--metrics_path must start with '/' and contain no '?', '#' or space");
  }
  absl::StatusOr<sluice::CidrList> allow =
      sluice::CidrList::Parse(absl::GetFlag(FLAGS_metrics_allow));
  if (!allow.ok()) return Invalid(absl::StrCat("--metrics_allow: ", allow.status().message()));
  config->metrics_allow = *allow;
  config->metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  return absl::OkStatus();
}

absl::Status ReadClientFlags(sluice::ServerConfig* config) {
  absl::StatusOr<sluice::CidrList> trusted =
      sluice::CidrList::Parse(absl::GetFlag(FLAGS_trusted_proxies));
  if (!trusted.ok()) {
    return Invalid(absl::StrCat("--trusted_proxies: ", trusted.status().message()));
  }
  config->trusted_proxies = *trusted;
  absl::StatusOr<sluice::ForwardedSourceOrder> order =
      sluice::ParseForwardedSourceOrder(absl::GetFlag(FLAGS_forwarded_sources));
  if (!order.ok()) {
    return Invalid(absl::StrCat("--forwarded_sources: ", order.status().message()));
  }
  config->forwarded_sources = *order;
  config->proxy_protocol = absl::GetFlag(FLAGS_proxy_protocol);
  const int per_ip = absl::GetFlag(FLAGS_max_connections_per_ip);
  if (per_ip < 0 || per_ip > 1000000) {
    return Invalid("--max_connections_per_ip must be between 0 (off) and 1000000");
  }
  config->max_connections_per_ip = static_cast<uint32_t>(per_ip);
  return absl::OkStatus();
}

absl::Status ReadProbeAndLogFlags(sluice::ServerConfig* config) {
  config->health_path = absl::GetFlag(FLAGS_health_path);
  config->ready_path = absl::GetFlag(FLAGS_ready_path);
  for (const std::string& path : {config->health_path, config->ready_path}) {
    if (!path.empty() && (path[0] != '/' || path.find_first_of("?# ") != std::string::npos)) {
      return Invalid(
          "--health_path and --ready_path must be empty or start with '/' and contain no '?', "
          "'#' or space");
    }
  }
  if (!config->health_path.empty() && config->health_path == config->ready_path) {
    return Invalid("--health_path and --ready_path must differ");
  }
  config->log_health_checks = absl::GetFlag(FLAGS_log_health_checks);
  config->access_log = absl::GetFlag(FLAGS_access_log);
  const std::string format = absl::GetFlag(FLAGS_access_log_format);
  if (format == "json") {
    config->access_log_format = sluice::ServerConfig::AccessLogFormat::kJson;
  } else if (format != "combined") {
    return Invalid("--access_log_format must be 'combined' or 'json'");
  }
  return absl::OkStatus();
}

// --log_format=json: {"time":...,"level":"info","pid":N,"msg":...} lines.
void FormatJsonLogLine(std::string* line, int64_t unix_ms, int pid, std::string_view level,
                       std::string_view message) {
  line->append("{\"time\":\"");
  sluice::AppendRfc3339Millis(line, unix_ms);
  line->append("\",\"level\":\"");
  for (char c : level) line->push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  line->append("\",\"pid\":").append(std::to_string(pid)).append(",\"msg\":");
  sluice::AppendJsonString(line, message);
  line->append("}\n");
}

// Before anything is logged, so that even a flag error comes out as JSON.
bool SetUpLogFormat() {
  const std::string format = absl::GetFlag(FLAGS_log_format);
  if (format == "json") sluice::SetLogFormatter(FormatJsonLogLine);
  if (format == "json" || format == "text") return true;
  sluice::LogError("--log_format must be 'text' or 'json'");
  return false;
}

absl::Status ReadCacheFlags(sluice::ServerConfig* config) {
  const int64_t entries = absl::GetFlag(FLAGS_file_cache_entries);
  const int64_t bytes = absl::GetFlag(FLAGS_file_cache_bytes);
  config->file_cache_valid = absl::GetFlag(FLAGS_file_cache_valid);
  if (entries < 0 || entries > 10000000 || bytes < 0 ||
      config->file_cache_valid < absl::ZeroDuration()) {
    return Invalid(
        "--file_cache_entries must be 0..10000000, --file_cache_bytes and --file_cache_valid >= 0");
  }
  config->file_cache_entries = static_cast<size_t>(entries);
  config->file_cache_bytes = static_cast<size_t>(bytes);
  const int64_t small_file = absl::GetFlag(FLAGS_small_file_bytes);
  if (small_file < 0 || small_file > (16 << 20)) {
    return Invalid("--small_file_bytes must be between 0 and 16777216");
  }
  config->small_file_bytes_max = static_cast<uint32_t>(small_file);
  return absl::OkStatus();
}

absl::Status ReadRequestLimits(sluice::ServerConfig* config) {
  config->max_connections = absl::GetFlag(FLAGS_max_connections);
  if (config->max_connections < 1) return Invalid("--max_connections must be at least 1");
  const int request_line = absl::GetFlag(FLAGS_max_request_line);
  const int header_bytes = absl::GetFlag(FLAGS_max_header_bytes);
  const int headers = absl::GetFlag(FLAGS_max_headers);
  if (request_line < 64 || header_bytes < request_line || header_bytes > (1 << 20) || headers < 1 ||
      headers > 10000) {
    return Invalid(
        "invalid limits: need 64 <= --max_request_line <= --max_header_bytes <= 1048576 and "
        "1 <= --max_headers <= 10000");
  }
  config->limits.request_line_bytes_max = static_cast<size_t>(request_line);
  config->limits.head_bytes_max = static_cast<size_t>(header_bytes);
  config->limits.header_count_max = static_cast<size_t>(headers);
  const int max_ranges = absl::GetFlag(FLAGS_max_ranges);
  if (max_ranges < 1 || max_ranges > static_cast<int>(sluice::kMaxRangesLimit)) {
    return Invalid(absl::StrCat("--max_ranges must be between 1 and ", sluice::kMaxRangesLimit));
  }
  config->max_ranges = static_cast<size_t>(max_ranges);
  return absl::OkStatus();
}

absl::Status ReadResponseFlags(sluice::ServerConfig* config) {
  config->cache_control = absl::GetFlag(FLAGS_cache_control);
  for (char c : config->cache_control) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Invalid("--cache_control must not contain control characters");
    }
  }
  config->precompressed = absl::GetFlag(FLAGS_precompressed);
  config->directory_listing = absl::GetFlag(FLAGS_directory_listing);
  const int64_t entries = absl::GetFlag(FLAGS_directory_listing_entries_max);
  const int64_t cache_bytes = absl::GetFlag(FLAGS_directory_listing_cache_bytes);
  const int threads = absl::GetFlag(FLAGS_blocking_pool_threads);
  const int queue = absl::GetFlag(FLAGS_blocking_pool_queue);
  if (entries < 1 || entries > 1000000 || cache_bytes < 0 || threads < 1 || threads > 64 ||
      queue < 1 || queue > 100000) {
    return Invalid(
        "need 1 <= --directory_listing_entries_max <= 1000000, --directory_listing_cache_bytes "
        ">= 0, 1 <= --blocking_pool_threads <= 64, 1 <= --blocking_pool_queue <= 100000");
  }
  config->directory_listing_entries_max = static_cast<size_t>(entries);
  config->directory_listing_cache_bytes = static_cast<size_t>(cache_bytes);
  config->blocking_pool_threads = static_cast<unsigned>(threads);
  config->blocking_pool_queue = static_cast<size_t>(queue);
  return absl::OkStatus();
}

// At start-up only: the table is shared by the workers without a lock, so a
// reload never touches it (a changed mime_types needs a restart).
absl::Status LoadMimeTypesFlag() {
  if (const std::string types = absl::GetFlag(FLAGS_mime_types); !types.empty()) {
    if (absl::Status st = sluice::LoadMimeTypes(types); !st.ok()) {
      return Invalid(std::string(st.message()));
    }
  }
  return absl::OkStatus();
}

// Every flag into a ServerConfig; kInvalidArgument names the flag at fault.
absl::StatusOr<sluice::ServerConfig> ConfigFromFlags() {
  sluice::ServerConfig config;
  config.root = absl::GetFlag(FLAGS_root);
  config.listen = absl::GetFlag(FLAGS_listen);
  config.threads = absl::GetFlag(FLAGS_threads);
  config.backlog = absl::GetFlag(FLAGS_backlog);
  config.sqpoll = absl::GetFlag(FLAGS_sqpoll);
  config.multishot_recv = absl::GetFlag(FLAGS_multishot_recv);
  config.user = absl::GetFlag(FLAGS_user);
  config.group = absl::GetFlag(FLAGS_group);
  for (auto read : {ReadTimeouts, ReadMetricsFlags, ReadClientFlags, ReadProbeAndLogFlags,
                    ReadCacheFlags, ReadRequestLimits, ReadResponseFlags}) {
    if (absl::Status st = read(&config); !st.ok()) return st;
  }
  return config;
}

// The settings a reload applies; any other that changes takes a restart.
constexpr std::string_view kReloadableFlags[] = {"root", "cache_control", "precompressed",
                                                 "max_ranges", "directory_listing"};

// The configuration file under the command line: every key of the file
// whose flag the command line did not give sets that flag; every other
// such flag goes back to its default (a key removed from the file between
// reloads stops applying). Main thread only.
absl::Status ApplyFileFlags(const sluice::ConfigFile& file) {
  for (const sluice::FlagKey& key : sluice::ConfigFlagKeys()) {
    const std::string name(key.name);
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) return absl::InternalError(absl::StrCat("no flag --", name));
    if (absl::flags_internal::PrivateHandleAccessor::IsSpecifiedOnCommandLine(*flag)) continue;
    std::string value = flag->DefaultValue();
    for (const sluice::FlagSetting& setting : file.flags) {
      if (setting.name == key.name) value = setting.text;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return Invalid(absl::StrCat(file.path, ": ", name, ": ", error));
    }
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> FlagValues() {
  std::vector<std::pair<std::string, std::string>> values;
  for (const sluice::FlagKey& key : sluice::ConfigFlagKeys()) {
    if (absl::CommandLineFlag* flag = absl::FindCommandLineFlag(std::string(key.name))) {
      values.emplace_back(std::string(key.name), flag->CurrentValue());
    }
  }
  return values;
}

// --config read and applied under the command line, then every flag into
// settings; with no --config, the flags alone.
absl::StatusOr<sluice::LoadedConfig> LoadConfig(const std::string& path) {
  sluice::LoadedConfig loaded;
  if (!path.empty()) {
    absl::StatusOr<sluice::ConfigFile> file = sluice::LoadConfigFile(path);
    if (!file.ok()) return file.status();
    if (absl::Status st = ApplyFileFlags(*file); !st.ok()) return st;
    loaded.sites = std::move(file->sites);
  }
  absl::StatusOr<sluice::ServerConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    return Invalid(path.empty() ? std::string(config.status().message())
                                : absl::StrCat(path, ": ", config.status().message()));
  }
  loaded.config = *std::move(config);
  return loaded;
}

// The loader SIGHUP calls: the file again, and which changed settings a
// reload cannot apply, against the values the server started with.
sluice::ConfigLoader MakeReloader(const std::string& path) {
  if (path.empty()) return nullptr;
  const auto started_with = FlagValues();
  return [path, started_with]() -> absl::StatusOr<sluice::LoadedConfig> {
    absl::StatusOr<sluice::LoadedConfig> loaded = LoadConfig(path);
    if (!loaded.ok()) return loaded.status();
    const auto now = FlagValues();
    for (size_t i = 0; i < now.size() && i < started_with.size(); ++i) {
      const bool reloadable = std::find(std::begin(kReloadableFlags), std::end(kReloadableFlags),
                                        now[i].first) != std::end(kReloadableFlags);
      if (!reloadable && now[i].second != started_with[i].second) {
        loaded->restart_needed.push_back(now[i].first);
      }
    }
    return loaded;
  };
}

// --check-config: what a start would check short of binding: the file, the
// flags and their limits, every site's root, the listen addresses' syntax.
int CheckConfig(const std::string& path, const sluice::LoadedConfig& loaded) {
  absl::Status st = sluice::CheckSettings(loaded.config);
  if (st.ok()) st = sluice::BuildGeneration(loaded.config, loaded.sites, 1).status();
  if (!st.ok()) {
    std::cerr << (path.empty() ? "" : path + ": ") << st.message() << "\n";
    return kExitConfig;
  }
  std::cout << (path.empty() ? std::string("flags") : path) << ": ok\n";
  return EXIT_SUCCESS;
}

// 0 served and stopped; 3 io_uring refused; 1 an internal failure; 2 any
// configuration problem (bad flag, missing root, address in use).
int ExitCodeFor(const absl::Status& st) {
  if (st.ok()) return EXIT_SUCCESS;
  if (sluice::IsIoUringRefused(st)) return kExitNoIoUring;
  return st.code() == absl::StatusCode::kInternal ? EXIT_FAILURE : kExitConfig;
}

}  // namespace

int main(int argc, char** argv) {
  // As `nginx -t` users expect to spell it: --check-config is --check_config.
  static char kCheckConfig[] = "--check_config";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--check-config") == 0) argv[i] = kCheckConfig;
  }
  SetUpUsage(argv[0]);
  if (PrintedHelp(argc, argv)) return EXIT_SUCCESS;
  absl::ParseCommandLine(argc, argv);
  const std::string config_path = absl::GetFlag(FLAGS_config);
  absl::StatusOr<sluice::LoadedConfig> loaded = LoadConfig(config_path);
  // The file may set log_format: set it up once the file is applied.
  if (!SetUpLogFormat()) return kExitConfig;
  if (absl::GetFlag(FLAGS_check_config)) {
    if (!loaded.ok()) {
      std::cerr << loaded.status().message() << "\n";
      return kExitConfig;
    }
    return CheckConfig(config_path, *loaded);
  }
  if (absl::Status st = loaded.ok() ? LoadMimeTypesFlag() : loaded.status(); !st.ok()) {
    sluice::LogError(std::string(st.message()));
    return kExitConfig;
  }
  const absl::Status st =
      sluice::RunServer(loaded->config, std::move(loaded->sites), MakeReloader(config_path));
  if (!st.ok()) sluice::LogError(std::string(st.message()));
  return ExitCodeFor(st);
}
