#include "model/gguf/gguf.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/writer.h"
#include "tests/fuzz/gguf_cases.h"
#include "tests/support/shared_data.h"

namespace layerpool::gguf {
namespace {

using ::testing::HasSubstr;

using cases::CorruptCase;
using cases::CorruptGgufCases;
using cases::ExampleWriter;

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

absl::Status ParseStatus(const std::string& bytes) {
  return GgufFile::Parse(AsBytes(bytes)).status();
}

TEST(GgufTest, WriterRoundTripKeepsEveryValueTypeAndTensor) {
  auto bytes = ExampleWriter().WriteToString();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto file = GgufFile::Parse(AsBytes(*bytes));
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.metadata().size(), 13u);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetUint("u8"), 250u);
  EXPECT_EQ(*f.GetInt("i8"), -5);
  EXPECT_EQ(*f.GetUint("u16"), 65000u);
  EXPECT_EQ(*f.GetInt("i16"), -32000);
  EXPECT_EQ(*f.GetUint("u32"), 4000000000u);
  EXPECT_EQ(*f.GetInt("i32"), -2000000000);
  EXPECT_EQ(*f.GetUint("u64"), uint64_t{1} << 60);
  EXPECT_EQ(*f.GetInt("i64"), -(int64_t{1} << 60));
  EXPECT_EQ(*f.GetFloat("f32"), 0.25);
  EXPECT_EQ(*f.GetFloat("f64"), 1e-300);
  EXPECT_TRUE(*f.GetBool("yes"));
  EXPECT_EQ(f.FindValue("u32")->type, ValueType::kUint32);
  const Array* nested = *f.GetArray("nested");
  ASSERT_EQ(nested->elements.size(), 2u);
  const Array& inner = std::get<Array>(nested->elements[0].data);
  EXPECT_EQ(inner.element_type, ValueType::kString);
  EXPECT_EQ(std::get<std::string>(inner.elements[0].data), "a");
  EXPECT_EQ(std::get<std::string>(inner.elements[1].data), "");

  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorInfo* a = f.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{8, 3}));
  EXPECT_EQ(a->n_rows(), 3);
  auto data = f.TensorData(*a);
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data->size(), 96u);
  EXPECT_EQ((*data)[95], 95);
  const TensorInfo* b = f.FindTensor("b");
  EXPECT_EQ(b->offset % 32, 0u);
  EXPECT_EQ(b->size_bytes, 68u);
  EXPECT_EQ((*f.TensorData(*b))[67], 7);
  EXPECT_EQ(f.FindTensor("missing"), nullptr);
}

TEST(GgufTest, TypedGettersRejectWrongTypes) {
  auto bytes = ExampleWriter().WriteToString();
  auto file = GgufFile::Parse(AsBytes(*bytes));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->GetUint("i8").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT((*file)->GetString("u8").status().message(),
              HasSubstr("has type uint8, expected string"));
  EXPECT_EQ((*file)->GetInt("nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(GgufTest, WriterRejectsBadTensors) {
  GgufWriter w;
  EXPECT_FALSE(w.AddTensor("q", GgmlType::kQ4_K, {100}, std::vector<uint8_t>()).ok());
  EXPECT_FALSE(w.AddTensor("f", GgmlType::kF32, {2}, std::vector<uint8_t>(7)).ok());
  EXPECT_TRUE(w.AddTensor("f", GgmlType::kF32, {2}, std::vector<uint8_t>(8)).ok());
  EXPECT_FALSE(w.AddTensor("f", GgmlType::kF32, {2}, std::vector<uint8_t>(8)).ok());
  EXPECT_FALSE(w.AddTensor(std::string(64, 'x'), GgmlType::kF32, {1},
                           std::vector<uint8_t>(4)).ok());
}

// Every prefix of a valid file that cuts into its tensor data is rejected
// cleanly (this also covers strings and arrays that run past the end). Only
// the zero padding after the last tensor may be cut.
TEST(GgufTest, EveryTruncationIsRejected) {
  auto bytes = ExampleWriter().WriteToString();
  ASSERT_TRUE(bytes.ok());
  auto file = GgufFile::Parse(AsBytes(*bytes));
  ASSERT_TRUE(file.ok());
  const TensorInfo& last = (*file)->tensors().back();
  const size_t needed = (*file)->data_offset() + last.offset + last.size_bytes;
  ASSERT_LT(needed, bytes->size());
  for (size_t n = 0; n < bytes->size(); ++n) {
    absl::Status s = ParseStatus(bytes->substr(0, n));
    EXPECT_EQ(s.ok(), n >= needed) << "prefix of " << n << " bytes: " << s;
  }
}

TEST(GgufTest, CorruptFilesFailWithClearErrors) {
  for (const CorruptCase& c : CorruptGgufCases()) {
    SCOPED_TRACE(c.name);
    absl::Status s = ParseStatus(c.bytes);
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
}

TEST(GgufTest, OpenReportsMissingFile) {
  auto f = GgufFile::Open("/nonexistent/model.gguf");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GgufFile::Open("/").status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::vector<std::string> AllSharedModels() {
  std::vector<std::string> out;
  for (const char* dir : {"models/stories260K", "models/tinystories-656K",
                          "models/synth-12L", "models/vocab"}) {
    for (auto& f : layerpool::testing::SharedFiles(dir, ".gguf")) out.push_back(f);
  }
  return out;
}

// Every real file parses, and writing its metadata and tensors back with our
// writer reproduces it byte for byte: the reader misses nothing and the
// writer lays files out as llama.cpp and gguf-py do.
TEST(GgufTest, RealFilesParseAndRewriteIdentically) {
  std::vector<std::string> files = AllSharedModels();
  ASSERT_GE(files.size(), 30u);
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    const GgufFile& f = **file;
    GgufWriter w;
    for (const KeyValue& kv : f.metadata()) w.Set(kv.key, kv.value);
    for (const TensorInfo& t : f.tensors()) {
      auto data = f.TensorData(t);
      ASSERT_TRUE(data.ok());
      ASSERT_TRUE(w.AddTensor(t.name, t.type, t.shape,
                              std::vector<uint8_t>(data->begin(), data->end()))
                      .ok());
    }
    auto rewritten = w.WriteToString();
    ASSERT_TRUE(rewritten.ok());
    std::string original = layerpool::testing::ReadFileOrDie(path);
    EXPECT_EQ(rewritten->size(), original.size());
    EXPECT_TRUE(*rewritten == original) << "rewrite differs";
  }
}

TEST(GgufTest, TensorMapMapsOnlyTheChosenLayers) {
  const std::string path =
      layerpool::testing::SharedPath("models/synth-12L/synth-12L-Q4_K_M.gguf");
  auto file = GgufFile::Open(path, {.map_data = false});
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.TensorData(f.tensors()[0]).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto map = TensorMap::Map(f, [](const TensorInfo& t) {
    return t.name.rfind("blk.3.", 0) == 0 || t.name.rfind("blk.4.", 0) == 0;
  });
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->tensors().size(), 18u);
  uint64_t layer_bytes = 0;
  for (const TensorInfo* t : map->tensors()) layer_bytes += t->size_bytes;
  EXPECT_LT(map->mapped_bytes(), layer_bytes + 18 * 32);
  EXPECT_LT(map->mapped_bytes(), f.total_tensor_bytes() / 5);

  auto whole = GgufFile::Open(path);
  ASSERT_TRUE(whole.ok());
  const TensorInfo* q = map->Find("blk.4.attn_q.weight");
  ASSERT_NE(q, nullptr);
  auto mapped = map->Data(*q);
  auto direct = (*whole)->TensorData(*(*whole)->FindTensor("blk.4.attn_q.weight"));
  ASSERT_TRUE(mapped.ok() && direct.ok());
  ASSERT_EQ(mapped->size(), direct->size());
  EXPECT_EQ(std::memcmp(mapped->data(), direct->data(), direct->size()), 0);
  EXPECT_EQ(map->Data(*f.FindTensor("blk.0.attn_q.weight")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace layerpool::gguf
