#include "model/sampling/penalties.h"

#include <vector>

#include "gtest/gtest.h"

namespace layerpool::sampling_internal {
namespace {

std::vector<Candidate> ById(const std::vector<float>& logits) {
  std::vector<Candidate> out;
  for (size_t i = 0; i < logits.size(); ++i) {
    out.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
  }
  return out;
}

TEST(PenaltyHistoryTest, WindowKeepsTheLastN) {
  PenaltyHistory history(3);
  for (int32_t t : {5, 1, 2, 5, 3}) history.Accept(t);
  // Window: 2, 5, 3 (the first 5 and the 1 have left).
  EXPECT_EQ(history.count(1), 0);
  EXPECT_EQ(history.count(2), 1);
  EXPECT_EQ(history.count(5), 1);
  EXPECT_EQ(history.count(3), 1);
  history.Accept(5);  // window 5, 3, 5
  EXPECT_EQ(history.count(5), 2);
  EXPECT_EQ(history.count(2), 0);
}

TEST(PenaltyHistoryTest, ZeroRecordsNothingAndMinusOneEverything) {
  PenaltyHistory off(0);
  PenaltyHistory all(-1);
  for (int i = 0; i < 1000; ++i) {
    off.Accept(7);
    all.Accept(7);
  }
  EXPECT_EQ(off.count(7), 0);
  EXPECT_EQ(all.count(7), 1000);
}

TEST(PenaltyHistoryTest, RepeatDividesPositiveAndMultipliesNegative) {
  PenaltyHistory history(3);
  for (int32_t t : {4, 0, 1, 2}) history.Accept(t);  // 4 has left
  auto c = ById({2.0f, -1.0f, 0.0f, 1.5f, 3.0f});
  history.Apply(c, 2.0f, 0.0f, 0.0f);
  EXPECT_EQ(c[0].logit, 1.0f);   // positive: divided
  EXPECT_EQ(c[1].logit, -2.0f);  // negative: multiplied
  EXPECT_EQ(c[2].logit, 0.0f);   // zero stays zero
  EXPECT_EQ(c[3].logit, 1.5f);   // never seen
  EXPECT_EQ(c[4].logit, 3.0f);   // outside the window
}

TEST(PenaltyHistoryTest, FrequencyAndPresenceSubtract) {
  PenaltyHistory history(64);
  for (int32_t t : {7, 7, 2, 7}) history.Accept(t);
  auto c = ById(std::vector<float>(10, 1.0f));
  history.Apply(c, 1.0f, 0.5f, 1.0f);
  EXPECT_FLOAT_EQ(c[7].logit, 1.0f - (3 * 0.5f + 1.0f));
  EXPECT_FLOAT_EQ(c[2].logit, 1.0f - (1 * 0.5f + 1.0f));
  EXPECT_EQ(c[0].logit, 1.0f);
}

TEST(PenaltyHistoryTest, RepeatThenSubtract) {
  PenaltyHistory history(8);
  history.Accept(1);
  history.Accept(1);
  auto c = ById({0.0f, 3.0f});
  history.Apply(c, 1.5f, 0.25f, 0.5f);
  EXPECT_FLOAT_EQ(c[1].logit, 3.0f / 1.5f - (2 * 0.25f + 0.5f));
}

TEST(PenaltyHistoryTest, IdsOutsideTheRowAreIgnored) {
  PenaltyHistory history(8);
  for (int32_t t : {-3, 99, 1}) history.Accept(t);
  auto c = ById({1.0f, 1.0f});
  history.Apply(c, 2.0f, 0.0f, 0.0f);
  EXPECT_EQ(c[0].logit, 1.0f);
  EXPECT_EQ(c[1].logit, 0.5f);
}

}  // namespace
}  // namespace layerpool::sampling_internal
