#include "model/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/sampling/allocation_counter.h"
#include "model/sampling/reference_chain.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Every filter off: temperature sampling from the plain softmax.
SamplingParams Plain(float temperature, uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<float> LogOf(const std::vector<float>& probs) {
  std::vector<float> out;
  for (float q : probs) out.push_back(std::log(q));
  return out;
}

// {id: probability} of the final distribution, via n_probs.
std::map<int32_t, double> FinalDistribution(SamplingParams params,
                                            const std::vector<float>& logits) {
  params.n_probs = static_cast<int32_t>(logits.size());
  Sampler sampler(params);
  sampler.Sample(logits);
  std::map<int32_t, double> out;
  for (const TokenLogprob& t : sampler.top_logprobs()) {
    out[t.id] = std::exp(static_cast<double>(t.logprob));
  }
  return out;
}

// ---------------------------------------------------------------- validation

TEST(ValidateSamplingParamsTest, DefaultsAndEdgesAreValid) {
  EXPECT_TRUE(ValidateSamplingParams({}).ok());
  SamplingParams p;
  p.temperature = -1.0f;
  p.top_k = -5;
  p.top_p = 0.0f;
  p.min_p = 1.0f;
  p.repeat_last_n = -1;
  p.frequency_penalty = -2.0f;
  p.seed = 0xFFFFFFFF;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
}

TEST(ValidateSamplingParamsTest, RejectsOutOfRangeNamingTheField) {
  struct Case {
    std::string field;
    std::function<void(SamplingParams&)> mutate;
  };
  const std::vector<Case> cases = {
      {"temperature", [](SamplingParams& p) { p.temperature = kNaN; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kInf; }},
      {"top_p", [](SamplingParams& p) { p.top_p = -0.1f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.5f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = kNaN; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.01f; }},
      {"typical_p", [](SamplingParams& p) { p.typical_p = 2.0f; }},
      {"tfs_z", [](SamplingParams& p) { p.tfs_z = kNaN; }},
      {"repeat_penalty", [](SamplingParams& p) { p.repeat_penalty = 0.0f; }},
      {"repeat_penalty", [](SamplingParams& p) { p.repeat_penalty = -1.1f; }},
      {"repeat_penalty", [](SamplingParams& p) { p.repeat_penalty = kInf; }},
      {"repeat_last_n", [](SamplingParams& p) { p.repeat_last_n = -2; }},
      {"frequency_penalty",
       [](SamplingParams& p) { p.frequency_penalty = kNaN; }},
      {"presence_penalty",
       [](SamplingParams& p) { p.presence_penalty = -kInf; }},
      {"seed", [](SamplingParams& p) { p.seed = 1ull << 32; }},
      {"n_probs", [](SamplingParams& p) { p.n_probs = -1; }},
      {"min_keep", [](SamplingParams& p) { p.min_keep = -1; }},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    absl::Status s = ValidateSamplingParams(p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field + " = "));
    EXPECT_THAT(std::string(s.message()), HasSubstr("must be"));
  }
}

TEST(SamplerDeathTest, InvalidParamsAreAProgrammingError) {
  SamplingParams p;
  p.top_p = -1.0f;
  EXPECT_DEATH(Sampler{p}, "top_p");
}

// -------------------------------------------------------------------- greedy

TEST(GreedyTest, PicksTheArgmax) {
  for (float temperature : {0.0f, -1.0f}) {
    SamplingParams p;
    p.temperature = temperature;
    Sampler sampler(p);
    EXPECT_EQ(sampler.Sample(std::vector<float>{0.1f, 2.5f, -1.0f, 2.4f}), 1);
    EXPECT_EQ(sampler.Sample(std::vector<float>{9.0f, 2.5f}), 0);
  }
}

TEST(GreedyTest, LowestIdWinsAnExactTie) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler sampler(p);
  EXPECT_EQ(sampler.Sample(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f, 3.0f}),
            1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{-kInf, -kInf, -kInf}), 0);
  EXPECT_EQ(sampler.Sample(std::vector<float>{kNaN, 0.5f, kNaN}), 1);
}

TEST(GreedyTest, ReportsTheFullSoftmaxAtTemperatureOne) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.n_probs = 2;
  Sampler sampler(p);
  // softmax(0, ln 2, ln 5) = 1/8, 2/8, 5/8.
  EXPECT_EQ(
      sampler.Sample(std::vector<float>{0.0f, std::log(2.0f), std::log(5.0f)}),
      2);
  ASSERT_EQ(sampler.top_logprobs().size(), 2u);
  EXPECT_EQ(sampler.top_logprobs()[0].id, 2);
  EXPECT_NEAR(sampler.top_logprobs()[0].logprob, std::log(5.0 / 8), 1e-6);
  EXPECT_EQ(sampler.top_logprobs()[1].id, 1);
  EXPECT_NEAR(sampler.top_logprobs()[1].logprob, std::log(2.0 / 8), 1e-6);
}

// ----------------------------------------------------------------- penalties

TEST(PenaltiesTest, RepeatPenaltyChangesTheGreedyChoice) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 3;
  p.n_probs = 5;
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 1.5f, 3.0f};

  Sampler windowed(p);
  for (int32_t t : {4, 0, 1, 2}) windowed.Accept(t);  // 4 leaves the window
  EXPECT_EQ(windowed.Sample(logits), 4);
  // Log-probability differences are logit differences: penalised logits
  // are 2/2 = 1, -1*2 = -2, 0.5/2 = 0.25, 1.5, 3.
  std::map<int32_t, float> lp;
  for (const TokenLogprob& t : windowed.top_logprobs()) lp[t.id] = t.logprob;
  EXPECT_NEAR(lp[4] - lp[0], 3.0f - 1.0f, 1e-5);
  EXPECT_NEAR(lp[4] - lp[1], 3.0f + 2.0f, 1e-5);
  EXPECT_NEAR(lp[4] - lp[2], 3.0f - 0.25f, 1e-5);
  EXPECT_NEAR(lp[4] - lp[3], 3.0f - 1.5f, 1e-5);

  // With every token counted, 4 drops to 1.5 and ties with 3: lower id wins.
  p.repeat_last_n = -1;
  Sampler everything(p);
  for (int32_t t : {4, 0, 1, 2}) everything.Accept(t);
  EXPECT_EQ(everything.Sample(logits), 3);

  // repeat_last_n = 0 turns the penalties off.
  p.repeat_last_n = 0;
  Sampler off(p);
  for (int32_t t : {4, 4, 4}) off.Accept(t);
  EXPECT_EQ(off.Sample(logits), 4);
}

// A Generate request may ask for any window up to 2^30 tokens (the fuzzer
// found the sampler reserving 4 GiB for it up front). The history grows
// with the tokens accepted, and a window longer than them counts them all.
TEST(PenaltiesTest, AHugeWindowCostsOnlyTheTokensAccepted) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 1 << 30;
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 1.5f, 3.0f};
  const long before = testing::AllocatedBytes();
  Sampler huge(p);
  for (int32_t t : {4, 0, 1, 2}) huge.Accept(t);
  EXPECT_LT(testing::AllocatedBytes() - before, 1 << 20);
  // As with every token counted: 4 drops to 1.5 and ties with 3.
  EXPECT_EQ(huge.Sample(logits), 3);
}

TEST(PenaltiesTest, FrequencyAndPresenceSubtractPerCountAndOnce) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 1.0f;
  p.n_probs = 10;
  Sampler sampler(p);
  for (int32_t t : {7, 7, 2, 7}) sampler.Accept(t);
  const std::vector<float> logits(10, 0.0f);
  EXPECT_EQ(sampler.Sample(logits), 0);
  std::map<int32_t, float> lp;
  for (const TokenLogprob& t : sampler.top_logprobs()) lp[t.id] = t.logprob;
  EXPECT_NEAR(lp[0] - lp[7], 3 * 0.5f + 1.0f, 1e-5);
  EXPECT_NEAR(lp[0] - lp[2], 1 * 0.5f + 1.0f, 1e-5);
  EXPECT_NEAR(lp[0] - lp[5], 0.0f, 1e-6);
}

TEST(PenaltiesTest, SampleDoesNotRecordTokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = 100.0f;
  Sampler sampler(p);
  const std::vector<float> logits = {1.0f, 2.0f};
  EXPECT_EQ(sampler.Sample(logits), 1);
  EXPECT_EQ(sampler.Sample(logits), 1);  // nothing accepted yet
  sampler.Accept(1);
  EXPECT_EQ(sampler.Sample(logits), 0);
}

// ------------------------------------------------- each filter in the chain

TEST(ChainTest, TopKLeavesExactlyKRenormalised) {
  SamplingParams p = Plain(1.0f);
  p.top_k = 2;
  auto dist = FinalDistribution(p, {1.0f, 2.0f, 3.0f, 4.0f});
  ASSERT_EQ(dist.size(), 2u);
  const double e = std::exp(1.0);
  EXPECT_NEAR(dist[3], e / (e + 1), 1e-6);
  EXPECT_NEAR(dist[2], 1 / (e + 1), 1e-6);
}

TEST(ChainTest, TopPKeepsTheNucleus) {
  SamplingParams p = Plain(1.0f);
  p.top_p = 0.5f;
  auto dist = FinalDistribution(p, LogOf({0.4f, 0.3f, 0.2f, 0.1f}));
  ASSERT_EQ(dist.size(), 2u);
  EXPECT_NEAR(dist[0], 0.4 / 0.7, 1e-6);
  EXPECT_NEAR(dist[1], 0.3 / 0.7, 1e-6);
}

TEST(ChainTest, MinPDropsTokensBelowTheScaledMax) {
  SamplingParams p = Plain(1.0f);
  p.min_p = 0.2f;  // threshold 0.1
  auto dist = FinalDistribution(p, LogOf({0.5f, 0.3f, 0.15f, 0.05f}));
  ASSERT_EQ(dist.size(), 3u);
  EXPECT_NEAR(dist[0], 0.5 / 0.95, 1e-6);
  EXPECT_NEAR(dist[2], 0.15 / 0.95, 1e-6);
}

TEST(ChainTest, TypicalKeepsTheTypicalSet) {
  SamplingParams p = Plain(1.0f);
  p.typical_p = 0.5f;
  auto dist = FinalDistribution(p, LogOf({0.4f, 0.2f, 0.2f, 0.2f}));
  ASSERT_EQ(dist.size(), 3u);
  EXPECT_EQ(dist.count(0), 0u);  // the most likely token is not typical
  for (int32_t id : {1, 2, 3}) EXPECT_NEAR(dist[id], 1.0 / 3, 1e-6);
}

TEST(ChainTest, TailFreeCutsTheTail) {
  SamplingParams p = Plain(1.0f);
  p.tfs_z = 0.95f;
  auto dist =
      FinalDistribution(p, LogOf({0.4f, 0.3f, 0.2f, 0.06f, 0.03f, 0.01f}));
  ASSERT_EQ(dist.size(), 3u);
  EXPECT_NEAR(dist[0], 0.4 / 0.9, 1e-6);
}

TEST(ChainTest, TemperatureScalesBeforeTheDraw) {
  auto dist = FinalDistribution(Plain(0.5f), {0.0f, 1.0f});
  const double e2 = std::exp(2.0);
  EXPECT_NEAR(dist[1], e2 / (1 + e2), 1e-6);
  EXPECT_NEAR(dist[0], 1 / (1 + e2), 1e-6);
}

TEST(ChainTest, FiltersRunInLlamaCppOrder) {
  const std::vector<float> logits = LogOf({0.4f, 0.3f, 0.2f, 0.1f});

  // top_k before top_p: top_k=2 renormalises to .571 .429, so top_p=0.5
  // keeps one. (top_p first would keep .4 + .3, then top_k two.)
  SamplingParams k_then_p = Plain(1.0f);
  k_then_p.top_k = 2;
  k_then_p.top_p = 0.5f;
  EXPECT_EQ(FinalDistribution(k_then_p, logits).size(), 1u);

  // top_p before min_p: top_p=0.75 on .4 .3 .2 .1 keeps three and min_p=0.3
  // (threshold .12) keeps them. (min_p first would leave .444 .333 .222 and
  // top_p then only two.)
  SamplingParams p_then_min = Plain(1.0f);
  p_then_min.top_p = 0.75f;
  p_then_min.min_p = 0.3f;
  EXPECT_EQ(FinalDistribution(p_then_min, logits).size(), 3u);

  // Temperature last: T=100 makes the distribution almost flat, but min_p
  // has already judged the original one (threshold .25 keeps two of three).
  SamplingParams hot = Plain(100.0f);
  hot.min_p = 0.5f;
  EXPECT_EQ(FinalDistribution(hot, LogOf({0.5f, 0.3f, 0.2f})).size(), 2u);
}

TEST(ChainTest, DefaultsSampleFromTheTop40) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(32000);
  for (float& l : logits) l = normal(rng);
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  SamplingParams p;
  p.seed = 5;
  Sampler sampler(p);
  for (int i = 0; i < 50; ++i) {
    const int32_t t = sampler.Sample(logits);
    ASSERT_GE(logits[static_cast<size_t>(t)], sorted[39]);
  }
}

// --------------------------------------------------------------------- seeds

std::vector<int32_t> Draws(Sampler& sampler, const std::vector<float>& logits,
                           int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(sampler.Sample(logits));
  return out;
}

std::vector<float> FlatLogits(size_t n) {
  std::vector<float> logits(n);
  for (size_t i = 0; i < n; ++i) logits[i] = std::sin(float(i)) * 0.1f;
  return logits;
}

TEST(SeedTest, SameSeedSameSequenceDifferentSeedDifferent) {
  const auto logits = FlatLogits(1000);
  Sampler a(Plain(1.0f, 42)), b(Plain(1.0f, 42)), c(Plain(1.0f, 43));
  const auto seq_a = Draws(a, logits, 100);
  EXPECT_EQ(seq_a, Draws(b, logits, 100));
  EXPECT_NE(seq_a, Draws(c, logits, 100));
}

TEST(SeedTest, RandomSeedIsReportedAndReplays) {
  const auto logits = FlatLogits(1000);
  Sampler random(Plain(1.0f, kRandomSeed));
  Sampler replay(Plain(1.0f, random.seed()));
  EXPECT_EQ(Draws(random, logits, 50), Draws(replay, logits, 50));
}

TEST(SeedTest, CopiesContinueIdentically) {
  const auto logits = FlatLogits(1000);
  SamplingParams p = Plain(1.0f, 9);
  p.repeat_penalty = 1.3f;
  Sampler a(p);
  for (int32_t t : Draws(a, logits, 10)) a.Accept(t);
  Sampler b = a;
  std::vector<int32_t> from_a, from_b;
  for (int i = 0; i < 30; ++i) {
    from_a.push_back(a.Sample(logits));
    a.Accept(from_a.back());
    from_b.push_back(b.Sample(logits));
    b.Accept(from_b.back());
  }
  EXPECT_EQ(from_a, from_b);
}

TEST(SeedTest, MatchesStdMt19937AndDiscreteDistribution) {
  // What llama.cpp does for seed 42: mt19937(42), then
  // discrete_distribution over the sorted probabilities.
  const std::vector<float> logits = {0.0f, 1.0f, 0.5f};
  Sampler sampler(Plain(1.0f, 42));
  std::mt19937 rng(42);
  std::vector<float> logits_sorted = {1.0f, 0.5f, 0.0f};  // ids 1, 2, 0
  const int32_t id_of[] = {1, 2, 0};
  std::vector<float> probs;
  float sum = 0.0f;
  for (float l : logits_sorted) sum += std::exp(l - 1.0f);
  for (float l : logits_sorted) probs.push_back(std::exp(l - 1.0f) / sum);
  for (int i = 0; i < 200; ++i) {
    std::discrete_distribution<int> dist(probs.begin(), probs.end());
    ASSERT_EQ(sampler.Sample(logits), id_of[dist(rng)]) << "draw " << i;
  }
}

// A sequence replayed on a new last stage: a fresh Sampler given the tokens
// so far and the random outputs the lost one used continues its stream, with
// filters that sometimes leave one candidate (no draw) and penalties.
TEST(SeedTest, ReplayFromTokensAndRandomUsedContinuesTheRun) {
  SamplingParams p = Plain(1.0f, 99);
  p.top_k = 3;
  p.repeat_penalty = 1.3f;
  p.frequency_penalty = 0.2f;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<std::vector<float>> rows(40, std::vector<float>(50));
  for (auto& row : rows) {
    for (float& l : row) l = normal(rng);
  }
  rows[7].assign(50, -kInf);
  rows[7][3] = 0.0f;  // one candidate: no draw

  const std::vector<int32_t> prompt = {1, 2, 3, 4};
  Sampler original(p);
  for (int32_t t : prompt) original.Accept(t);
  std::vector<int32_t> tokens = prompt;
  for (int step = 0; step < 40; ++step) {
    const int32_t t = original.Sample(rows[step]);
    original.Accept(t);
    tokens.push_back(t);
  }
  for (int cut : {0, 7, 8, 20, 39}) {
    // Redo the original up to `cut` to learn its random_used there.
    Sampler before(p);
    for (size_t i = 0; i < prompt.size(); ++i) before.Accept(tokens[i]);
    for (int step = 0; step < cut; ++step) before.Accept(before.Sample(rows[step]));
    Sampler replay(p);
    for (size_t i = 0; i < prompt.size() + cut; ++i) replay.Accept(tokens[i]);
    replay.SkipRandom(before.random_used());
    for (int step = cut; step < 40; ++step) {
      const int32_t t = replay.Sample(rows[step]);
      ASSERT_EQ(t, tokens[prompt.size() + step]) << "cut " << cut << " step " << step;
      replay.Accept(t);
    }
    EXPECT_EQ(replay.random_used(), original.random_used()) << "cut " << cut;
  }
  // Without the skip the stream differs (the test can fail).
  Sampler unskipped(p);
  for (size_t i = 0; i < prompt.size() + 20; ++i) unskipped.Accept(tokens[i]);
  int differing = 0;
  for (int step = 20; step < 40; ++step) {
    const int32_t t = unskipped.Sample(rows[step]);
    differing += t != tokens[prompt.size() + step];
    unskipped.Accept(tokens[prompt.size() + step]);
  }
  EXPECT_GT(differing, 0);
}

// ------------------------------------------------------------- statistics

// Pearson's chi-square of `counts` against `expected` probabilities.
double ChiSquare(const std::vector<int>& counts,
                 const std::vector<double>& expected, int n) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double e = expected[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

std::vector<double> SoftmaxAt(const std::vector<float>& logits, double t) {
  std::vector<double> p;
  double sum = 0.0;
  for (float l : logits) sum += std::exp(l / t);
  for (float l : logits) p.push_back(std::exp(l / t) / sum);
  return p;
}

TEST(StatisticsTest, TemperatureSamplingMatchesTheSoftmax) {
  // 8 outcomes, 7 degrees of freedom: P(chi2 > 24.32) = 0.001. The seed is
  // fixed, so the outcome is deterministic; the bound says how unlucky a
  // correct sampler would have to be to fail.
  constexpr double kChi2Bound7Dof = 24.32;
  constexpr int kDraws = 20000;
  const std::vector<float> logits = {0.0f, 0.5f, 1.0f,  -0.5f,
                                     0.2f, 1.5f, -1.0f, 0.8f};
  constexpr float kTemperature = 0.7f;
  Sampler sampler(Plain(kTemperature, 2024));
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[sampler.Sample(logits)];

  EXPECT_LT(ChiSquare(counts, SoftmaxAt(logits, kTemperature), kDraws),
            kChi2Bound7Dof);
  // The test can fail: the same counts are far from temperature 1.
  EXPECT_GT(ChiSquare(counts, SoftmaxAt(logits, 1.0), kDraws),
            10 * kChi2Bound7Dof);
}

// ------------------------------------------- the reference chain (oracle)

TEST(ReferenceChainTest, FastPathsAgreeTokenForToken) {
  std::mt19937 rng(77);
  const std::vector<size_t> vocabs = {2, 3, 10, 100, 1000, 32000};
  const std::vector<float> temps = {0.0f, 0.3f, 0.8f, 1.5f};
  const std::vector<int32_t> top_ks = {0, 1, 5, 40, 200, 100000};
  const std::vector<float> top_ps = {1.0f, 0.95f, 0.5f, 0.0f};
  const std::vector<float> min_ps = {0.0f, 0.05f, 0.3f};
  const std::vector<float> typicals = {1.0f, 0.9f, 0.3f};
  const std::vector<float> tfss = {1.0f, 0.95f, 0.5f};
  const std::vector<int32_t> last_ns = {0, -1, 4, 64};
  auto pick = [&rng](const auto& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::normal_distribution<float> normal(0.0f, 3.0f);
  int sampled_steps = 0;
  for (int config = 0; config < 300; ++config) {
    SamplingParams p;
    p.temperature = pick(temps);
    p.top_k = pick(top_ks);
    p.top_p = pick(top_ps);
    p.min_p = pick(min_ps);
    p.typical_p = pick(typicals);
    p.tfs_z = pick(tfss);
    p.repeat_last_n = pick(last_ns);
    p.repeat_penalty = pick(std::vector<float>{1.0f, 1.1f, 1.5f});
    p.frequency_penalty = pick(std::vector<float>{0.0f, 0.2f});
    p.presence_penalty = pick(std::vector<float>{0.0f, 0.5f});
    p.min_keep = pick(std::vector<int32_t>{0, 1, 3});
    p.n_probs = pick(std::vector<int32_t>{0, 5});
    p.seed = static_cast<uint64_t>(config);
    const size_t vocab = pick(vocabs);

    Sampler sampler(p);
    std::mt19937 ref_rng(static_cast<uint32_t>(p.seed));
    std::vector<int32_t> accepted;
    for (int step = 0; step < 8; ++step) {
      // Coarse logits (multiples of 1/4) make equal logits common.
      std::vector<float> logits(vocab);
      for (float& l : logits) l = std::round(normal(rng) * 4.0f) / 4.0f;
      const int32_t ours = sampler.Sample(logits);
      const reference::Result ref =
          reference::Sample(logits, p, accepted, ref_rng);
      ASSERT_EQ(ours, ref.token) << "config " << config << " step " << step;
      if (p.n_probs > 0 && p.temperature > 0.0f) {
        const auto top = sampler.top_logprobs();
        ASSERT_EQ(top.size(), std::min<size_t>(5, ref.final_probs.size()));
        for (size_t i = 0; i < top.size(); ++i) {
          ASSERT_EQ(top[i].id, ref.final_probs[i].first);
          ASSERT_EQ(top[i].logprob, std::log(ref.final_probs[i].second));
        }
      }
      sampled_steps += p.temperature > 0.0f;
      sampler.Accept(ours);
      accepted.push_back(ours);
    }
  }
  EXPECT_GT(sampled_steps, 1000);
}

// -------------------------------------------------------------- efficiency

TEST(EfficiencyTest, NoAllocationAfterTheFirstCall) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(128 * 1024);
  for (float& l : logits) l = normal(rng);

  SamplingParams defaults;
  defaults.n_probs = 5;
  defaults.repeat_penalty = 1.1f;
  SamplingParams everything = defaults;
  everything.typical_p = 0.9f;
  everything.tfs_z = 0.95f;
  everything.top_k = 500;
  SamplingParams greedy = defaults;
  greedy.temperature = 0.0f;

  for (const SamplingParams& p : {defaults, everything, greedy}) {
    Sampler sampler(p);
    for (int32_t t = 0; t < 64; ++t) sampler.Accept(t);
    sampler.Sample(logits);
    const long before = testing::AllocationCount();
    for (int i = 0; i < 20; ++i) sampler.Sample(logits);
    EXPECT_EQ(testing::AllocationCount() - before, 0);
  }
}

}  // namespace
}  // namespace layerpool
