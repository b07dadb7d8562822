// Greedy sampling against llama.cpp: on every row of the teacher-forced
// logits in shared/golden, Sample() at temperature 0 must return the argmax
// llama.cpp recorded.
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/sampling/sampler.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

using ::layerpool::testing::ReadFileOrDie;
using ::layerpool::testing::SharedPath;

class GreedyGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GreedyGoldenTest, ArgmaxOfEveryRow) {
  const std::string dir = SharedPath("golden/" + GetParam());
  const auto meta = nlohmann::json::parse(ReadFileOrDie(dir + "/logits.json"));
  const size_t n_vocab = meta.at("n_vocab").get<size_t>();
  const size_t n_tokens = meta.at("n_tokens").get<size_t>();
  const auto argmax = meta.at("argmax").get<std::vector<int32_t>>();
  const std::string bytes = ReadFileOrDie(dir + "/logits.f32");
  ASSERT_EQ(bytes.size(), n_vocab * n_tokens * sizeof(float));
  ASSERT_EQ(argmax.size(), n_tokens);

  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler(params);
  std::vector<float> row(n_vocab);
  for (size_t i = 0; i < n_tokens; ++i) {
    std::memcpy(row.data(), bytes.data() + i * n_vocab * sizeof(float),
                n_vocab * sizeof(float));
    EXPECT_EQ(sampler.Sample(row), argmax[i]) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GreedyGoldenTest,
                         ::testing::Values("stories260K-F32",
                                           "TinyStories-656K-F32",
                                           "TinyStories-656K-Q4_0",
                                           "synth-12L-F16", "synth-12L-Q2_K"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace layerpool
