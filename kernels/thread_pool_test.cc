#include "kernels/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace layerpool::kernels {
namespace {

using Range = std::pair<int64_t, int64_t>;

// The ranges one ParallelFor call produced, sorted.
std::vector<Range> Ranges(ThreadPool& pool, int64_t n, int64_t grain) {
  std::mutex mu;
  std::vector<Range> ranges;
  pool.ParallelFor(
      n,
      [&](int64_t begin, int64_t end) {
        std::lock_guard<std::mutex> lock(mu);
        ranges.emplace_back(begin, end);
      },
      grain);
  std::sort(ranges.begin(), ranges.end());
  return ranges;
}

class ThreadPoolTest : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolTest, RangesPartitionTheLoop) {
  ThreadPool pool(GetParam());
  for (int64_t n : {0, 1, 2, 3, 5, 16, 17, 100, 1000, 4099}) {
    for (int64_t grain : {1, 4, 16}) {
      const std::vector<Range> ranges = Ranges(pool, n, grain);
      if (n == 0) {
        EXPECT_TRUE(ranges.empty());
        continue;
      }
      ASSERT_FALSE(ranges.empty());
      EXPECT_LE(static_cast<int>(ranges.size()), pool.num_threads());
      EXPECT_EQ(ranges.front().first, 0);
      EXPECT_EQ(ranges.back().second, n);
      for (size_t i = 0; i < ranges.size(); ++i) {
        EXPECT_LT(ranges[i].first, ranges[i].second) << "empty range";
        if (i > 0) {
          EXPECT_EQ(ranges[i].first, ranges[i - 1].second);
        }
        if (ranges[i].second != n) {
          EXPECT_EQ(ranges[i].second % grain, 0);
        }
      }
      // Balanced: no range holds more than one grain above the even share.
      const int64_t units = (n + grain - 1) / grain;
      const int64_t parts = static_cast<int64_t>(ranges.size());
      for (const Range& r : ranges) {
        EXPECT_LE(r.second - r.first, ((units + parts - 1) / parts) * grain);
      }
    }
  }
}

// Ranges run on at most num_threads() distinct threads; with one thread,
// inline on the caller's.
TEST_P(ThreadPoolTest, UsesAtMostItsThreads) {
  ThreadPool pool(GetParam());
  std::mutex mu;
  std::set<std::thread::id> ids;
  pool.ParallelFor(1000, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_LE(static_cast<int>(ids.size()), pool.num_threads());
  if (pool.num_threads() == 1) {
    EXPECT_TRUE(ids.count(std::this_thread::get_id()));
  }
}

// With ranges that take a while, the workers do get a share (when the
// machine gives them a core).
TEST_P(ThreadPoolTest, WorkersTakePart) {
  ThreadPool pool(GetParam());
  std::mutex mu;
  std::set<std::thread::id> ids;
  for (int attempt = 0; attempt < 50 && static_cast<int>(ids.size()) < 2;
       ++attempt) {
    pool.ParallelFor(pool.num_threads(), [&](int64_t, int64_t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    });
  }
  EXPECT_GE(static_cast<int>(ids.size()), std::min(2, pool.num_threads()));
}

// Many short calls back to back (the decode pattern), each with a result
// that depends on every range having finished before the call returned.
TEST_P(ThreadPoolTest, ManyCallsSumCorrectly) {
  ThreadPool pool(GetParam());
  std::vector<int64_t> data(997);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<int64_t>(i);
  // Fewer rounds when the pool has more threads than this machine has cores.
  const int rounds = GetParam() > 3 ? 2000 : 20000;
  for (int iter = 0; iter < rounds; ++iter) {
    std::atomic<int64_t> sum{0};
    pool.ParallelFor(static_cast<int64_t>(data.size()),
                     [&](int64_t begin, int64_t end) {
                       int64_t local = 0;
                       for (int64_t i = begin; i < end; ++i)
                         local += data[i] + iter;
                       sum.fetch_add(local);
                     });
    ASSERT_EQ(sum.load(), 996 * 997 / 2 + 997 * int64_t{iter}) << iter;
  }
}

// Calls separated by pauses long enough for the workers to fall asleep.
TEST_P(ThreadPoolTest, WakesSleepingWorkers) {
  ThreadPool pool(GetParam());
  for (int iter = 0; iter < 5; ++iter) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::atomic<int64_t> count{0};
    pool.ParallelFor(
        64, [&](int64_t begin, int64_t end) { count.fetch_add(end - begin); });
    EXPECT_EQ(count.load(), 64);
  }
}

// A range that runs long makes the caller wait (and sleep) for it.
TEST_P(ThreadPoolTest, WaitsForSlowRanges) {
  ThreadPool pool(GetParam());
  std::atomic<int> done{0};
  pool.ParallelFor(pool.num_threads(), [&](int64_t begin, int64_t) {
    if (begin == pool.num_threads() - 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    done.fetch_add(1);
  });
  EXPECT_EQ(done.load(), pool.num_threads());
}

TEST_P(ThreadPoolTest, ConcurrentCallersAreSerialised) {
  ThreadPool pool(GetParam());
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int i = 0; i < 2000; ++i) {
      pool.ParallelFor(100, [&](int64_t begin, int64_t end) {
        total.fetch_add(end - begin);
      });
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 2000 * 100);
}

// Pools built and destroyed at once: a worker may first run after the
// caller has done every range itself, or after the destructor has started,
// and must still see the stop request.
TEST_P(ThreadPoolTest, ShortLivedPools) {
  for (int i = 0; i < 200; ++i) {
    ThreadPool pool(GetParam());
    std::atomic<int64_t> count{0};
    pool.ParallelFor(
        10, [&](int64_t begin, int64_t end) { count.fetch_add(end - begin); });
    ASSERT_EQ(count.load(), 10);
  }
  for (int i = 0; i < 50; ++i) ThreadPool idle(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadPoolTest,
                         ::testing::Values(1, 2, 3, 8));

TEST(ThreadPoolTest, NonPositiveThreadCountMeansOne) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.num_threads(), 1);
  int calls = 0;
  pool.ParallelFor(10, [&](int64_t begin, int64_t end) {
    ++calls;
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 10);
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace layerpool::kernels
