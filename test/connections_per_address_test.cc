#include "sluice/serve/connections_per_address.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

IpAddress Addr(const std::string& text) { return *IpAddress::Parse(text); }

TEST(ConnectionsPerAddressTest, RefusesPastTheLimitAndCountsBackDown) {
  ConnectionsPerAddress table(/*limit=*/3, /*seed=*/42);
  const auto a = table.SlotsFor(Addr("192.0.2.1"));
  const auto b = table.SlotsFor(Addr("192.0.2.2"));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(table.TryAcquire(a)) << i;
  EXPECT_FALSE(table.TryAcquire(a));
  EXPECT_EQ(table.Estimate(a), 3u);  // The refusal counted nothing.
  EXPECT_TRUE(table.TryAcquire(b));  // Another address is not affected.
  table.Release(a);
  EXPECT_TRUE(table.TryAcquire(a));
  for (int i = 0; i < 3; ++i) table.Release(a);
  table.Release(b);
  EXPECT_EQ(table.Estimate(a), 0u);
  EXPECT_EQ(table.Estimate(b), 0u);
}

TEST(ConnectionsPerAddressTest, MappedV4IsTheSameAddress) {
  ConnectionsPerAddress table(1, 7);
  ASSERT_TRUE(table.TryAcquire(table.SlotsFor(Addr("10.1.2.3"))));
  EXPECT_FALSE(table.TryAcquire(table.SlotsFor(Addr("::ffff:10.1.2.3"))));
}

TEST(ConnectionsPerAddressTest, ManyAddressesNeverUnderCount) {
  // 50000 distinct addresses, one connection each, limit 1: collisions may
  // refuse a few (over-counting), but every address that got in is held,
  // so a second connection from it is always refused.
  ConnectionsPerAddress table(1, 1234);
  std::vector<ConnectionsPerAddress::Slots> held;
  int refused = 0;
  for (int i = 0; i < 50000; ++i) {
    const auto s =
        table.SlotsFor(Addr("10." + std::to_string(i / 65536) + "." +
                            std::to_string((i / 256) % 256) + "." + std::to_string(i % 256)));
    if (table.TryAcquire(s)) {
      held.push_back(s);
    } else {
      ++refused;
    }
  }
  for (const auto& s : held) EXPECT_FALSE(table.TryAcquire(s));
  // Both counters shared with another address: about (50000/65536)^2 of them
  // at most; allow that bound.
  EXPECT_LT(refused, 50000 * 6 / 10);
  for (const auto& s : held) table.Release(s);
  for (const auto& s : held) EXPECT_EQ(table.Estimate(s), 0u);
}

TEST(ConnectionsPerAddressTest, ConcurrentAcquiresNeverPassTheLimit) {
  ConnectionsPerAddress table(4, 99);
  const auto a = table.SlotsFor(Addr("2001:db8::1"));
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> passed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        if (table.TryAcquire(a)) passed.fetch_add(1);
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_LE(passed.load(), 4);
    for (int i = 0; i < passed.load(); ++i) table.Release(a);
    ASSERT_EQ(table.Estimate(a), 0u);
  }
}

}  // namespace
}  // namespace sluice
