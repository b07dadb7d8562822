#include "model/hparams/support.h"

#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/writer.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

// A header-only llama model with two layers' worth of tensors, changed by
// `edit` before it is written.
absl::Status Check(const std::function<void(gguf::GgufWriter&)>& edit,
                   const std::string& arch = "llama") {
  gguf::GgufWriter w;
  w.Set("general.architecture", gguf::Value::String(arch));
  const std::string a = arch + ".";
  w.Set(a + "block_count", gguf::Value::Uint32(1));
  w.Set(a + "embedding_length", gguf::Value::Uint32(32));
  w.Set(a + "feed_forward_length", gguf::Value::Uint32(64));
  w.Set(a + "attention.head_count", gguf::Value::Uint32(4));
  w.Set(a + "vocab_size", gguf::Value::Uint32(64));
  EXPECT_TRUE(w.AddTensor("blk.0.attn_q.weight", GgmlType::kF32, {32, 32},
                          std::vector<uint8_t>(32 * 32 * 4)).ok());
  edit(w);
  auto bytes = w.WriteToString();
  EXPECT_TRUE(bytes.ok());
  static std::string keep;  // Parse keeps a view of the bytes
  keep = *bytes;
  auto file = gguf::GgufFile::Parse(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(keep.data()), keep.size()));
  EXPECT_TRUE(file.ok()) << file.status();
  auto hp = ReadHParams(**file);
  EXPECT_TRUE(hp.ok()) << hp.status();
  return CheckSupported(**file, *hp);
}

TEST(CheckSupported, PlainLlamaRuns) {
  EXPECT_TRUE(Check([](gguf::GgufWriter&) {}).ok());
  for (const char* scaling : {"linear", "yarn", "none"}) {
    EXPECT_TRUE(Check([scaling](gguf::GgufWriter& w) {
                  w.Set("llama.rope.scaling.type", gguf::Value::String(scaling));
                }).ok()) << scaling;
  }
  // qwen2: its QKV biases are part of the architecture.
  EXPECT_TRUE(Check([](gguf::GgufWriter& w) {
                EXPECT_TRUE(w.AddTensor("blk.0.attn_q.bias", GgmlType::kF32, {32},
                                        std::vector<uint8_t>(32 * 4)).ok());
              }, "qwen2").ok());
  // Mixtral: llama with routed experts.
  auto mixtral = [](gguf::GgufWriter& w) {
    w.Set("llama.expert_count", gguf::Value::Uint32(4));
    w.Set("llama.expert_used_count", gguf::Value::Uint32(2));
    EXPECT_TRUE(w.AddTensor("blk.0.ffn_gate_inp.weight", GgmlType::kF32, {32, 4},
                            std::vector<uint8_t>(32 * 4 * 4)).ok());
    EXPECT_TRUE(w.AddTensor("blk.0.ffn_up_exps.weight", GgmlType::kF32, {32, 64, 4},
                            std::vector<uint8_t>(32 * 64 * 4 * 4)).ok());
  };
  EXPECT_TRUE(Check(mixtral).ok());
  // Qwen-MoE's shared expert is not Mixtral's.
  const absl::Status shared = Check([&](gguf::GgufWriter& w) {
    mixtral(w);
    EXPECT_TRUE(w.AddTensor("blk.0.ffn_up_shexp.weight", GgmlType::kF32, {32, 64},
                            std::vector<uint8_t>(32 * 64 * 4)).ok());
  });
  EXPECT_EQ(shared.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(shared.message(), HasSubstr("blk.0.ffn_up_shexp.weight"));
  // Phi-3's LongRoPE factors are phi3's; in llama they are refused.
  auto longrope = [](gguf::GgufWriter& w) {
    EXPECT_TRUE(w.AddTensor("rope_factors_long.weight", GgmlType::kF32, {4},
                            std::vector<uint8_t>(16)).ok());
  };
  EXPECT_TRUE(Check(longrope, "phi3").ok());
  EXPECT_THAT(Check(longrope).message(), HasSubstr("long/short RoPE factors in llama"));
  // Llama 3.1's RoPE factors.
  EXPECT_TRUE(Check([](gguf::GgufWriter& w) {
                EXPECT_TRUE(w.AddTensor("rope_freqs.weight", GgmlType::kF32, {4},
                                        std::vector<uint8_t>(16)).ok());
              }).ok());
}

TEST(CheckSupported, SaysWhatIsMissingInOneLine) {
  struct Case {
    std::function<void(gguf::GgufWriter&)> edit;
    std::string arch;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](gguf::GgufWriter&) {}, "gemma3", "architecture 'gemma3' is not supported yet (layerpool runs llama, qwen2, phi3, gemma2)"},
      {[](gguf::GgufWriter& w) { w.Set("llama.rope.scaling.type", gguf::Value::String("longrope")); },
       "llama", "RoPE scaling 'longrope'"},
      {[](gguf::GgufWriter& w) {
         w.Set("qwen2.expert_count", gguf::Value::Uint32(8));
         w.Set("qwen2.expert_used_count", gguf::Value::Uint32(2));
       },
       "qwen2", "mixture of experts in qwen2"},
      {[](gguf::GgufWriter& w) {
         EXPECT_TRUE(w.AddTensor("blk.0.ffn_gate_inp.weight", GgmlType::kF32, {32, 8},
                                 std::vector<uint8_t>(32 * 8 * 4)).ok());
       }, "llama", "blk.0.ffn_gate_inp.weight"},
      {[](gguf::GgufWriter& w) {
         EXPECT_TRUE(w.AddTensor("blk.0.attn_q.bias", GgmlType::kF32, {32},
                                 std::vector<uint8_t>(32 * 4)).ok());
       }, "llama", "bias tensors (blk.0.attn_q.bias)"},
      {[](gguf::GgufWriter& w) {
         EXPECT_TRUE(w.AddTensor("blk.0.ffn_down.weight", GgmlType::kIQ2_XXS, {256, 1},
                                 std::vector<uint8_t>(66)).ok());
       }, "llama", "iq2_xxs"},
  };
  for (const Case& c : cases) {
    const absl::Status s = Check(c.edit, c.arch);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented) << c.says;
    EXPECT_THAT(s.message(), HasSubstr(c.says));
    EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos);
  }
}

// The window per layer: phi3 on every layer, gemma2 on the even ones, and
// none for llama even when its file names one (llama.cpp ignores it).
TEST(AttentionWindow, AsTheArchitectureSays) {
  HParams hp;
  hp.n_swa = 16;
  hp.architecture = "phi3";
  EXPECT_EQ(AttentionWindow(hp, 0), 16);
  EXPECT_EQ(AttentionWindow(hp, 1), 16);
  hp.architecture = "gemma2";
  EXPECT_EQ(AttentionWindow(hp, 0), 16);
  EXPECT_EQ(AttentionWindow(hp, 1), 0);
  EXPECT_EQ(AttentionWindow(hp, 24), 16);
  hp.architecture = "llama";
  EXPECT_EQ(AttentionWindow(hp, 0), 0);
  hp.architecture = "gemma2";
  hp.n_swa = 0;
  EXPECT_EQ(AttentionWindow(hp, 0), 0);
}

}  // namespace
}  // namespace layerpool
