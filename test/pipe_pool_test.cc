// SizePipes (limits in, size and counts out) and the pool's budget, sizes
// and resize failures against the real kernel.
#include "sluice/io/pipe_pool.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr uint32_t kMiB = 1 << 20;
constexpr uint32_t kKiB = 1 << 10;

struct SizingCase {
  const char* name;
  uint64_t soft, hard, max_size;
  bool privileged;
  int workers;
  uint32_t wanted_bytes;
  size_t wanted_idle;
  PipeSizing want;
};

TEST(SizePipes, FitsTheUsersAllowance) {
  // clang-format off
  const SizingCase cases[] = {
      // name, soft, hard, pipe-max-size, privileged, workers, wanted size and idle; the decision.
      // Debian's defaults: 16,384 pages soft, no hard limit, 1 MiB max.
      {"privileged: as configured", 16384, 0, kMiB, true, 8, kMiB, 32, {kMiB, 32, 0, 0}},
      {"no limit: as configured", 0, 0, kMiB, false, 8, kMiB, 32, {kMiB, 32, 0, 0}},
      {"one worker takes all 64 pipes", 16384, 0, kMiB, false, 1, kMiB, 32,
       {kMiB, 32, 64ull * kMiB, 16384}},
      {"two workers: 32 pipes each", 16384, 0, kMiB, false, 2, kMiB, 32,
       {kMiB, 16, 32ull * kMiB, 16384}},
      {"eight workers: 8 each, 4 idle", 16384, 0, kMiB, false, 8, kMiB, 32,
       {kMiB, 4, 8ull * kMiB, 16384}},
      {"sixteen workers: smaller pipes", 16384, 0, kMiB, false, 16, kMiB, 32,
       {512 * kKiB, 4, 4ull * kMiB, 16384}},
      {"not even one default pipe each: 64 KiB, one idle", 16384, 0, kMiB, false, 1024, kMiB, 32,
       {64 * kKiB, 1, 64 * kKiB, 16384}},
      {"the hard limit when lower", 16384, 4096, kMiB, false, 1, kMiB, 32,
       {kMiB, 8, 16ull * kMiB, 4096}},
      {"the hard limit alone", 0, 8192, kMiB, false, 1, kMiB, 32,
       {kMiB, 16, 32ull * kMiB, 8192}},
      {"pipe-max-size caps the size", 0, 0, 256 * kKiB, false, 1, kMiB, 32,
       {256 * kKiB, 32, 0, 0}},
      {"a size the kernel would round up is rounded down", 0, 0, 300000, false, 1, kMiB, 32,
       {256 * kKiB, 32, 0, 0}},
      {"tiny pipes fit as they are", 16384, 0, kMiB, false, 2, 4096, 1,
       {4096, 1, 32ull * kMiB, 16384}},
      {"no idle pipes wanted, none kept", 16384, 0, kMiB, false, 2, kMiB, 0,
       {kMiB, 0, 32ull * kMiB, 16384}},
      {"zero workers count as one", 16384, 0, kMiB, false, 0, kMiB, 32,
       {kMiB, 32, 64ull * kMiB, 16384}},
  };
  // clang-format on
  for (const SizingCase& c : cases) {
    SCOPED_TRACE(c.name);
    PipeLimits limits;
    limits.user_pages_soft = c.soft;
    limits.user_pages_hard = c.hard;
    limits.max_size_bytes = c.max_size;
    limits.privileged = c.privileged;
    const PipeSizing got = SizePipes(limits, c.workers, c.wanted_bytes, c.wanted_idle);
    EXPECT_EQ(got.pipe_bytes, c.want.pipe_bytes);
    EXPECT_EQ(got.idle_max, c.want.idle_max);
    EXPECT_EQ(got.budget_bytes, c.want.budget_bytes);
    EXPECT_EQ(got.limit_pages, c.want.limit_pages);
    if (got.budget_bytes > 0 && got.pipe_bytes > 64 * kKiB) {
      // The plan fits: idle and as many lent, in every worker (at 64 KiB,
      // the size pipe2() gives, there is nothing left to shrink).
      const uint64_t workers = static_cast<uint64_t>(std::max(c.workers, 1));
      EXPECT_LE(workers * 2 * got.idle_max * got.pipe_bytes, got.limit_pages * limits.page_bytes);
    }
  }
}

int RealSize(const Pipe& p) { return fcntl(p.write_fd, F_GETPIPE_SZ); }

TEST(PipePool, GrowsWithinTheBudgetAndPoolsOnlyFullSizePipes) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, so that no user allowance interferes";
  PipePool pool(kMiB, 2, 3ull * kMiB);
  std::vector<Pipe> pipes(5);
  for (Pipe& p : pipes) ASSERT_TRUE(pool.Acquire(&p));
  int full = 0;
  for (const Pipe& p : pipes) {
    EXPECT_EQ(static_cast<int>(p.capacity), RealSize(p));
    if (p.capacity == kMiB) ++full;
  }
  EXPECT_EQ(full, 3);
  EXPECT_EQ(pool.over_budget(), 2u);
  EXPECT_EQ(pool.resize_failed(), 0u);
  EXPECT_EQ(pool.held_bytes(), 3ull * kMiB + 2 * 64 * kKiB);
  for (const Pipe& p : pipes) pool.Release(p, /*empty=*/true);
  EXPECT_EQ(pool.idle(), 2u);
  EXPECT_EQ(pool.held_bytes(), 2ull * kMiB);
  Pipe again;
  ASSERT_TRUE(pool.Acquire(&again));
  EXPECT_EQ(again.capacity, kMiB);
  pool.Release(again, true);
}

// As nobody, the user's allowance (pipe-user-pages-soft) runs out: the
// pool counts each pipe it could not grow and reports its real size.
TEST(PipePool, CountsResizeFailuresAndUsesTheRealSize) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
  FILE* f = fopen("/proc/sys/fs/pipe-user-pages-soft", "re");
  unsigned long long soft = 0;
  if (f == nullptr || fscanf(f, "%llu", &soft) != 1 || soft == 0 || soft > 65536) {
    if (f != nullptr) fclose(f);
    GTEST_SKIP() << "no usable fs.pipe-user-pages-soft";
  }
  fclose(f);
  const size_t count = soft / 256 + 16;  // 16 more than 1 MiB pipes fit.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    PipePool pool(kMiB, 4);  // No budget: every pipe tries to grow.
    std::vector<Pipe> pipes(count);
    for (Pipe& p : pipes) {
      if (!pool.Acquire(&p)) _exit(11);
    }
    uint64_t small = 0;
    for (const Pipe& p : pipes) {
      if (static_cast<int>(p.capacity) != RealSize(p)) _exit(12);
      if (p.capacity < kMiB) ++small;
    }
    // Other processes of nobody's may hold pipes too: at least 16 fail.
    if (pool.resize_failed() < 16 || pool.resize_failed() != small) _exit(13);
    for (const Pipe& p : pipes) pool.Release(p, true);
    if (pool.idle() > 4) _exit(14);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 setuid, 11 acquire, 12 capacity, 13 count, 14 idle";
}

}  // namespace
}  // namespace sluice
