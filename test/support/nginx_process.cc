#include "support/nginx_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "support/http_client.h"

namespace sluice::test {
namespace {

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool ReadFileQuietly(const std::string& path, std::string* out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) out->append(buffer, n);
  close(fd);
  return true;
}

bool WriteConfig(const std::string& path, const std::string& dir, const std::string& server_body,
                 int port, std::string* error) {
  std::string c;
  // As root, nginx would otherwise serve as "nobody", who cannot read the
  // root that sluice (also root here) reads.
  if (geteuid() == 0) c += "user root;\n";
  c += "daemon off;\nmaster_process off;\nworker_processes 1;\n";
  c += "error_log " + dir + "/error.log;\npid " + dir + "/nginx.pid;\n";
  c += "events { worker_connections 256; }\n";
  c += "http {\n";
  c += "  include " + std::string(kNginxMimeTypes) + ";\n";
  c += "  default_type application/octet-stream;\n";
  c += "  access_log off;\n";
  for (const char* kind : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    c += "  " + std::string(kind) + "_temp_path " + dir + "/" + kind + "_temp;\n";
  }
  c += "  server {\n";
  c += "    listen 127.0.0.1:" + std::to_string(port) + ";\n";
  c += server_body;
  c += "  }\n}\n";
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, c.data(), c.size()) != static_cast<ssize_t>(c.size())) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  return true;
}

}  // namespace

bool NginxProcess::Start(const std::string& dir, const std::string& server_body,
                         std::string* error) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    const int port = PickFreePort();
    if (port <= 0) {
      *error = "cannot pick a free port";
      return false;
    }
    const std::string conf = dir + "/nginx.conf";
    if (!WriteConfig(conf, dir, server_body, port, error)) return false;
    const std::string log = dir + "/stderr.txt";
    if (!Spawn({kNginx, "-p", dir + "/", "-e", dir + "/error.log", "-c", conf}, log, error)) {
      return false;
    }
    if (WaitUntilListening(static_cast<uint16_t>(port), std::chrono::seconds(10))) {
      port_ = static_cast<uint16_t>(port);
      return true;
    }
    std::string text;
    ReadFileQuietly(log, &text);
    std::string error_log;
    ReadFileQuietly(dir + "/error.log", &error_log);
    Stop();
    *error = "nginx did not start: " + text + error_log;
    if ((text + error_log).find("Address already in use") == std::string::npos) return false;
  }
  return false;
}

void NginxProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!WaitFor(std::chrono::seconds(5))) {
    kill(pid_, SIGKILL);
    WaitFor(std::chrono::seconds(5));
  }
  pid_ = -1;
}

bool NginxProcess::Spawn(const std::vector<std::string>& argv, const std::string& log,
                         std::string* error) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || in < 0) {
    *error = "open: " + std::string(std::strerror(errno));
    if (out >= 0) close(out);
    if (in >= 0) close(in);
    return false;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out);
  close(in);
  if (pid < 0) {
    *error = "fork: " + std::string(std::strerror(errno));
    return false;
  }
  pid_ = pid;
  return true;
}

bool NginxProcess::WaitFor(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Millis(10));
  }
}

bool NginxProcess::WaitUntilListening(uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // Exited: it will not listen.
      return false;
    }
    HttpConnection probe;
    if (probe.Connect("127.0.0.1", port, Millis(200))) return true;
    std::this_thread::sleep_for(Millis(20));
  }
  return false;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string MediaType(std::string_view value) {
  std::string type(value.substr(0, value.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  return Lower(type);
}

std::string LocationPath(std::string_view location) {
  if (const size_t scheme = location.find("://"); scheme != std::string_view::npos) {
    location.remove_prefix(scheme + 3);
    const size_t slash = location.find('/');
    location = slash == std::string_view::npos ? std::string_view("/") : location.substr(slash);
  }
  return std::string(location.substr(0, location.find('?')));
}

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

}  // namespace sluice::test
