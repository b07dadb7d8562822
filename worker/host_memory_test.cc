#include "worker/host_memory.h"

#include "gtest/gtest.h"
#include "worker/latency_window.h"

namespace layerpool {
namespace {

TEST(HostMemoryTest, ParsesMeminfo) {
  absl::StatusOr<HostMemory> m = ParseMeminfo(
      "MemTotal:       16315124 kB\n"
      "MemFree:         1234567 kB\n"
      "MemAvailable:    8000000 kB\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->total_bytes, 16315124ull * 1024);
  EXPECT_EQ(m->available_bytes, 8000000ull * 1024);
  EXPECT_FALSE(ParseMeminfo("MemTotal: 5 kB\n").ok());
  EXPECT_FALSE(ParseMeminfo("MemTotal: x kB\nMemAvailable: 1 kB\n").ok());
  EXPECT_TRUE(ReadHostMemory().ok());
}

TEST(LatencyWindowTest, SummarisesAndStartsOver) {
  LatencyWindow window;
  for (int i = 1; i <= 100; ++i) window.Add(i);
  v1::LatencySummary s = window.TakeSummary();
  EXPECT_EQ(s.count(), 100u);
  EXPECT_DOUBLE_EQ(s.mean_us(), 50.5);
  EXPECT_DOUBLE_EQ(s.p50_us(), 50);
  EXPECT_DOUBLE_EQ(s.p99_us(), 99);
  EXPECT_EQ(window.TakeSummary().count(), 0u);
}

}  // namespace
}  // namespace layerpool
