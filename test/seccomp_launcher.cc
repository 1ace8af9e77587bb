// seccomp_launcher ERRNO PROGRAM [ARGS...]
//
// Installs a seccomp filter under which io_uring_setup(2) fails with ERRNO
// (EPERM, as Docker's default profile does, or ENOSYS, as on a kernel
// without io_uring), allows every other system call, then execv()s PROGRAM
// with ARGS. The filter is inherited across exec and by every thread, so
// the program sees io_uring refused exactly as in a container. Used by
// integration_hostile_test to check the server's explanation and exit code.

#include <seccomp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s EPERM|ENOSYS PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  int err;
  if (std::strcmp(argv[1], "EPERM") == 0) {
    err = EPERM;
  } else if (std::strcmp(argv[1], "ENOSYS") == 0) {
    err = ENOSYS;
  } else {
    std::fprintf(stderr, "seccomp_launcher: unknown errno name '%s'\n", argv[1]);
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) {
    std::fprintf(stderr, "seccomp_launcher: seccomp_init failed\n");
    return 1;
  }
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(static_cast<uint32_t>(err)),
                            seccomp_syscall_resolve_name("io_uring_setup"), 0);
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    std::fprintf(stderr, "seccomp_launcher: installing the filter failed: %s\n",
                 std::strerror(-rc));
    return 1;
  }
  execv(argv[2], argv + 2);
  std::fprintf(stderr, "seccomp_launcher: execv %s: %s\n", argv[2], std::strerror(errno));
  return 127;
}
