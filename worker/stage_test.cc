#include "worker/stage.h"

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
  ASSERT_TRUE(whole->Forward({tokens, {}, positions, caches_whole, rows, {}}, &expected).ok());
  ASSERT_TRUE(front->Forward({tokens, {}, positions, caches_front, {}, {}}, &hidden).ok());
  EXPECT_EQ(hidden.size(), 6u * 256);
  ASSERT_TRUE(back->Forward({{}, hidden, positions, caches_back, rows, {}}, &logits).ok());
  EXPECT_EQ(logits, expected);
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
  EXPECT_THAT(stage->Forward({bad_token, {}, pos1, caches1, {}, {}}, &out).message(),
              HasSubstr("outside the vocabulary"));
  const std::vector<int32_t> token = {1};
  const std::vector<int32_t> far = {8};
  EXPECT_THAT(stage->Forward({token, {}, far, caches1, {}, {}}, &out).message(),
              HasSubstr("outside its sequence's context"));
  const std::vector<int32_t> two_tokens = {1, 2};
  EXPECT_THAT(stage->Forward({two_tokens, {}, pos1, caches1, {}, {}}, &out).message(),
              HasSubstr("tokens"));
  const std::vector<int64_t> bad_row = {3};
  EXPECT_THAT(stage->Forward({token, {}, pos1, caches1, bad_row, {}}, &out).message(),
              HasSubstr("logit row 3"));
  EXPECT_EQ(stage->Forward({{}, {}, {}, {}, {}, {}}, &out).code(),
            absl::StatusCode::kInvalidArgument);

  auto back = MakeStage(6, 12);
  ASSERT_TRUE(back);
  auto back_cache = back->NewCache(8);
  const std::vector<KvCache*> back_caches = {back_cache->get()};
  const std::vector<float> short_hidden(10);
  EXPECT_THAT(back->Forward({{}, short_hidden, pos1, back_caches, {}, {}}, &out).message(),
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
    ASSERT_TRUE((*stage)->Forward({tokens, {}, positions, caches, rows, {}}, &logits).ok());
    results.push_back(logits);
  }
  double max_diff = 0;
  for (size_t i = 0; i < results[0].size(); ++i) {
    max_diff = std::max(max_diff, double{std::fabs(results[0][i] - results[1][i])});
  }
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 0.1);
}

}  // namespace
}  // namespace layerpool
