// Each chain stage on hand-made candidates with hand-computed outcomes.
#include "model/sampling/candidates.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool::sampling_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Candidates with ids 0.. and the given logits, unsorted.
std::vector<Candidate> FromLogits(const std::vector<float>& logits) {
  std::vector<Candidate> out;
  for (size_t i = 0; i < logits.size(); ++i) {
    out.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
  }
  return out;
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<Candidate> FromProbs(const std::vector<float>& probs) {
  std::vector<float> logits;
  for (float p : probs) logits.push_back(std::log(p));
  return FromLogits(logits);
}

std::vector<int32_t> Ids(const CandidateSet& set) {
  std::vector<int32_t> ids;
  for (const Candidate& c : set) ids.push_back(c.id);
  return ids;
}

TEST(SoftmaxTest, SortsAndNormalises) {
  auto c = FromLogits({0.0f, std::log(2.0f), std::log(5.0f)});
  CandidateSet set{c.data(), c.size(), false};
  EXPECT_TRUE(Softmax(set));
  EXPECT_TRUE(set.sorted);
  EXPECT_THAT(Ids(set), ElementsAre(2, 1, 0));
  EXPECT_NEAR(set.data[0].p, 5.0 / 8, 1e-6);
  EXPECT_NEAR(set.data[1].p, 2.0 / 8, 1e-6);
  EXPECT_NEAR(set.data[2].p, 1.0 / 8, 1e-6);
}

TEST(SoftmaxTest, EqualLogitsRankByLowerId) {
  auto c = FromLogits({1.0f, 3.0f, 1.0f, 3.0f});
  CandidateSet set{c.data(), c.size(), false};
  Softmax(set);
  EXPECT_THAT(Ids(set), ElementsAre(1, 3, 0, 2));
}

TEST(SoftmaxTest, UnnormalisableRowPutsAllMassOnTop) {
  auto inf = FromLogits({1.0f, kInf, 2.0f});
  CandidateSet set{inf.data(), inf.size(), false};
  EXPECT_FALSE(Softmax(set));
  EXPECT_EQ(set.data[0].id, 1);
  EXPECT_EQ(set.data[0].p, 1.0f);
  EXPECT_EQ(set.data[1].p, 0.0f);

  auto masked = FromLogits({-kInf, -kInf, -kInf});
  CandidateSet all_masked{masked.data(), masked.size(), false};
  EXPECT_FALSE(Softmax(all_masked));
  EXPECT_EQ(all_masked.data[0].id, 0);
  EXPECT_EQ(all_masked.data[0].p, 1.0f);
}

TEST(TopKTest, KeepsTheKBestInRankOrder) {
  Scratch scratch;
  auto c = FromLogits({1.0f, 3.0f, 2.0f, 5.0f, 4.0f});
  CandidateSet set{c.data(), c.size(), false};
  TopK(set, 2, scratch);
  EXPECT_TRUE(set.sorted);
  EXPECT_THAT(Ids(set), ElementsAre(3, 4));
}

TEST(TopKTest, TieAtTheCutGoesToLowerId) {
  Scratch scratch;
  auto c = FromLogits({1.0f, 2.0f, 0.0f, 2.0f});
  CandidateSet set{c.data(), c.size(), false};
  TopK(set, 1, scratch);
  EXPECT_THAT(Ids(set), ElementsAre(1));
}

TEST(TopKTest, OffOrLargerThanTheSetChangesNothing) {
  Scratch scratch;
  for (int32_t k : {0, -1, 5, 100}) {
    auto c = FromLogits({1.0f, 3.0f, 2.0f, 5.0f, 4.0f});
    CandidateSet set{c.data(), c.size(), false};
    TopK(set, k, scratch);
    EXPECT_EQ(set.size, 5u) << k;
    EXPECT_THAT(Ids(set), ElementsAre(0, 1, 2, 3, 4)) << k;
  }
}

TEST(TopKTest, SelectionEqualsFullSortPrefix) {
  // Rows that stress the buffered selection: many equal logits, rising
  // logits (every candidate beats the bar), falling, all equal, and a
  // shuffled row whose ids are not in scan order.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> coarse(-50, 50);
  std::vector<std::vector<Candidate>> rows;
  std::vector<float> logits(5000);
  for (float& l : logits) l = static_cast<float>(coarse(rng)) * 0.25f;
  rows.push_back(FromLogits(logits));
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i) * 0.01f;
  rows.push_back(FromLogits(logits));
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = -float(i) * 0.01f;
  rows.push_back(FromLogits(logits));
  rows.push_back(FromLogits(std::vector<float>(5000, -kInf)));
  rows.push_back(rows[0]);
  std::shuffle(rows.back().begin(), rows.back().end(), rng);

  Scratch scratch;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int32_t k : {1, 40, 127, 128, 129, 300, 2500, 4999}) {
      std::vector<Candidate> c = rows[r];
      CandidateSet set{c.data(), c.size(), false};
      TopK(set, k, scratch);
      std::vector<Candidate> expected = rows[r];
      std::sort(expected.begin(), expected.end(), Ranks);
      ASSERT_EQ(set.size, static_cast<size_t>(k));
      ASSERT_TRUE(set.sorted);
      for (int32_t i = 0; i < k; ++i) {
        ASSERT_EQ(set.data[i].id, expected[i].id)
            << "row " << r << " k=" << k << " i=" << i;
      }
    }
  }
}

TEST(TopPTest, KeepsTheSmallestPrefixReachingP) {
  auto c = FromProbs({0.4f, 0.3f, 0.2f, 0.1f});
  CandidateSet set{c.data(), c.size(), false};
  TopP(set, 0.5f, 0);  // 0.4 < 0.5 <= 0.4 + 0.3
  EXPECT_THAT(Ids(set), ElementsAre(0, 1));

  auto d = FromProbs({0.6f, 0.25f, 0.1f, 0.05f});
  CandidateSet one{d.data(), d.size(), false};
  TopP(one, 0.5f, 0);
  EXPECT_THAT(Ids(one), ElementsAre(0));

  auto e = FromProbs({0.4f, 0.3f, 0.2f, 0.1f});
  CandidateSet three{e.data(), e.size(), false};
  TopP(three, 0.85f, 0);  // 0.7 < 0.85 <= 0.9
  EXPECT_THAT(Ids(three), ElementsAre(0, 1, 2));
}

TEST(TopPTest, ZeroKeepsOneAndMinKeepRaisesTheFloor) {
  auto c = FromProbs({0.4f, 0.3f, 0.2f, 0.1f});
  CandidateSet set{c.data(), c.size(), false};
  TopP(set, 0.0f, 0);
  EXPECT_THAT(Ids(set), ElementsAre(0));

  auto d = FromProbs({0.4f, 0.3f, 0.2f, 0.1f});
  CandidateSet kept{d.data(), d.size(), false};
  TopP(kept, 0.5f, 3);
  EXPECT_EQ(kept.size, 3u);
}

TEST(TopPTest, OneIsOff) {
  auto c = FromProbs({0.4f, 0.3f, 0.2f, 0.1f});
  CandidateSet set{c.data(), c.size(), false};
  TopP(set, 1.0f, 0);
  EXPECT_EQ(set.size, 4u);
  EXPECT_FALSE(set.sorted);  // no work done at all
}

TEST(MinPTest, KeepsProbabilitiesAtLeastPTimesTheMax) {
  // Threshold 0.2 * 0.5 = 0.1: 0.15 stays, 0.05 goes. Unsorted input, so
  // the cheap path runs and keeps the input order.
  auto c = FromProbs({0.15f, 0.5f, 0.05f, 0.3f});
  CandidateSet set{c.data(), c.size(), false};
  MinP(set, 0.2f, 0);
  EXPECT_FALSE(set.sorted);
  EXPECT_THAT(Ids(set), ElementsAre(0, 1, 3));

  // Threshold 0.25: only 0.5 and 0.3; sorted input takes the prefix path.
  auto d = FromProbs({0.5f, 0.3f, 0.15f, 0.05f});
  CandidateSet sorted{d.data(), d.size(), true};
  MinP(sorted, 0.5f, 0);
  EXPECT_THAT(Ids(sorted), ElementsAre(0, 1));
}

TEST(MinPTest, ATokenExactlyAtTheThresholdStays) {
  // logit_1 == logit_0 + log(0.5) exactly, so p_1 == 0.5 * p_max.
  const float at = std::log(0.5f);
  for (bool sorted : {false, true}) {
    auto c = FromLogits({0.0f, at, at - 0.01f});
    CandidateSet set{c.data(), c.size(), sorted};
    MinP(set, 0.5f, 0);
    EXPECT_THAT(Ids(set), ElementsAre(0, 1)) << "sorted=" << sorted;
  }
}

TEST(MinPTest, MinKeepForcesTheSortedPath) {
  auto c = FromProbs({0.15f, 0.5f, 0.05f, 0.3f});
  CandidateSet set{c.data(), c.size(), false};
  MinP(set, 0.5f, 3);  // only 2 pass, 3 must stay
  EXPECT_TRUE(set.sorted);
  EXPECT_THAT(Ids(set), ElementsAre(1, 3, 0));
}

TEST(MinPTest, AllMaskedRowKeepsCandidates) {
  auto c = FromLogits({-kInf, -kInf});
  CandidateSet set{c.data(), c.size(), false};
  MinP(set, 0.05f, 0);
  EXPECT_GE(set.size, 1u);
}

TEST(TypicalTest, KeepsTheConfidentTokenWhenItIsTypical) {
  // H = 0.168 nats; |-ln 0.97 - H| = 0.137 beats |-ln 0.01 - H| = 4.44, and
  // 0.97 alone exceeds p = 0.5.
  Scratch scratch;
  auto c = FromProbs({0.97f, 0.01f, 0.01f, 0.01f});
  CandidateSet set{c.data(), c.size(), false};
  Typical(set, 0.5f, 0, scratch);
  EXPECT_THAT(Ids(set), ElementsAre(0));
}

TEST(TypicalTest, CanDropTheMostLikelyToken) {
  // H = 1.332; scores: 0.4 -> |0.916 - 1.332| = 0.416, 0.2 -> 0.277. The
  // three 0.2 tokens come first; their sum 0.6 > 0.5 after all three.
  Scratch scratch;
  auto c = FromProbs({0.4f, 0.2f, 0.2f, 0.2f});
  CandidateSet set{c.data(), c.size(), false};
  Typical(set, 0.5f, 0, scratch);
  EXPECT_FALSE(set.sorted);
  EXPECT_THAT(Ids(set), ElementsAre(1, 2, 3));

  auto d = FromProbs({0.4f, 0.2f, 0.2f, 0.2f});
  CandidateSet two{d.data(), d.size(), false};
  Typical(two, 0.3f, 0, scratch);  // 0.2 < 0.3 < 0.4
  EXPECT_THAT(Ids(two), ElementsAre(1, 2));
}

TEST(TypicalTest, OneIsOffAndMinKeepIsHonoured) {
  Scratch scratch;
  auto c = FromProbs({0.4f, 0.2f, 0.2f, 0.2f});
  CandidateSet set{c.data(), c.size(), false};
  Typical(set, 1.0f, 0, scratch);
  EXPECT_EQ(set.size, 4u);

  auto d = FromProbs({0.97f, 0.01f, 0.01f, 0.01f});
  CandidateSet kept{d.data(), d.size(), false};
  Typical(kept, 0.5f, 3, scratch);
  EXPECT_EQ(kept.size, 3u);
}

TEST(TypicalTest, UnderflowedProbabilitiesAreLeastTypical) {
  Scratch scratch;
  auto c = FromLogits({0.0f, 0.0f, -200.0f});  // exp(-200) is 0 in float
  CandidateSet set{c.data(), c.size(), false};
  Typical(set, 0.9f, 0, scratch);
  EXPECT_THAT(Ids(set), UnorderedElementsAre(0, 1));
}

TEST(TailFreeTest, CutsWhereTheCurvatureMassExceedsZ) {
  // p = .4 .3 .2 .06 .03 .01: first differences .1 .1 .14 .03 .02, |second|
  // 0 .04 .11 .01, normalised 0 .25 .6875 .0625, cumulative 0 .25 .9375 1.
  // The cut is at the first i >= 1 whose cumulative value exceeds z, keeping
  // i candidates.
  const std::vector<float> probs = {0.4f, 0.3f, 0.2f, 0.06f, 0.03f, 0.01f};
  Scratch scratch;
  struct Case {
    float z;
    size_t kept;
  };
  for (Case k : {Case{0.2f, 1}, Case{0.5f, 2}, Case{0.95f, 3}, Case{1.0f, 6}}) {
    auto c = FromProbs(probs);
    CandidateSet set{c.data(), c.size(), false};
    TailFree(set, k.z, 0, scratch);
    EXPECT_EQ(set.size, k.kept) << "z=" << k.z;
    EXPECT_EQ(set.data[0].id, 0);
  }
}

TEST(TailFreeTest, NeverEmptiesTheSetAndSkipsTinySets) {
  Scratch scratch;
  auto c = FromProbs({0.9f, 0.05f, 0.04f, 0.01f});  // d2 mass mostly at 0
  CandidateSet set{c.data(), c.size(), false};
  TailFree(set, 0.1f, 0, scratch);
  EXPECT_EQ(set.size, 1u);

  auto d = FromProbs({0.9f, 0.1f});
  CandidateSet two{d.data(), d.size(), false};
  TailFree(two, 0.1f, 0, scratch);
  EXPECT_EQ(two.size, 2u);
}

TEST(TemperatureTest, DividesLogitsAndKeepsOrderFlag) {
  auto c = FromLogits({2.0f, -4.0f});
  CandidateSet set{c.data(), c.size(), true};
  Temperature(set, 0.5f);
  EXPECT_EQ(c[0].logit, 4.0f);
  EXPECT_EQ(c[1].logit, -8.0f);
  EXPECT_TRUE(set.sorted);
}

// DrawIndex must be std::discrete_distribution<int>, draw for draw.
TEST(DrawIndexTest, MatchesStdDiscreteDistribution) {
  std::mt19937 weights_rng(123);
  std::uniform_real_distribution<float> weight(0.0f, 1.0f);
  std::vector<double> cumulative;
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t n = 1 + trial % 60;
    std::vector<Candidate> c(n);
    std::vector<float> p(n);
    for (size_t i = 0; i < n; ++i) {
      // Some zero weights, some tiny ones.
      float w = weight(weights_rng);
      if (i % 7 == 3) w = 0.0f;
      if (i % 11 == 5) w *= 1e-30f;
      if (i == 0) w += 0.01f;
      c[i] = {static_cast<int32_t>(i), 0.0f, w};
      p[i] = w;
    }
    CandidateSet set{c.data(), n, true};
    CountingRng ours(static_cast<uint32_t>(trial));
    std::mt19937 theirs(static_cast<uint32_t>(trial));
    for (int draw = 0; draw < 5; ++draw) {
      std::discrete_distribution<int> dist(p.begin(), p.end());
      ASSERT_EQ(DrawIndex(set, ours, cumulative),
                static_cast<size_t>(dist(theirs)))
          << "trial " << trial << " draw " << draw;
    }
    ASSERT_EQ(ours.engine(), theirs) << "RNG consumption differs, trial " << trial;
    // Two 32-bit outputs per draw (generate_canonical<double, 53>), none
    // for a single candidate.
    ASSERT_EQ(ours.used(), n < 2 ? 0u : 10u) << "trial " << trial;
  }
}

// A stream skipped by used() continues as the original does: what a
// replayed sequence relies on.
TEST(CountingRngTest, DiscardResumesTheStream) {
  CountingRng original(42);
  for (int i = 0; i < 37; ++i) original();
  CountingRng resumed(42);
  resumed.discard(original.used());
  EXPECT_EQ(resumed.used(), 37u);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(resumed(), original());
}

}  // namespace
}  // namespace layerpool::sampling_internal
