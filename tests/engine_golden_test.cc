// The CPU engine against llama.cpp's outputs on every model of
// ../shared/golden (read golden/README.md): greedy tokens, teacher-forced
// logits and perplexity.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"
#include "worker/perplexity.h"
#include "worker/stage.h"

namespace layerpool {
namespace {

using nlohmann::json;

std::string ModelPath(const std::string& stem) {
  std::string dir = absl::StartsWith(stem, "stories260K") ? "stories260K"
                    : absl::StartsWith(stem, "synth-12L") ? "synth-12L"
                                                          : "tinystories-656K";
  return testing::SharedPath(absl::StrCat("models/", dir, "/", stem, ".gguf"));
}

json ReadJson(const std::string& path) {
  return json::parse(testing::ReadFileOrDie(path));
}

// Largest |ours - llama.cpp| over all teacher-forced logits that we accept.
// The kernels round where llama.cpp's CPU build rounds (kernels/*.h say
// how; RoPE's fused rotation was the last difference), so every model
// agrees bit for bit, batch and one token per call, but stories260K-F32
// (measured 0.0034: its 8-wide heads take another F32 order in llama.cpp's
// batch; about 3x that allowed).
double LogitTolerance(const std::string& stem) {
  return stem == "stories260K-F32" ? 0.01 : 0.0;
}

class EngineGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto file = gguf::GgufFile::Open(ModelPath(GetParam()), {.map_data = false});
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = std::move(*file);
    StageOptions options;
    options.threads = 2;
    auto stage = Stage::Create(*file_, options);
    ASSERT_TRUE(stage.ok()) << stage.status();
    stage_ = std::move(*stage);
    golden_ = testing::SharedPath(absl::StrCat("golden/", GetParam(), "/"));
  }

  // Logits of every position of `tokens` evaluated in one batch.
  std::vector<float> TeacherForced(const std::vector<int32_t>& tokens) {
    auto cache = stage_->NewCache(512);
    EXPECT_TRUE(cache.ok());
    std::vector<int32_t> positions(tokens.size());
    std::vector<int64_t> rows(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) positions[i] = rows[i] = i;
    std::vector<KvCache*> caches(tokens.size(), cache->get());
    StageBatch batch{tokens, {}, positions, caches, rows, {}, {}};
    std::vector<float> logits;
    EXPECT_TRUE(stage_->Forward(batch, &logits).ok());
    return logits;
  }

  // Logits of every position of `tokens` evaluated one token per call, as
  // in generation.
  std::vector<float> OneByOne(const std::vector<int32_t>& tokens) {
    auto cache = stage_->NewCache(512);
    EXPECT_TRUE(cache.ok());
    std::vector<float> all, logits;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const int32_t pos = static_cast<int32_t>(i);
      const int64_t row = 0;
      KvCache* c = cache->get();
      StageBatch batch{std::span(&tokens[i], 1), {}, std::span(&pos, 1),
                       std::span(&c, 1), std::span(&row, 1), {}, {}};
      EXPECT_TRUE(stage_->Forward(batch, &logits).ok());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    return all;
  }

  std::unique_ptr<gguf::GgufFile> file_;
  std::unique_ptr<Stage> stage_;
  std::string golden_;
};

int32_t Argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// Every greedy token equals llama.cpp's, near ties included: the logits are
// llama.cpp's bit for bit, so no tie can break the other way.
TEST_P(EngineGoldenTest, GreedyTokensMatchAll) {
  const bool trace = std::getenv("LAYERPOOL_GREEDY_TRACE") != nullptr;
  const json greedy = ReadJson(golden_ + "greedy.json");
  const int64_t n_vocab = stage_->hparams().n_vocab;
  for (const json& r : greedy["results"]) {
    SCOPED_TRACE(r["prompt"].get<std::string>());
    const std::vector<int32_t> prompt = r["prompt_tokens"];
    const std::vector<int32_t> expected = r["tokens"];
    const std::vector<double> margins = r["top2_margins"];
    const size_t must_match = expected.size();
    auto cache = stage_->NewCache(512);
    ASSERT_TRUE(cache.ok());
    std::vector<int32_t> tokens = prompt, positions;
    std::vector<KvCache*> caches;
    std::vector<float> logits;
    std::vector<int32_t> generated;
    size_t done = 0;  // tokens already in the cache
    while (generated.size() < must_match) {
      const size_t n = tokens.size() - done;
      positions.resize(n);
      for (size_t i = 0; i < n; ++i) positions[i] = done + i;
      caches.assign(n, cache->get());
      const int64_t last = n - 1;
      StageBatch batch{std::span(tokens).subspan(done), {}, positions, caches,
                       std::span<const int64_t>(&last, 1), {}, {}};
      ASSERT_TRUE(stage_->Forward(batch, &logits).ok());
      done = tokens.size();
      const int32_t next = Argmax(std::span<const float>(logits).first(n_vocab));
      if (trace) {  // LAYERPOOL_GREEDY_TRACE: our top-2 margin next to llama.cpp's
        std::vector<float> top(logits.begin(), logits.begin() + n_vocab);
        std::nth_element(top.begin(), top.begin() + 1, top.end(), std::greater<>());
        const size_t k = generated.size();
        std::printf("step %zu: margin %.9g, llama.cpp %.9g; token %d, llama.cpp %d\n", k,
                    top[0] - top[1], margins[k], next, k < expected.size() ? expected[k] : -1);
      }
      generated.push_back(next);
      tokens.push_back(next);
    }
    for (size_t k = 0; k < must_match; ++k) {
      ASSERT_EQ(generated[k], expected[k]) << "step " << k << " of " << must_match;
    }
  }
}

TEST_P(EngineGoldenTest, TeacherForcedLogitsAreClose) {
  const json meta = ReadJson(golden_ + "logits.json");
  const std::vector<int32_t> tokens = meta["tokens"];
  const int64_t n_vocab = meta["n_vocab"];
  const std::string raw = testing::ReadFileOrDie(golden_ + "logits.f32");
  ASSERT_EQ(raw.size(), tokens.size() * n_vocab * sizeof(float));
  const float* expected = reinterpret_cast<const float*>(raw.data());
  const std::vector<float> ours = TeacherForced(tokens);
  ASSERT_EQ(ours.size(), tokens.size() * n_vocab);
  double max_diff = 0;
  int checked_rows = 0;
  for (size_t row = 0; row < tokens.size(); ++row) {
    std::span<const float> e(expected + row * n_vocab, n_vocab);
    std::span<const float> o(ours.data() + row * n_vocab, n_vocab);
    for (int64_t i = 0; i < n_vocab; ++i) {
      max_diff = std::max(max_diff, double{std::fabs(e[i] - o[i])});
    }
    std::vector<float> sorted(e.begin(), e.end());
    std::nth_element(sorted.begin(), sorted.begin() + 1, sorted.end(), std::greater<>());
    if (sorted[0] - sorted[1] > 0.05) {
      EXPECT_EQ(Argmax(o), Argmax(e)) << "row " << row;
      ++checked_rows;
    }
  }
  RecordProperty("max_abs_diff", absl::StrCat(max_diff));
  std::cout << GetParam() << ": max |logit diff| " << max_diff << ", argmax checked on "
            << checked_rows << "/" << tokens.size() << " rows\n";
  EXPECT_LE(max_diff, LogitTolerance(GetParam()));
}

TEST_P(EngineGoldenTest, OneTokenPerCallLogitsAreClose) {
  const json meta = ReadJson(golden_ + "logits.json");
  const std::vector<int32_t> tokens = meta["tokens"];
  const std::string raw = testing::ReadFileOrDie(golden_ + "logits.f32");
  const float* expected = reinterpret_cast<const float*>(raw.data());
  const std::vector<float> ours = OneByOne(tokens);
  const std::vector<float> batch = TeacherForced(tokens);
  double max_diff = 0, self_diff = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    max_diff = std::max(max_diff, double{std::fabs(ours[i] - expected[i])});
    self_diff = std::max(self_diff, double{std::fabs(ours[i] - batch[i])});
  }
  const double llama_self = meta["checks"]["one_token_per_decode_max_abs_diff"];
  std::cout << GetParam() << ": one-by-one vs llama.cpp batch " << max_diff
            << ", vs our batch " << self_diff << " (llama.cpp's own " << llama_self
            << ")\n";
  EXPECT_LE(max_diff, LogitTolerance(GetParam()) + llama_self);
}

TEST_P(EngineGoldenTest, PerplexityWithinATenthOfAPercent) {
  const json expected = ReadJson(golden_ + "perplexity.json");
  auto tokenizer = Tokenizer::FromGguf(*file_);
  ASSERT_TRUE(tokenizer.ok());
  std::string text = testing::ReadFileOrDie(testing::SharedPath("golden/text/stories.txt"));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  const std::vector<int32_t> tokens = (*tokenizer)->Encode(text, true);
  ASSERT_EQ(static_cast<int64_t>(tokens.size()), expected["n_tokens"].get<int64_t>());
  auto result = Perplexity(*stage_, tokens, (*tokenizer)->bos_id(), 128, 128);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->chunks, expected["chunks"].get<int64_t>());
  const double want = expected["ppl"];
  std::cout << GetParam() << ": ppl " << result->ppl << " (llama.cpp " << want << ")\n";
  EXPECT_NEAR(result->ppl, want, want * 1e-3);
}

// Work is split across threads by whole rows and heads, so the thread count
// cannot change a single bit of the logits (and so of greedy tokens).
TEST(EngineThreadsTest, OneAndTwoThreadsGiveIdenticalLogits) {
  // Q8_0 and Q4_0 batches take the tiled prefill kernels.
  for (const char* stem : {"stories260K-F32", "synth-12L-Q4_K_M", "TinyStories-656K-Q5_1",
                           "synth-12L-Q8_0", "TinyStories-656K-Q4_0"}) {
    SCOPED_TRACE(stem);
    auto file = gguf::GgufFile::Open(ModelPath(stem), {.map_data = false});
    ASSERT_TRUE(file.ok());
    const json meta = ReadJson(testing::SharedPath(absl::StrCat("golden/", stem, "/logits.json")));
    const std::vector<int32_t> tokens = meta["tokens"];
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2}) {
      StageOptions options;
      options.threads = threads;
      auto stage = Stage::Create(**file, options);
      ASSERT_TRUE(stage.ok());
      auto cache = (*stage)->NewCache(512);
      std::vector<int32_t> positions(tokens.size());
      std::vector<int64_t> rows(tokens.size());
      for (size_t i = 0; i < tokens.size(); ++i) positions[i] = rows[i] = i;
      std::vector<KvCache*> caches(tokens.size(), cache->get());
      std::vector<float> logits;
      ASSERT_TRUE((*stage)->Forward({tokens, {}, positions, caches, rows, {}, {}}, &logits).ok());
      results.push_back(std::move(logits));
    }
    EXPECT_TRUE(results[0] == results[1]);
  }
}

std::vector<std::string> GoldenModels() {
  return {"stories260K-F32",       "TinyStories-656K-F32",  "TinyStories-656K-F16",
          "TinyStories-656K-BF16", "TinyStories-656K-Q8_0", "TinyStories-656K-Q8_0-requant",
          "TinyStories-656K-Q4_0", "TinyStories-656K-Q4_1", "TinyStories-656K-Q5_0",
          "TinyStories-656K-Q5_1", "synth-12L-F16",         "synth-12L-Q8_0",
          "synth-12L-Q6_K",        "synth-12L-Q5_K_M",      "synth-12L-Q5_K_S",
          "synth-12L-Q4_K_M",      "synth-12L-Q4_K_S",      "synth-12L-Q4_0",
          "synth-12L-IQ4_NL",      "synth-12L-IQ4_XS",      "synth-12L-Q3_K_M",
          "synth-12L-Q3_K_S",      "synth-12L-Q2_K"};
}

INSTANTIATE_TEST_SUITE_P(Golden, EngineGoldenTest, ::testing::ValuesIn(GoldenModels()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) if (!isalnum(c)) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace layerpool
