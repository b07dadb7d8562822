// The dot products on real weight rows: every matrix type in the synth-12L
// files llama-quantize wrote (all K-quants, IQ4_NL/XS, Q4_0, Q8_0, F16),
// each SIMD kernel against the scalar reference and the scalar reference
// against the dequantize-and-sum-in-double oracle.
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/matmul.h"
#include "kernels/test_util.h"
#include "kernels/vec_dot.h"
#include "model/gguf/gguf.h"
#include "tests/support/shared_data.h"

namespace layerpool::kernels {
namespace {

using gguf::GgufFile;
using gguf::TensorInfo;
using testing::AvailableIsas;
using testing::DoubleDot;
using testing::Quantized;
using testing::RandomFloats;
using testing::TypeName;

TEST(RealWeightsTest, DotProductsOnSynthModels) {
  const std::vector<std::string> files =
      ::layerpool::testing::SharedFiles("models/synth-12L", ".gguf");
  ASSERT_FALSE(files.empty());
  std::set<GgmlType> seen;
  std::mt19937 rng(42);
  for (const std::string& path : files) {
    auto file = GgufFile::Open(path);
    ASSERT_TRUE(file.ok()) << path << ": " << file.status();
    for (const TensorInfo& t : (*file)->tensors()) {
      if (t.shape.size() != 2 || !IsVecDotSupported(t.type)) continue;
      seen.insert(t.type);
      auto data = (*file)->TensorData(t);
      ASSERT_TRUE(data.ok()) << t.name;
      const int64_t cols = t.row_length();
      const int64_t row_bytes = *RowBytes(t.type, cols);
      const std::vector<uint8_t> xq =
          Quantized(t.type, RandomFloats(rng, cols));
      for (int64_t r = 0; r < std::min<int64_t>(3, t.n_rows()); ++r) {
        const uint8_t* w = data->data() + r * row_bytes;
        const float ref =
            GetVecDotFn(t.type, CpuIsa::kScalar)(w, xq.data(), cols);
        const testing::Oracle o = DoubleDot(t.type, w, xq.data(), cols);
        ASSERT_NEAR(ref, o.dot, 1e-5 * o.abs_sum) << path << " " << t.name;
        for (CpuIsa isa : AvailableIsas()) {
          const float got = GetVecDotFn(t.type, isa)(w, xq.data(), cols);
          ASSERT_NEAR(got, ref, 1e-5 * o.abs_sum)
              << path << " " << t.name << " " << IsaName(isa);
        }
      }
    }
  }
  // The files cover these types (see ../shared/golden/README.md).
  for (GgmlType type :
       {GgmlType::kF16, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ2_K,
        GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K,
        GgmlType::kIQ4_NL, GgmlType::kIQ4_XS}) {
    EXPECT_TRUE(seen.count(type)) << TypeName(type);
  }
}

}  // namespace
}  // namespace layerpool::kernels
