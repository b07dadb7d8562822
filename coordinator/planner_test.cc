#include "coordinator/planner.h"

#include <numeric>

#include "base/human_bytes.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

ModelCosts Uniform(int n_layer, uint64_t layer_bytes, uint64_t embedding = 0,
                   uint64_t output = 0, uint64_t kv_per_token = 0) {
  ModelCosts c;
  c.layer_weight_bytes.assign(n_layer, layer_bytes);
  c.embedding_bytes = embedding;
  c.output_bytes = output;
  c.kv_bytes_per_token_per_layer = kv_per_token;
  return c;
}

PlanRequest Request(ModelCosts costs, std::vector<uint64_t> free_bytes) {
  PlanRequest r;
  r.costs = std::move(costs);
  for (size_t i = 0; i < free_bytes.size(); ++i) {
    r.workers.push_back({"gpu" + std::to_string(i), free_bytes[i]});
  }
  return r;
}

std::vector<int64_t> Counts(const std::vector<StagePlan>& plan) {
  std::vector<int64_t> out;
  for (const StagePlan& s : plan) out.push_back(s.end_layer - s.first_layer);
  return out;
}

// Contiguous, in worker order, covering every layer, within memory.
void ExpectWellFormed(const std::vector<StagePlan>& plan,
                      const PlanRequest& r) {
  int64_t next = 0;
  int prev_worker = -1;
  for (const StagePlan& s : plan) {
    EXPECT_EQ(s.first_layer, next);
    EXPECT_GT(s.end_layer, s.first_layer);
    EXPECT_GT(s.worker, prev_worker);
    EXPECT_LE(s.total_bytes, r.workers[s.worker].free_bytes);
    EXPECT_EQ(s.total_bytes,
              s.weight_bytes + s.kv_bytes + r.scratch_bytes_per_stage);
    next = s.end_layer;
    prev_worker = s.worker;
  }
  EXPECT_EQ(next, static_cast<int64_t>(r.costs.layer_weight_bytes.size()));
}

TEST(PlannerTest, EvenSplit) {
  PlanRequest r =
      Request(Uniform(12, kGiB, kGiB / 2, kGiB / 2), {8 * kGiB, 8 * kGiB});
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{6, 6}));
  EXPECT_EQ((*plan)[0].weight_bytes, 6 * kGiB + kGiB / 2);
  ExpectWellFormed(*plan, r);
  const std::string table = DescribePlan(*plan, r);
  EXPECT_THAT(table, HasSubstr("gpu1"));
  EXPECT_THAT(table, HasSubstr("[6, 12)"));
}

TEST(PlannerTest, UnevenDevicesGetLayersByMemory) {
  PlanRequest r = Request(Uniform(32, 500 * kMiB), {8 * kGiB, 24 * kGiB});
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{8, 24}));
  ExpectWellFormed(*plan, r);
}

TEST(PlannerTest, AutomaticFallsBackWhenProportionIsTooCoarse) {
  // Proportional by memory gives 2:2 here, but the first worker also holds a
  // large embedding; only 1:3 fits.
  PlanRequest r =
      Request(Uniform(4, kGiB, 2 * kGiB), {3 * kGiB + kGiB / 2, 3 * kGiB});
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{1, 3}));
  ExpectWellFormed(*plan, r);
}

TEST(PlannerTest, AutomaticBalancesWorkPerToken) {
  // synth-1B's shape: 16 layers of 38.75 MB, an output head of 53.8 MB (1.4
  // layers), an embedding the first stage looks up one row of. Memory would
  // give 8,8 (the last stage reads 364 MB per token, 1.17x the first); 9,7
  // reads 349 and 325.
  const uint64_t layer = 38'750'000, head = 53'800'000, embd = 40'000'000;
  PlanRequest r = Request(Uniform(16, layer, embd, head), {8 * kGiB, 8 * kGiB});
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{9, 7}));
  EXPECT_EQ((*plan)[0].read_bytes_per_token, 9 * layer);
  EXPECT_EQ((*plan)[1].read_bytes_per_token, 7 * layer + head);
  EXPECT_EQ((*plan)[0].weight_bytes, 9 * layer + embd);  // memory still counts it
  EXPECT_THAT(DescribePlan(*plan, r), HasSubstr("per token"));

  // Four stages: 4,4,4,4 would give the last 208.8 MB per token. The best
  // slowest stage is 5 layers (193.75 MB), and of the splits within it the
  // balanced one: the last stage holds 3 layers, not 1 (5,5,5,1).
  r.workers.assign(4, {"w", 8 * kGiB});
  plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  uint64_t slowest = 0;
  for (const StagePlan& s : *plan) {
    slowest = std::max(slowest, s.read_bytes_per_token);
  }
  EXPECT_EQ(slowest, 5 * layer);
  EXPECT_EQ(plan->back().end_layer - plan->back().first_layer, 3);
  ExpectWellFormed(*plan, r);

  // Work goes by free memory: a worker with three times the memory takes
  // three times the reads, the head included.
  r = Request(Uniform(16, layer, embd, head), {4 * kGiB, 12 * kGiB});
  plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{4, 12}));
  // A balanced split that does not fit gives way to one that does: one byte
  // short of 9 layers and the embedding, the first worker holds 8.
  const uint64_t tight = 9 * layer + embd - 1;
  r = Request(Uniform(16, layer, embd, head), {tight, tight});
  plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{8, 8}));
  ExpectWellFormed(*plan, r);
}

TEST(PlannerTest, ExplicitCountsHonoured) {
  PlanRequest r = Request(Uniform(12, kGiB), {20 * kGiB, 20 * kGiB, 20 * kGiB});
  r.layer_counts = {3, 3, 6};
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{3, 3, 6}));
  EXPECT_EQ((*plan)[2].first_layer, 6);
  ExpectWellFormed(*plan, r);
}

TEST(PlannerTest, ExplicitCountsValidated) {
  PlanRequest r = Request(Uniform(12, kGiB), {20 * kGiB, 20 * kGiB, 20 * kGiB});
  r.layer_counts = {3, 3, 5};
  EXPECT_THAT(PlanSplit(r).status().message(), HasSubstr("sum to 11"));
  r.layer_counts = {6, 0, 6};
  EXPECT_EQ(PlanSplit(r).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(PlanSplit(r).status().message(), HasSubstr("'gpu1'"));
  r.layer_counts = {6, 6};
  EXPECT_THAT(PlanSplit(r).status().message(),
              HasSubstr("2 layer counts for 3"));
  r.layer_counts = {3, 3, 6};
  r.ratios = {1, 1, 1};
  EXPECT_EQ(PlanSplit(r).status().code(), absl::StatusCode::kInvalidArgument);
  // Honoured exactly, then checked against memory.
  r.ratios.clear();
  r.workers[2].free_bytes = 5 * kGiB;
  EXPECT_EQ(PlanSplit(r).status().message(),
            "worker 'gpu2' needs 6.0 GiB for layers [6, 12) but has 5.0 GiB "
            "free (short by 1.0 GiB)");
}

TEST(PlannerTest, RatiosWithZeroEntry) {
  PlanRequest r = Request(Uniform(12, kGiB), {20 * kGiB, 20 * kGiB, 20 * kGiB});
  r.ratios = {0.25, 0, 0.75};
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{3, 9}));
  EXPECT_EQ((*plan)[1].worker, 2);
  ExpectWellFormed(*plan, r);
  // Not normalised, thirds: cumulative rounding still sums to n_layer.
  r.ratios = {1, 1, 1};
  plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{4, 4, 4}));
  r.costs = Uniform(10, kGiB);
  plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{4, 3, 3}));  // llama.cpp's
  r.ratios = {1, 1};
  EXPECT_EQ(PlanSplit(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.ratios = {0, 0, 0};
  EXPECT_EQ(PlanSplit(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlannerTest, CannotFitNamesWorkerAndShortfall) {
  // 10 GiB of layers on 9.5 GiB of workers: short in all.
  PlanRequest r = Request(Uniform(10, kGiB), {2 * kGiB, 7 * kGiB + kGiB / 2});
  auto plan = PlanSplit(r);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(), HasSubstr("needs 10.0 GiB in all"));
  EXPECT_THAT(plan.status().message(),
              HasSubstr("the workers have 9.5 GiB (short by 512.0 MiB)"));
  // Enough in all, but gpu0 cannot hold even one layer next to its embedding.
  r = Request(Uniform(10, kGiB, 4 * kGiB), {4 * kGiB, 20 * kGiB});
  plan = PlanSplit(r);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(plan.status().message(),
            "worker 'gpu0' needs 5.0 GiB for layers [0, 1) but has 4.0 GiB "
            "free (short by 1.0 GiB)");
}

TEST(PlannerTest, OneStagePerLayer) {
  PlanRequest r =
      Request(Uniform(4, kGiB), {2 * kGiB, 2 * kGiB, 2 * kGiB, 2 * kGiB});
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{1, 1, 1, 1}));
  r.workers.push_back({"gpu4", 2 * kGiB});
  EXPECT_EQ(PlanSplit(r).status().code(), absl::StatusCode::kInvalidArgument);
  r.workers.clear();
  EXPECT_EQ(PlanSplit(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PlannerTest, KvContextMakesPlanNotFit) {
  // 1 MiB of KV per token per layer.
  PlanRequest r = Request(Uniform(8, kGiB, 0, 0, kMiB), {8 * kGiB, 8 * kGiB});
  r.context_tokens = 512;  // 0.5 GiB per layer: 4 x 1.5 GiB per worker
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ((*plan)[0].kv_bytes, 2 * kGiB);
  ExpectWellFormed(*plan, r);
  r.context_tokens = 2048;
  plan = PlanSplit(r);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(), HasSubstr("KV cache 16.0 GiB"));
}

TEST(PlannerTest, SeventyBShape) {
  // Llama-3-70B-like: 80 layers of ~0.5 GiB, 8 KV heads x 128 at f16.
  ModelCosts costs = Uniform(80, 520 * kMiB, 550 * kMiB, 820 * kMiB, 4096);
  PlanRequest r = Request(costs, {24 * kGiB, 24 * kGiB});
  r.context_tokens = 4096;
  r.scratch_bytes_per_stage = 512 * kMiB;
  auto plan = PlanSplit(r);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u);
  ExpectWellFormed(*plan, r);
  // The output head (820 MiB) reads like 1.6 layers per token: 41,39 makes
  // the slower stage 21,320 MiB per token, where 40,40 made it 21,620.
  EXPECT_EQ(Counts(*plan), (std::vector<int64_t>{41, 39}));
  EXPECT_EQ((*plan)[0].read_bytes_per_token, 41 * 520 * kMiB);
  EXPECT_EQ((*plan)[1].read_bytes_per_token, (39 * 520 + 820) * kMiB);
  r.context_tokens = 32768;
  r.max_sequences = 8;
  plan = PlanSplit(r);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(plan.status().message(),
              HasSubstr("KV cache 80.0 GiB for 32768 tokens x 8 sequences"));
  EXPECT_THAT(plan.status().message(), HasSubstr("the workers have 48.0 GiB"));
}

TEST(PlannerTest, ParseLists) {
  EXPECT_EQ(*ParseLayerCounts("3,3,6"), (std::vector<int64_t>{3, 3, 6}));
  EXPECT_EQ(*ParseLayerCounts(" 40, 40 "), (std::vector<int64_t>{40, 40}));
  EXPECT_FALSE(ParseLayerCounts("").ok());
  EXPECT_FALSE(ParseLayerCounts("3,,6").ok());
  EXPECT_FALSE(ParseLayerCounts("3.5,6").ok());
  EXPECT_EQ(*ParseRatios("0.25,0.75"), (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(*ParseRatios("1,0,3"), (std::vector<double>{1, 0, 3}));
  EXPECT_FALSE(ParseRatios("0.5,-1").ok());
  EXPECT_FALSE(ParseRatios("nan").ok());
  EXPECT_FALSE(ParseRatios("a").ok());
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(3 * kGiB / 2), "1.5 GiB");
}

TEST(PlannerTest, ModelCostsFromSynthGguf) {
  auto file = gguf::GgufFile::Open(
      testing::SharedPath("models/synth-12L/synth-12L-Q4_K_M.gguf"));
  ASSERT_TRUE(file.ok()) << file.status();
  auto hp = ReadHParams(**file);
  ASSERT_TRUE(hp.ok()) << hp.status();
  auto costs = ModelCostsFromGguf(**file, *hp, 2.0);
  ASSERT_TRUE(costs.ok()) << costs.status();
  ASSERT_EQ(costs->layer_weight_bytes.size(), 12u);
  for (uint64_t b : costs->layer_weight_bytes) EXPECT_GT(b, 0u);
  EXPECT_GT(costs->embedding_bytes, 0u);
  EXPECT_GT(costs->output_bytes, 0u);
  const uint64_t layers =
      std::accumulate(costs->layer_weight_bytes.begin(),
                      costs->layer_weight_bytes.end(), uint64_t{0});
  const bool tied = (*file)->FindTensor("output.weight") == nullptr;
  EXPECT_EQ(
      layers + costs->embedding_bytes + costs->output_bytes,
      (*file)->total_tensor_bytes() + (tied ? costs->embedding_bytes : 0));
  EXPECT_EQ(costs->kv_bytes_per_token_per_layer,
            static_cast<uint64_t>(2 * hp->n_head_kv * hp->head_dim * 2));

  HParams no_layers = *hp;
  no_layers.n_layer = 0;
  EXPECT_FALSE(ModelCostsFromGguf(**file, no_layers, 2.0).ok());
  HParams fewer = *hp;
  fewer.n_layer = 6;  // blk.6 and up are then out of range
  EXPECT_THAT(ModelCostsFromGguf(**file, fewer, 2.0).status().message(),
              HasSubstr("blk.6."));
}

}  // namespace
}  // namespace layerpool
