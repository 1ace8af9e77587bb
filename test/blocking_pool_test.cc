// BlockingPool: jobs run on helper threads and complete on the thread that
// runs the loop, through the ring; a full queue refuses; Stop() with jobs
// queued and running destroys every one without completing it (ASan checks
// nothing leaks).
#include "sluice/io/blocking_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sluice/io/loop.h"

namespace sluice {
namespace {

// A gate helper threads wait at until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return open; });
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};

struct Record {
  std::atomic<int> ran{0};
  int completed = 0;
  int destroyed = 0;
  std::vector<std::thread::id> complete_threads;
  std::vector<std::string> results;
};

class TestJob final : public BlockingJob {
 public:
  TestJob(Record* record, Gate* gate, int n) : record_(record), gate_(gate), n_(n) {}
  ~TestJob() override { ++record_->destroyed; }
  void Run() noexcept override {
    run_thread_ = std::this_thread::get_id();
    if (gate_ != nullptr) gate_->Wait();
    // Heap memory the job owns: freed with it, whatever happens.
    result_ = std::make_unique<std::string>(std::string(1000, 'x') + std::to_string(n_));
    record_->ran.fetch_add(1);
  }
  void Complete() noexcept override {
    ++record_->completed;
    record_->complete_threads.push_back(std::this_thread::get_id());
    EXPECT_NE(run_thread_, std::this_thread::get_id()) << "Run() on a helper thread";
    record_->results.push_back(result_->substr(1000));
  }

 private:
  Record* const record_;
  Gate* const gate_;
  const int n_;
  std::thread::id run_thread_;
  std::unique_ptr<std::string> result_;
};

class BlockingPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = std::make_unique<Loop>(0, &in_flight_, &submit_calls_);
    RingOptions options;
    options.entries = 64;
    const absl::Status st = loop_->Init(options, 0, 0);
    if (absl::IsUnavailable(st)) GTEST_SKIP() << "io_uring unavailable: " << st;
    ASSERT_TRUE(st.ok()) << st;
  }
  void TearDown() override {
    if (loop_ != nullptr) loop_->set_synchronous();
  }

  std::unique_ptr<BlockingPool> MakePool(unsigned threads, size_t queue) {
    return std::make_unique<BlockingPool>(loop_.get(), threads, queue,
                                          BlockingPoolCells{&queued_, &rejected_, &depth_});
  }

  // Turns the loop until `done` or 10 s; a 50 ms timeout keeps each turn short.
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (!tick_.in_flight) {
        ts_.tv_sec = 0;
        ts_.tv_nsec = 50 * 1000 * 1000;
        io_uring_prep_timeout(loop_->Arm(&tick_, OpKind::kTick), &ts_, 0, 0);
      }
      loop_->SubmitAndWait(1);
      loop_->ReapCompletions();
    }
    return true;
  }

  struct Ticker final : CompletionHandler {
    void OnCompletion(Operation*, int, uint32_t) noexcept override {}
  } ticker_;

  InFlightCells in_flight_;
  Cell submit_calls_, queued_, rejected_, depth_;
  std::unique_ptr<Loop> loop_;
  Operation tick_;
  __kernel_timespec ts_ = {};

 public:
  BlockingPoolTest() { tick_.owner = &ticker_; }
};

TEST_F(BlockingPoolTest, CompletesOnTheLoopThread) {
  auto pool = MakePool(2, 16);
  ASSERT_TRUE(pool->Start().ok());
  Record record;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pool->Submit(std::make_unique<TestJob>(&record, nullptr, i)));
  }
  EXPECT_EQ(queued_.Get(), 10u);
  ASSERT_TRUE(RunUntil([&] { return record.completed == 10; }));
  for (const std::thread::id id : record.complete_threads)
    EXPECT_EQ(id, std::this_thread::get_id());
  EXPECT_EQ(record.destroyed, 10);
  EXPECT_EQ(pool->depth(), 0u);
  EXPECT_EQ(depth_.Get(), 0u);
  EXPECT_EQ(rejected_.Get(), 0u);
  std::sort(record.results.begin(), record.results.end());
  EXPECT_EQ(record.results.front(), "0");
  pool->Stop();
}

TEST_F(BlockingPoolTest, FullQueueRefuses) {
  auto pool = MakePool(1, 2);
  ASSERT_TRUE(pool->Start().ok());
  Record record;
  Gate gate;
  ASSERT_TRUE(pool->Submit(std::make_unique<TestJob>(&record, &gate, 1)));
  ASSERT_TRUE(pool->Submit(std::make_unique<TestJob>(&record, &gate, 2)));
  EXPECT_EQ(depth_.Get(), 2u);
  EXPECT_FALSE(pool->Submit(std::make_unique<TestJob>(&record, &gate, 3)));
  EXPECT_EQ(record.destroyed, 1) << "a refused job is destroyed at once";
  EXPECT_EQ(rejected_.Get(), 1u);
  gate.Open();
  ASSERT_TRUE(RunUntil([&] { return record.completed == 2; }));
  EXPECT_EQ(depth_.Get(), 0u);
  // Room again.
  EXPECT_TRUE(pool->Submit(std::make_unique<TestJob>(&record, nullptr, 4)));
  ASSERT_TRUE(RunUntil([&] { return record.completed == 3; }));
  pool->Stop();
  EXPECT_EQ(record.destroyed, 4);
}

TEST_F(BlockingPoolTest, StopDropsQueuedAndFinishedJobsWithoutCompleting) {
  auto pool = MakePool(1, 8);
  ASSERT_TRUE(pool->Start().ok());
  Record record;
  Gate gate;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pool->Submit(std::make_unique<TestJob>(&record, &gate, i)));
  }
  // The first job is running (blocked at the gate); the helper is released
  // while Stop() waits for it.
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    gate.Open();
  });
  pool->Stop();
  opener.join();
  EXPECT_EQ(record.completed, 0);
  EXPECT_EQ(record.destroyed, 5);
  EXPECT_LE(record.ran.load(), 1);
  EXPECT_EQ(pool->depth(), 0u);
  EXPECT_EQ(depth_.Get(), 0u);
  EXPECT_FALSE(pool->Submit(std::make_unique<TestJob>(&record, nullptr, 9)));
  EXPECT_EQ(record.destroyed, 6);
  pool->Stop();  // Idempotent.
}

TEST_F(BlockingPoolTest, DestroyingARunningPoolStopsIt) {
  Record record;
  {
    auto pool = MakePool(2, 8);
    ASSERT_TRUE(pool->Start().ok());
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(pool->Submit(std::make_unique<TestJob>(&record, nullptr, i)));
    }
  }
  EXPECT_EQ(record.destroyed, 4);
  EXPECT_EQ(record.completed, 0);
}

}  // namespace
}  // namespace sluice
