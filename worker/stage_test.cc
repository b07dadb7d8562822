#include "worker/stage.h"

#include "worker/step_costs.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

class StageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto file = gguf::GgufFile::Open(
        testing::SharedPath("models/synth-12L/synth-12L-Q4_K_M.gguf"),
        {.map_data = false});
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(*file);
  }

  std::unique_ptr<Stage> MakeStage(int64_t first, int64_t last) {
    StageOptions options;
    options.first_layer = first;
    options.last_layer = last;
    auto stage = Stage::Create(*file_, options);
    EXPECT_TRUE(stage.ok()) << stage.status();
    return stage.ok() ? std::move(*stage) : nullptr;
  }

  std::unique_ptr<gguf::GgufFile> file_;
};

// Two stages chained by hand give the one-stage logits exactly: the hidden
// states are all that crosses between them.
TEST_F(StageTest, TwoStagesChainedEqualOneStage) {
  auto whole = MakeStage(0, 12);
  auto front = MakeStage(0, 5);
  auto back = MakeStage(5, 12);
  ASSERT_TRUE(whole && front && back);
  EXPECT_TRUE(front->is_first() && !front->is_last());
  EXPECT_TRUE(!back->is_first() && back->is_last());
  EXPECT_LT(front->weights().mapped_bytes(), file_->total_tensor_bytes() / 2);

  const std::vector<int32_t> tokens = {1, 80, 147, 201, 282, 57};
  std::vector<int32_t> positions = {0, 1, 2, 3, 4, 5};
  const std::vector<int64_t> rows = {5};
  auto c_whole = whole->NewCache(64), c_front = front->NewCache(64),
       c_back = back->NewCache(64);
  std::vector<KvCache*> caches_whole(6, c_whole->get()),
      caches_front(6, c_front->get()), caches_back(6, c_back->get());
  std::vector<float> expected, hidden, logits;
  ASSERT_TRUE(whole->Forward({tokens, {}, positions, caches_whole, rows, {}, {}}, &expected).ok());
  ASSERT_TRUE(front->Forward({tokens, {}, positions, caches_front, {}, {}, {}}, &hidden).ok());
  EXPECT_EQ(hidden.size(), 6u * 256);
  ASSERT_TRUE(back->Forward({{}, hidden, positions, caches_back, rows, {}, {}}, &logits).ok());
  EXPECT_EQ(logits, expected);
}

// With an f16 cache, how a row's attention rounds depends on whether it is
// its sequence's only row in the batch, never on other sequences: two
// sequences decoding together give the logits each gives alone. A replay
// (prompt and decoded tokens in one batch, the decoded ones flagged
// one_token_rows) gives the logits of the original, token by token run; the
// same batch without the flags does not (the test can fail).
TEST_F(StageTest, RoundingDependsOnTheSequenceAloneAndReplaysExactly) {
  auto stage = MakeStage(0, 12);
  ASSERT_TRUE(stage);
  // Long enough for the two orders to round differently (at most 32 keys
  // often sum alike).
  std::vector<int32_t> prompt, decoded;
  for (int i = 0; i < 40; ++i) prompt.push_back(1 + (i * 37) % 500);
  for (int i = 0; i < 40; ++i) decoded.push_back(3 + (i * 53) % 500);
  auto run = [&](KvCache* cache, std::span<const int32_t> tokens, int32_t first_pos,
                 std::span<const int64_t> one_token = {}) {
    std::vector<int32_t> positions;
    for (size_t i = 0; i < tokens.size(); ++i) positions.push_back(first_pos + i);
    std::vector<KvCache*> caches(tokens.size(), cache);
    const std::vector<int64_t> last = {static_cast<int64_t>(tokens.size()) - 1};
    std::vector<float> logits;
    EXPECT_TRUE(stage->Forward({tokens, {}, positions, caches, last, {}, one_token}, &logits).ok());
    return logits;
  };
  // The original: the prompt at once, then one token per batch.
  auto original = stage->NewCache(128);
  run(original->get(), prompt, 0);
  std::vector<float> want;
  for (size_t i = 0; i < decoded.size(); ++i) {
    want = run(original->get(), std::span(&decoded[i], 1), prompt.size() + i);
  }

  std::vector<int32_t> all = prompt;
  all.insert(all.end(), decoded.begin(), decoded.end());
  std::vector<int64_t> one_token;
  for (size_t i = prompt.size(); i < all.size(); ++i) one_token.push_back(i);
  auto replay = stage->NewCache(128);
  EXPECT_EQ(run(replay->get(), all, 0, one_token), want);
  auto unflagged = stage->NewCache(128);
  EXPECT_NE(run(unflagged->get(), all, 0), want);

  // Two sequences decoding their next token in one batch.
  auto a = stage->NewCache(128), b = stage->NewCache(128);
  run(a->get(), prompt, 0);
  run(b->get(), prompt, 0);
  for (size_t i = 0; i + 1 < decoded.size(); ++i) {
    for (KvCache* c : {a->get(), b->get()}) run(c, std::span(&decoded[i], 1), prompt.size() + i);
  }
  const int32_t p = static_cast<int32_t>(all.size()) - 1;
  const std::vector<int32_t> tokens = {decoded.back(), decoded.back()};
  const std::vector<int32_t> positions = {p, p};
  const std::vector<KvCache*> caches = {a->get(), b->get()};
  const std::vector<int64_t> rows = {0, 1};
  std::vector<float> together;
  ASSERT_TRUE(stage->Forward({tokens, {}, positions, caches, rows, {}, {}}, &together).ok());
  ASSERT_EQ(together.size(), 2 * want.size());
  EXPECT_TRUE(std::equal(want.begin(), want.end(), together.begin()));
  EXPECT_TRUE(std::equal(want.begin(), want.end(), together.begin() + want.size()));
}

TEST_F(StageTest, MalformedBatchesAreRejectedWithAReason) {
  auto stage = MakeStage(0, 12);
  ASSERT_TRUE(stage);
  auto cache = stage->NewCache(8);
  ASSERT_TRUE(cache.ok());
  KvCache* c = cache->get();
  std::vector<float> out;
  const std::vector<int32_t> pos1 = {0};
  const std::vector<KvCache*> caches1 = {c};
  const std::vector<int32_t> bad_token = {5000};
  EXPECT_THAT(stage->Forward({bad_token, {}, pos1, caches1, {}, {}, {}}, &out).message(),
              HasSubstr("outside the vocabulary"));
  const std::vector<int32_t> token = {1};
  const std::vector<int32_t> far = {8};
  EXPECT_THAT(stage->Forward({token, {}, far, caches1, {}, {}, {}}, &out).message(),
              HasSubstr("outside its sequence's context"));
  const std::vector<int32_t> two_tokens = {1, 2};
  EXPECT_THAT(stage->Forward({two_tokens, {}, pos1, caches1, {}, {}, {}}, &out).message(),
              HasSubstr("tokens"));
  const std::vector<int64_t> bad_row = {3};
  EXPECT_THAT(stage->Forward({token, {}, pos1, caches1, bad_row, {}, {}}, &out).message(),
              HasSubstr("logit row 3"));
  EXPECT_EQ(stage->Forward({{}, {}, {}, {}, {}, {}, {}}, &out).code(),
            absl::StatusCode::kInvalidArgument);

  auto back = MakeStage(6, 12);
  ASSERT_TRUE(back);
  auto back_cache = back->NewCache(8);
  const std::vector<KvCache*> back_caches = {back_cache->get()};
  const std::vector<float> short_hidden(10);
  EXPECT_THAT(back->Forward({{}, short_hidden, pos1, back_caches, {}, {}, {}}, &out).message(),
              HasSubstr("hidden states hold 10 floats"));
}

TEST_F(StageTest, BadOptionsAreRejected) {
  StageOptions options;
  options.first_layer = 6;
  options.last_layer = 13;
  EXPECT_THAT(Stage::Create(*file_, options).status().message(),
              HasSubstr("not within the model's 12 layers"));
  options = StageOptions();
  options.threads = 0;
  EXPECT_FALSE(Stage::Create(*file_, options).ok());
  options = StageOptions();
  options.ntk_alpha = -1;
  EXPECT_FALSE(Stage::Create(*file_, options).ok());
}

TEST(KvCacheTest, RefusesQ8_0WhenTheHeadDimIsNotABlock) {
  EXPECT_THAT(KvCache::Create(GgmlType::kQ8_0, 5, 16, 4, 8).status().message(),
              HasSubstr("multiple of 32"));
  EXPECT_TRUE(KvCache::Create(GgmlType::kQ8_0, 5, 16, 4, 32).ok());
  EXPECT_FALSE(KvCache::Create(GgmlType::kQ4_K, 5, 16, 4, 32).ok());
  EXPECT_FALSE(KvCache::Create(GgmlType::kF16, 5, 0, 4, 32).ok());
  EXPECT_EQ(KvCache::BytesFor(GgmlType::kF16, 12, 512, 128), 2u * 12 * 512 * 128 * 2);
  EXPECT_FALSE(ParseKvCacheType("q4").ok());
  EXPECT_EQ(*ParseKvCacheType("q8_0"), GgmlType::kQ8_0);
}

// A q8_0 cache halves memory and still gives nearly the f16 cache's logits.
TEST_F(StageTest, Q8_0CacheRunsCloseToF16) {
  std::vector<std::vector<float>> results;
  for (GgmlType kv : {GgmlType::kF16, GgmlType::kQ8_0}) {
    StageOptions options;
    options.kv_type = kv;
    auto stage = Stage::Create(*file_, options);
    ASSERT_TRUE(stage.ok());
    auto cache = (*stage)->NewCache(16);
    const std::vector<int32_t> tokens = {1, 80, 147, 201};
    const std::vector<int32_t> positions = {0, 1, 2, 3};
    const std::vector<KvCache*> caches(4, cache->get());
    const std::vector<int64_t> rows = {3};
    std::vector<float> logits;
    ASSERT_TRUE((*stage)->Forward({tokens, {}, positions, caches, rows, {}, {}}, &logits).ok());
    results.push_back(logits);
  }
  double max_diff = 0;
  for (size_t i = 0; i < results[0].size(); ++i) {
    max_diff = std::max(max_diff, double{std::fabs(results[0][i] - results[1][i])});
  }
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 0.1);
}

// Timing steps at load: 1, 2, 4 rows and the maximum, on a first and a last
// stage; the budget cuts it short after the first size; the stage computes
// as a fresh one does afterwards (the timing used caches of its own).
TEST_F(StageTest, MeasureStepCosts) {
  auto front = MakeStage(0, 5);
  auto back = MakeStage(5, 12);
  ASSERT_TRUE(front && back);
  for (Stage* stage : {front.get(), back.get()}) {
    auto timings = MeasureStepCosts(*stage, 5, /*budget_ms=*/60000);
    ASSERT_TRUE(timings.ok()) << timings.status();
    std::vector<int64_t> rows;
    for (const StepTiming& t : *timings) {
      rows.push_back(t.rows);
      EXPECT_GT(t.ms, 0);
    }
    EXPECT_EQ(rows, (std::vector<int64_t>{1, 2, 4, 5}));
    timings = MeasureStepCosts(*stage, 8, /*budget_ms=*/0);
    ASSERT_TRUE(timings.ok()) << timings.status();
    EXPECT_EQ(timings->size(), 1u);
  }
  EXPECT_EQ(MeasureStepCosts(*front, 0, 1000).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto fresh = MakeStage(0, 5);
  const std::vector<int32_t> tokens = {1, 80, 147};
  const std::vector<int32_t> positions = {0, 1, 2};
  auto c_used = front->NewCache(8), c_fresh = fresh->NewCache(8);
  std::vector<KvCache*> used(3, c_used->get()), clean(3, c_fresh->get());
  std::vector<float> after, expected;
  ASSERT_TRUE(front->Forward({tokens, {}, positions, used, {}, {}, {}}, &after).ok());
  ASSERT_TRUE(fresh->Forward({tokens, {}, positions, clean, {}, {}, {}}, &expected).ok());
  EXPECT_EQ(after, expected);
}

}  // namespace
}  // namespace layerpool
