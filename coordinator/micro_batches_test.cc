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
}

}  // namespace
}  // namespace layerpool
