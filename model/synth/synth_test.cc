#include "model/synth/synth.h"

#include <cmath>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"
#include "model/quant/dequantize.h"
#include "model/synth/synth_vocab.h"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          absl::StrCat("synth_test_", getpid(), "_", name))
      .string();
}

SynthOptions Synth12L(const std::string& type) {
  SynthOptions o;
  o.shape = *SynthPreset("synth-12L");
  o.file_type = type;
  o.vocab_from = testing::SharedPath(
      "models/tinystories-656K/TinyStories-656K-Q8_0.gguf");
  o.threads = 2;
  return o;
}

// Our tensor-type mix is llama-quantize's: same names, shapes and types as
// the synth-12L files it made.
TEST(SynthTest, TensorTypesMatchLlamaQuantize) {
  for (const char* type : {"Q4_K_M", "Q4_0", "Q8_0", "F16"}) {
    SCOPED_TRACE(type);
    const std::string path = TempPath(type);
    ASSERT_TRUE(WriteSynthModel(Synth12L(type), path).ok());
    auto ours = gguf::GgufFile::Open(path);
    auto theirs = gguf::GgufFile::Open(testing::SharedPath(
        absl::StrCat("models/synth-12L/synth-12L-", type, ".gguf")));
    ASSERT_TRUE(ours.ok() && theirs.ok());
    ASSERT_EQ((*ours)->tensors().size(), (*theirs)->tensors().size());
    for (const gguf::TensorInfo& t : (*theirs)->tensors()) {
      const gguf::TensorInfo* o = (*ours)->FindTensor(t.name);
      ASSERT_NE(o, nullptr) << t.name;
      EXPECT_EQ(o->type, t.type) << t.name;
      EXPECT_EQ(o->shape, t.shape) << t.name;
    }
    EXPECT_EQ((*ours)->total_tensor_bytes(), (*theirs)->total_tensor_bytes());
    auto hp_ours = ReadHParams(**ours);
    auto hp_theirs = ReadHParams(**theirs);
    ASSERT_TRUE(hp_ours.ok() && hp_theirs.ok());
    EXPECT_EQ(hp_ours->n_layer, hp_theirs->n_layer);
    EXPECT_EQ(hp_ours->n_head_kv, hp_theirs->n_head_kv);
    EXPECT_EQ(hp_ours->n_rot, hp_theirs->n_rot);
    EXPECT_EQ(hp_ours->n_vocab, hp_theirs->n_vocab);
    EXPECT_EQ(hp_ours->file_type, hp_theirs->file_type);
    EXPECT_EQ(*(*ours)->GetArray("tokenizer.ggml.tokens") != nullptr, true);
    EXPECT_EQ((*(*ours)->GetArray("tokenizer.ggml.tokens"))->elements.size(), 2048u);
    std::filesystem::remove(path);
  }
}

// The Mixtral 8x7B shape: 46.7B parameters, nearly all in the experts, and
// every layer's three stacked expert tensors in the table the planner costs.
TEST(SynthTest, MixtralPresetHasItsExperts) {
  SynthOptions o;
  o.shape = *SynthPreset("mixtral-8x7b");
  o.file_type = "Q4_K_M";
  auto table = SynthTensorTable(o);
  ASSERT_TRUE(table.ok()) << table.status();
  int64_t params = 0, expert_tensors = 0;
  for (const gguf::TensorInfo& t : *table) {
    params += t.n_elements;
    if (t.name.ends_with("_exps.weight")) {
      ++expert_tensors;
      EXPECT_EQ(t.shape.size(), 3u) << t.name;
      EXPECT_EQ(t.shape[2], 8) << t.name;
    }
    if (t.name == "blk.0.attn_k.weight" || t.name == "blk.0.attn_v.weight") {
      EXPECT_EQ(t.type, GgmlType::kQ8_0) << t.name;  // llama-quantize's 8-expert rule
    }
  }
  EXPECT_EQ(expert_tensors, 3 * 32);
  EXPECT_NEAR(static_cast<double>(params), 46.70e9, 0.05e9);
  auto hp = SynthHParams(o);
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->n_expert, 8);
  EXPECT_EQ(hp->n_expert_used, 2);
}

TEST(SynthTest, SameBytesWhateverTheThreadCount) {
  SynthOptions o = Synth12L("Q4_K_M");
  o.shape.n_layer = 2;
  const std::string a = TempPath("t1"), b = TempPath("t2");
  o.threads = 1;
  ASSERT_TRUE(WriteSynthModel(o, a).ok());
  o.threads = 2;
  ASSERT_TRUE(WriteSynthModel(o, b).ok());
  EXPECT_EQ(testing::ReadFileOrDie(a), testing::ReadFileOrDie(b));
  o.seed = 99;
  ASSERT_TRUE(WriteSynthModel(o, b).ok());
  EXPECT_NE(testing::ReadFileOrDie(a), testing::ReadFileOrDie(b));
  std::filesystem::remove(a);
  std::filesystem::remove(b);
}

// Weights are N(0, 0.02) for matrices and N(1, 0.05) for norms, as declared.
TEST(SynthTest, WeightsHaveTheDeclaredDistribution) {
  SynthOptions o;
  o.shape = {256, 2, 4, 2, 512, 300, 128, 10000.0, 1e-5};
  o.file_type = "Q8_0";
  const std::string path = TempPath("dist");
  ASSERT_TRUE(WriteSynthModel(o, path).ok());
  auto file = gguf::GgufFile::Open(path);
  ASSERT_TRUE(file.ok());
  for (const char* name : {"blk.1.ffn_up.weight", "blk.0.attn_norm.weight"}) {
    const gguf::TensorInfo* t = (*file)->FindTensor(name);
    ASSERT_NE(t, nullptr);
    auto bytes = (*file)->TensorData(*t);
    std::vector<float> v(t->n_elements);
    ASSERT_TRUE(DequantizeRow(t->type, bytes->data(), v.data(), t->n_elements));
    double sum = 0, sq = 0;
    for (float x : v) sum += x, sq += double{x} * x;
    const double mean = sum / v.size();
    const double sd = std::sqrt(sq / v.size() - mean * mean);
    const bool norm = std::string(name).find("norm") != std::string::npos;
    EXPECT_NEAR(mean, norm ? 1.0 : 0.0, norm ? 0.02 : 0.001) << name;
    EXPECT_NEAR(sd, norm ? 0.05 : 0.02, norm ? 0.01 : 0.001) << name;
  }
  std::filesystem::remove(path);
}

TEST(SynthTest, GeneratedVocabIsConsistentBpe) {
  std::vector<gguf::KeyValue> kv = ByteLevelVocab(70000);
  const gguf::Array* tokens = nullptr;
  const gguf::Array* merges = nullptr;
  for (const auto& e : kv) {
    if (e.key == "tokenizer.ggml.tokens") tokens = &std::get<gguf::Array>(e.value.data);
    if (e.key == "tokenizer.ggml.merges") merges = &std::get<gguf::Array>(e.value.data);
  }
  ASSERT_TRUE(tokens && merges);
  ASSERT_EQ(tokens->elements.size(), 70000u);
  absl::flat_hash_set<std::string> seen;
  for (const auto& t : tokens->elements) {
    EXPECT_TRUE(seen.insert(std::get<std::string>(t.data)).second);
  }
  for (const auto& m : merges->elements) {
    const std::string& s = std::get<std::string>(m.data);
    const size_t space = s.find(' ');
    ASSERT_NE(space, std::string::npos);
    EXPECT_TRUE(seen.contains(s.substr(0, space))) << s;
    EXPECT_TRUE(seen.contains(s.substr(space + 1))) << s;
    EXPECT_TRUE(seen.contains(s.substr(0, space) + s.substr(space + 1))) << s;
  }
}

TEST(SynthTest, BadOptionsAreRejectedWithTheField) {
  SynthOptions o;
  o.shape = *SynthPreset("llama-1b");
  o.shape.n_head_kv = 7;
  EXPECT_THAT(ValidateSynthOptions(o).message(), HasSubstr("--kv-heads 7"));
  o.shape.n_head_kv = 8;
  o.file_type = "Q3_K_S";
  EXPECT_THAT(ValidateSynthOptions(o).message(), HasSubstr("--type Q3_K_S"));
  o.file_type = "q4_k_m";
  EXPECT_TRUE(ValidateSynthOptions(o).ok());
  EXPECT_EQ(SynthPreset("llama-3b").status().code(), absl::StatusCode::kNotFound);
  o.vocab_from = "/nonexistent.gguf";
  EXPECT_EQ(WriteSynthModel(o, TempPath("x")).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(TempPath("x")));
}

}  // namespace
}  // namespace layerpool
