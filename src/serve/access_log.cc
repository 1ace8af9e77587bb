#include "sluice/serve/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "sluice/base/log.h"
#include "sluice/http/json_log.h"

namespace sluice {
namespace {

// nginx escapes '"', '\' and bytes outside printable ASCII as \xHH.
void AppendEscaped(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  if (s.empty()) {
    out->push_back('-');
    return;
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out->append("\\x");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
}

void AppendUint(std::string* out, uint64_t value) {
  char digits[24];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  out->append(digits, static_cast<size_t>(end - digits));
}

// `,"name":"value"` with the value escaped.
void AppendJsonField(std::string* out, std::string_view name, std::string_view value) {
  out->append(",\"").append(name).append("\":");
  AppendJsonString(out, value);
}

int OpenLog(const std::string& path) {
  if (path == "-") return dup(STDOUT_FILENO);
  return open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessLogFile>> AccessLogFile::Open(const std::string& path,
                                                                   Format format) {
  const int fd = OpenLog(path);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open --access_log '", path, "': ", strerror(errno)));
  }
  return std::unique_ptr<AccessLogFile>(new AccessLogFile(path, fd, format));
}

AccessLogFile::~AccessLogFile() {
  if (fd_ >= 0) close(fd_);
}

absl::Status AccessLogFile::Reopen() {
  if (path_ == "-") return absl::OkStatus();
  const int fd = OpenLog(path_);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot reopen access log '", path_, "': ", strerror(errno)));
  }
  Replace(fd);
  return absl::OkStatus();
}

void AccessLogFile::Replace(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  close(fd_);
  fd_ = fd;
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

int AccessLogFile::DupCurrent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fcntl(fd_, F_DUPFD_CLOEXEC, 0);
}

AccessLogWriter::AccessLogWriter(Loop* loop, WorkerMetrics* metrics, AccessLogFile* file)
    : loop_(loop), metrics_(metrics), file_(file) {
  op_.owner = this;
  generation_ = file_->generation();
  fd_ = file_->DupCurrent();
  pending_.reserve(kFlushBytes * 2);
}

AccessLogWriter::~AccessLogWriter() {
  if (fd_ >= 0) close(fd_);
}

void AccessLogWriter::Log(const Entry& e) {
  WorkerMetrics& m = *metrics_;
  if (pending_.size() > kMaxBufferedBytes) {
    m.log_dropped_lines_total.Add();
    return;
  }
  if (file_->format() == AccessLogFile::Format::kJson) {
    AppendJson(e);
  } else {
    AppendCombined(e);
  }
  m.log_lines_total.Add();
  if (pending_.size() >= kFlushBytes) Flush();
}

void AccessLogWriter::AppendCombined(const Entry& e) {
  const time_t now = static_cast<time_t>(e.unix_ms / 1000);
  if (now != time_cached_) {
    time_cached_ = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(time_text_, sizeof(time_text_), "%d/%b/%Y:%H:%M:%S +0000", &tm);
  }
  // $remote_addr - $remote_user [$time_local] "$request" $status
  // $body_bytes_sent "$http_referer" "$http_user_agent"
  pending_.append(e.client.empty() ? std::string_view("-") : e.client);
  pending_.append(" - - [").append(time_text_).append("] \"");
  if (e.request.method.empty()) {
    pending_.push_back('-');
  } else {
    AppendEscaped(&pending_, e.request.method);
    pending_.push_back(' ');
    AppendEscaped(&pending_, e.request.target);
    pending_.push_back(' ');
    pending_.append(e.request.version);
  }
  pending_.append("\" ");
  AppendUint(&pending_, static_cast<uint64_t>(e.status));
  pending_.push_back(' ');
  AppendUint(&pending_, e.body_bytes);
  pending_.append(" \"");
  AppendEscaped(&pending_, e.referer);
  pending_.append("\" \"");
  AppendEscaped(&pending_, e.user_agent);
  pending_.append("\"\n");
}

// One object per line, the same keys in the same order every time; "peer"
// only behind a proxy, "request_id" only when the client sent a usable one.
// Path and query are the raw target split at its first '?', as sent.
void AccessLogWriter::AppendJson(const Entry& e) {
  pending_.append("{\"time\":\"");
  AppendRfc3339Millis(&pending_, e.unix_ms);
  pending_.push_back('"');
  AppendJsonField(&pending_, "client", e.client.empty() ? std::string_view("-") : e.client);
  if (!e.peer.empty() && e.peer != e.client) AppendJsonField(&pending_, "peer", e.peer);
  const std::string_view target = e.request.target;
  const size_t question = target.find('?');
  AppendJsonField(&pending_, "method", e.request.method);
  AppendJsonField(&pending_, "path", target.substr(0, question));
  AppendJsonField(
      &pending_, "query",
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1));
  pending_.append(",\"status\":");
  AppendUint(&pending_, static_cast<uint64_t>(e.status));
  pending_.append(",\"bytes\":");
  AppendUint(&pending_, e.body_bytes);
  pending_.append(",\"duration_us\":");
  AppendUint(&pending_, e.duration_us);
  AppendJsonField(&pending_, "user_agent", e.user_agent);
  AppendJsonField(&pending_, "referer", e.referer);
  if (!e.request_id.empty() && e.request_id.size() <= kRequestIdBytesMax) {
    AppendJsonField(&pending_, "request_id", e.request_id);
  }
  pending_.append("}\n");
}

void AccessLogWriter::Flush() {
  if (op_.in_flight || fd_ < 0) return;
  if (written_ >= writing_.size()) {
    if (pending_.empty()) return;
    writing_.clear();
    writing_.swap(pending_);
    written_ = 0;
  }
  io_uring_sqe* sqe = loop_->Arm(&op_, OpKind::kLogWrite);
  // Offset -1: the file position, which O_APPEND keeps at the end.
  io_uring_prep_write(sqe, fd_, writing_.data() + written_,
                      static_cast<unsigned>(writing_.size() - written_), static_cast<uint64_t>(-1));
}

void AccessLogWriter::OnCompletion(Operation* /*op*/, int res, uint32_t /*cqe_flags*/) noexcept {
  if (res < 0) {
    // A full disk or an I/O error: count it, drop this buffer, keep serving.
    metrics_->log_write_errors_total.Add();
    writing_.clear();
    written_ = 0;
    return;
  }
  written_ += static_cast<size_t>(res);
  if (res == 0) {
    metrics_->log_write_errors_total.Add();
    writing_.clear();
    written_ = 0;
  }
  if (pending_.size() >= kFlushBytes || written_ < writing_.size()) Flush();
}

void AccessLogWriter::Tick() {
  const uint64_t g = file_->generation();
  if (g != generation_ && !op_.in_flight) {
    // Finish what was bound for the old file, then move to the new one.
    if (written_ < writing_.size()) {
      Flush();
      return;
    }
    const int fd = file_->DupCurrent();
    if (fd >= 0) {
      if (fd_ >= 0) loop_->CloseLater(fd_);
      fd_ = fd;
    }
    generation_ = g;
  }
  Flush();
}

}  // namespace sluice
