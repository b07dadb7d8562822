#include "coordinator/micro_batches.h"

#include "gtest/gtest.h"

namespace layerpool {
namespace {

TEST(MicroBatchesTest, StepMsInterpolates) {
  const StepCurve curve = {{1, 10}, {2, 14}, {4, 22}};
  EXPECT_DOUBLE_EQ(StepMs(curve, 1), 10);
  EXPECT_DOUBLE_EQ(StepMs(curve, 0), 10);
  EXPECT_DOUBLE_EQ(StepMs(curve, 3), 18);
  EXPECT_DOUBLE_EQ(StepMs(curve, 8), 38);  // the last slope, 4 ms a row
  EXPECT_DOUBLE_EQ(StepMs({{1, 10}}, 4), 40);
  EXPECT_DOUBLE_EQ(StepMs({}, 4), 0);
}

// A CPU stage: 6 ms plus 4 ms a row.
StepCurve Linear() { return {{1, 10}, {2, 14}, {4, 22}, {8, 38}}; }
// A GPU stage at small batches: the same time for any rows.
StepCurve Flat() { return {{1, 10}, {2, 10}, {4, 10}, {8, 10.1}}; }

TEST(MicroBatchesTest, RegularizeClampsNoisyTimings) {
  // Taken on a busy machine: 2 rows dearer per row than 1, 8 rows cheaper
  // than 4. Clamped to 20 (2 x 10) and 30.
  const StepCurve noisy = {{1, 10}, {2, 25}, {4, 30}, {8, 29}};
  const StepCurve clean = Regularize(noisy);
  EXPECT_DOUBLE_EQ(clean[1].ms, 20);
  EXPECT_DOUBLE_EQ(clean[2].ms, 30);
  EXPECT_DOUBLE_EQ(clean[3].ms, 30);
  // With no turnaround to hide, one stage never splits its sequences,
  // whatever the timings said.
  const std::vector<int> one = MicroBatchesByLive({noisy}, 8, 0);
  for (int n = 1; n <= 8; ++n) EXPECT_EQ(one[n], 1) << n;
}

TEST(MicroBatchesTest, OnePerStageWhenStepsCostByRows) {
  const std::vector<int> by_live =
      MicroBatchesByLive({Linear(), Linear()}, 8, /*turnaround_ms=*/0.5);
  EXPECT_EQ(by_live, (std::vector<int>{0, 1, 2, 2, 2, 2, 2, 2, 2}));
  EXPECT_EQ(DescribeMicroBatches(by_live), "1:1 2:2 3:2 4:2 5:2 6:2 7:2 8:2");
  // Four stages: one sequence per micro-batch up to five (five single rows
  // take 50 ms a round, three pairs 56.5), then pairs.
  EXPECT_EQ(MicroBatchesByLive({Linear(), Linear(), Linear(), Linear()}, 6, 0.5),
            (std::vector<int>{0, 1, 2, 3, 4, 5, 3}));
}

TEST(MicroBatchesTest, TheCeilingOfASplit) {
  // Two such stages against one stage holding both halves (20 ms + 8 ms a
  // row): at four streams, two micro-batches of two rows take 28 ms a round
  // where one stage takes 44 for all four, so the ceiling is 44 / 28 =
  // 1.57x, not 2x: each stage's fixed cost is paid twice a round.
  const Round two = BestRound({Linear(), Linear()}, 4, 0);
  EXPECT_EQ(two.micro_batches, 2);
  EXPECT_DOUBLE_EQ(two.ms, 28);
  const Round one = BestRound({{{1, 20}, {2, 28}, {4, 44}}}, 4, 0);
  EXPECT_EQ(one.micro_batches, 1);
  EXPECT_DOUBLE_EQ(one.ms, 44);
  // With the turnaround, the round waits for the micro-batch to come back.
  EXPECT_DOUBLE_EQ(BestRound({Linear(), Linear()}, 4, 3).ms, 31);
}

TEST(MicroBatchesTest, OneThroughAllStagesWhenStepsAreFlat) {
  EXPECT_EQ(MicroBatchesByLive({Flat(), Flat()}, 4, 0.5),
            (std::vector<int>{0, 1, 1, 1, 1}));
}

TEST(MicroBatchesTest, MoreThanStagesWhenTheTurnaroundIsLong) {
  // 15 ms back through the coordinator: a third micro-batch hides it.
  const std::vector<int> by_live = MicroBatchesByLive({Linear(), Linear()}, 6, 15);
  EXPECT_EQ(by_live[6], 3);
}

TEST(MicroBatchesTest, UnknownCostsKeepTheDefault) {
  EXPECT_TRUE(MicroBatchesByLive({Linear(), {}}, 4, 0.5).empty());
  EXPECT_TRUE(MicroBatchesByLive({}, 4, 0.5).empty());
  EXPECT_EQ(MicroBatchesByLive({Linear()}, 0, 0.5), (std::vector<int>{0}));
  // 65,536 sequences (a worker's bound) stop the table at 1,024.
  EXPECT_EQ(MicroBatchesByLive({Linear(), Linear()}, 1 << 16, 0.5).size(),
            static_cast<size_t>(kMaxTableLive) + 1);
}

}  // namespace
}  // namespace layerpool
