#include "sluice/serve/health.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr int64_t kSecond = 1000 * 1000 * 1000;

TEST(HealthStateTest, LiveWhileEveryWorkerBeats) {
  HealthState health(3, 100 * kSecond);
  EXPECT_TRUE(health.Live(100 * kSecond));
  EXPECT_TRUE(health.Live(105 * kSecond));  // Exactly kStaleNs old: still live.
  for (int i = 0; i < 3; ++i) health.Beat(i, 104 * kSecond);
  EXPECT_TRUE(health.Live(109 * kSecond));
}

TEST(HealthStateTest, OneStuckWorkerFailsLiveness) {
  HealthState health(3, 100 * kSecond);
  health.Beat(0, 110 * kSecond);
  health.Beat(2, 110 * kSecond);
  // Worker 1 last turned at 100 s.
  EXPECT_FALSE(health.Live(110 * kSecond));
  health.Beat(1, 110 * kSecond);
  EXPECT_TRUE(health.Live(110 * kSecond));
}

TEST(HealthStateTest, ReadyUntilCleared) {
  HealthState health(1, 0);
  EXPECT_TRUE(health.ready());
  health.set_ready(false);
  EXPECT_FALSE(health.ready());
}

}  // namespace
}  // namespace sluice
