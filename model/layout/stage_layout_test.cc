#include "model/layout/stage_layout.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

std::unique_ptr<gguf::GgufFile> Open(const std::string& path) {
  auto file = gguf::GgufFile::Open(path, {.map_data = false});
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? std::move(*file) : nullptr;
}

TEST(StageLayout, LayerOfTensor) {
  EXPECT_EQ(LayerOfTensor("blk.0.attn_q.weight"), 0);
  EXPECT_EQ(LayerOfTensor("blk.79.ffn_down.weight"), 79);
  EXPECT_EQ(LayerOfTensor("blk..attn_q.weight"), -1);
  EXPECT_EQ(LayerOfTensor("blk.7"), -1);
  EXPECT_EQ(LayerOfTensor("blk.x.attn_q"), -1);
  EXPECT_EQ(LayerOfTensor("token_embd.weight"), -1);
  EXPECT_EQ(LayerOfTensor("blk.99999999999999999999.a"), -1);
}

TEST(StageLayout, EveryTensorHasExactlyOneOwnerExceptTiedEmbedding) {
  auto file = Open(testing::SharedPath("models/stories260K/stories260K-F32.gguf"));
  ASSERT_NE(file, nullptr);
  const int64_t n_layer = 5;
  const bool tied = HasTiedOutput(*file);
  // Split into one stage per layer: each tensor in exactly one stage, except
  // the tied embedding, held by the first and the last.
  for (const gguf::TensorInfo& t : file->tensors()) {
    int owners = 0;
    for (int64_t l = 0; l < n_layer; ++l) {
      owners += StageHoldsTensor(t.name, l, l + 1, n_layer, tied);
    }
    const bool shared = tied && t.name == "token_embd.weight";
    EXPECT_EQ(owners, shared ? 2 : 1) << t.name;
  }
}

TEST(StageLayout, FingerprintIsStableAndTellsStagesAndFilesApart) {
  auto a = Open(testing::SharedPath("models/tinystories-656K/TinyStories-656K-Q8_0.gguf"));
  auto b = Open(testing::SharedPath("models/tinystories-656K/TinyStories-656K-Q4_0.gguf"));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto whole = StageFingerprint(*a, 0, 2, 2);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(whole->starts_with("sha256:"));
  EXPECT_EQ(whole->size(), 7u + 64u);
  EXPECT_EQ(*StageFingerprint(*a, 0, 2, 2), *whole);
  EXPECT_NE(*StageFingerprint(*a, 0, 1, 2), *whole);
  EXPECT_NE(*StageFingerprint(*a, 0, 1, 2), *StageFingerprint(*a, 1, 2, 2));
  EXPECT_NE(*StageFingerprint(*b, 0, 2, 2), *whole);
}

TEST(StageLayout, FingerprintSeesChangedWeights) {
  const std::string src = testing::SharedPath("models/stories260K/stories260K-F32.gguf");
  const std::string copy = ::testing::TempDir() + "/stage_layout_copy.gguf";
  std::filesystem::copy_file(src, copy, std::filesystem::copy_options::overwrite_existing);
  auto original = Open(src);
  ASSERT_NE(original, nullptr);
  const gguf::TensorInfo* t = original->FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(t, nullptr);
  {
    std::fstream f(copy, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(original->data_offset() + t->offset + 1));
    f.put('\x5a');
  }
  auto changed = Open(copy);
  ASSERT_NE(changed, nullptr);
  EXPECT_NE(*StageFingerprint(*changed, 0, 1, 5), *StageFingerprint(*original, 0, 1, 5));
  // Other stages do not hold the tensor: their fingerprints are unchanged.
  EXPECT_EQ(*StageFingerprint(*changed, 1, 5, 5), *StageFingerprint(*original, 1, 5, 5));
}

TEST(StageLayout, FingerprintRejectsBadRanges) {
  auto file = Open(testing::SharedPath("models/stories260K/stories260K-F32.gguf"));
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(StageFingerprint(*file, 3, 3, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StageFingerprint(*file, 0, 6, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StageFingerprint(*file, -1, 2, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace layerpool
