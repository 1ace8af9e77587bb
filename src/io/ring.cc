#include "sluice/io/ring.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace sluice {
namespace {

std::string ReadSysctl(const char* path) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[32];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return {};
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string ExplainRingError(int err) {
  if (err == ENOSYS) {
    return "io_uring is not available: the kernel has no io_uring support (ENOSYS); sluice "
           "needs Linux 5.19 or later built with CONFIG_IO_URING";
  }
  if (err == EPERM || err == EACCES) {
    const std::string disabled = ReadSysctl("/proc/sys/kernel/io_uring_disabled");
    if (disabled == "2") {
      return "io_uring is disabled by the kernel.io_uring_disabled sysctl (value 2); enable it "
             "with `sysctl -w kernel.io_uring_disabled=0`";
    }
    if (disabled == "1") {
      return "io_uring is restricted by the kernel.io_uring_disabled sysctl (value 1: only "
             "members of kernel.io_uring_group may use it); set it to 0 or run sluice in that "
             "group";
    }
    return absl::StrCat(
        "io_uring_setup was refused (", strerror(err),
        "): most likely a seccomp profile blocks it (Docker 25+ does by default); run the "
        "container with `--security-opt seccomp=docker/seccomp.json`, or allow io_uring_setup, "
        "io_uring_enter and io_uring_register in your sandbox");
  }
  return absl::StrCat("io_uring set-up failed: ", strerror(err));
}

absl::Status SetupRing(io_uring* ring, const RingOptions& options, RingInfo* info) {
  struct Attempt {
    unsigned flags;
    const char* text;
  };
  // DEFER_TASKRUN runs completion work only when this thread enters the
  // kernel, which suits a thread that owns its ring (Linux 6.1+).
  const Attempt plain[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
      {0, "none"},
  };
  // The kernel refuses DEFER_TASKRUN and COOP_TASKRUN with SQPOLL: the SQ
  // thread, not ours, runs the submissions.
  const Attempt polled[] = {
      {IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER, "SQPOLL|SINGLE_ISSUER"},
      {IORING_SETUP_SQPOLL, "SQPOLL"},
  };
  const absl::Span<const Attempt> attempts =
      options.sqpoll ? absl::Span<const Attempt>(polled) : absl::Span<const Attempt>(plain);
  int err = 0;
  for (const Attempt& a : attempts) {
    io_uring_params params;
    std::memset(&params, 0, sizeof(params));
    params.flags = a.flags | IORING_SETUP_CQSIZE;
    params.cq_entries = options.entries * 4;  // CQ well above SQ: multishot ops post many CQEs.
    params.sq_thread_idle = options.sqpoll_idle_ms;
    err = -io_uring_queue_init_params(options.entries, ring, &params);
    if (err == EINVAL) continue;  // Flag unknown to this kernel: fall back.
    if (err != 0) break;
    if (!(params.features & IORING_FEAT_NODROP)) {
      io_uring_queue_exit(ring);
      return absl::FailedPreconditionError(
          "this kernel's io_uring lacks IORING_FEAT_NODROP (Linux 5.5+); sluice cannot run "
          "without it");
    }
    info->setup_flags = a.flags;
    info->setup_flags_text = a.text;
    info->sq_entries = params.sq_entries;
    info->cq_entries = params.cq_entries;
    // Bound the io-wq pools (bounded: regular-file work; unbounded: sockets
    // and pipes, where splice always runs).
    unsigned workers[2] = {options.iowq_bounded, options.iowq_unbounded};
    io_uring_register_iowq_max_workers(ring, workers);
    // Each io_uring_enter then names the ring by its registered index, not
    // by a descriptor the kernel must look up and reference (fget/fput) on
    // every call. Linux 5.18+; without it, plain descriptors still work.
    io_uring_register_ring_fd(ring);
    return absl::OkStatus();
  }
  if (err == EPERM || err == EACCES || err == ENOSYS) {
    absl::Status st = absl::UnavailableError(ExplainRingError(err));
    st.SetPayload(kIoUringRefusedPayload, absl::Cord("1"));
    return st;
  }
  return absl::InternalError(ExplainRingError(err));
}

}  // namespace sluice
