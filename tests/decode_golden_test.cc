// One-token decode against llama.cpp's, logit for logit: the prompt as one
// batch, then llama.cpp's greedy tokens fed one per Forward call, as
// generation runs. Golden data: tests/decode_golden/golden.json (made by
// make_golden.sh beside it from a llama.cpp build; its commit and command
// are in the file), on models of ../shared and on tests/shapes' random-weight
// architectures (qwen2, phi3, gemma2, Mixtral), made again by `synth`. Each step's whole logits row must hash as llama.cpp's
// (bit for bit) where the golden entry says "exact"; elsewhere the eight
// largest logits must agree within the entry's tolerance.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"
#include "worker/stage.h"

namespace layerpool {
namespace {

using nlohmann::json;

// FNV-1a 64 over the row's bytes, as llama_decode_logits.cc hashes it.
std::string Hash(std::span<const float> row) {
  const auto* p = reinterpret_cast<const unsigned char*>(row.data());
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < row.size_bytes(); ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return absl::StrFormat("%016x", h);
}

json Golden() {
  return json::parse(testing::ReadFileOrDie(
      std::string(LAYERPOOL_SOURCE_DIR) + "/tests/decode_golden/golden.json"));
}

class DecodeGoldenTest : public ::testing::TestWithParam<int> {};

// The model file of a run: a file under ../shared, or one `layerpool synth`
// writes again from the run's flags into `scratch`.
std::string ModelFile(const json& golden, const std::string& model, const std::string& scratch) {
  if (!model.starts_with("synth ")) return testing::SharedPath(model);
  const std::string command =
      absl::StrCat(LAYERPOOL_CLI, " ", model, " --vocab-from ",
                   testing::SharedPath(golden["vocab_from"]), " -o ", scratch, " >/dev/null 2>&1");
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return scratch;
}

TEST_P(DecodeGoldenTest, OneTokenLogitsAsLlamaCpp) {
  const json golden = Golden();
  const json& entry = golden["runs"][GetParam()];
  const std::string scratch =
      absl::StrCat(::testing::TempDir(), "decode_golden_", GetParam(), ".gguf");
  const std::string model = ModelFile(golden, entry["model"], scratch);
  SCOPED_TRACE(entry["model"].get<std::string>() + " '" + entry["prompt"].get<std::string>() +
               "'");
  auto file = gguf::GgufFile::Open(model);
  ASSERT_TRUE(file.ok()) << file.status();
  auto tokenizer = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<int32_t> prompt = entry["prompt_tokens"];
  EXPECT_EQ((*tokenizer)->Encode(entry["prompt"].get<std::string>(), true), prompt);

  auto stage = Stage::Create(**file, {.threads = entry["threads"].get<int>()});
  ASSERT_TRUE(stage.ok()) << stage.status();
  auto cache = (*stage)->NewCache(512);
  ASSERT_TRUE(cache.ok());
  const bool exact = entry["exact"];
  const double tolerance = entry["tolerance"];
  const std::vector<int32_t> generated = entry["generated"];
  std::vector<int32_t> input = prompt;
  int32_t pos = 0;
  std::vector<float> logits;
  for (size_t step = 0; step < entry["steps"].size(); ++step) {
    const json& want = entry["steps"][step];
    const size_t n = input.size();
    std::vector<int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), pos);
    std::vector<KvCache*> caches(n, cache->get());
    const int64_t last = static_cast<int64_t>(n) - 1;
    StageBatch batch{input, {}, positions, caches, std::span(&last, 1), {}, {}};
    ASSERT_TRUE((*stage)->Forward(batch, &logits).ok());
    pos += static_cast<int32_t>(n);
    double worst = 0;
    std::string ours;  // for the message: our logits of llama.cpp's top 8
    for (const json& top : want["top"]) {
      const float got = logits[top[0].get<int>()];
      worst = std::max(worst, std::fabs(got - top[1].get<double>()));
      ours += absl::StrFormat(" [%d, %.9g]", top[0].get<int>(), got);
    }
    if (exact) {
      ASSERT_EQ(Hash(logits), want["hash"].get<std::string>())
          << "step " << step << ": largest difference among llama.cpp's top 8: " << worst
          << "\nllama.cpp:" << want["top"].dump() << "\nours:" << ours;
    } else {
      ASSERT_LE(worst, tolerance) << "step " << step << "\nllama.cpp:" << want["top"].dump()
                                  << "\nours:" << ours;
    }
    input = {generated[step]};
  }
}

INSTANTIATE_TEST_SUITE_P(Runs, DecodeGoldenTest,
                         ::testing::Range(0, static_cast<int>(Golden()["runs"].size())));

}  // namespace
}  // namespace layerpool
