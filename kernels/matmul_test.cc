#include "kernels/matmul.h"

#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/test_util.h"
#include "kernels/thread_pool.h"
#include "kernels/vec_dot.h"
#include "model/quant/dequantize.h"

namespace layerpool::kernels {
namespace {

using testing::AllWeightTypes;
using testing::BlockSize;
using testing::Bytes;
using testing::Quantized;
using testing::RandomFloats;
using testing::RandomRow;
using testing::TypeName;

// (weight type, threads, tokens)
class MatMulTest
    : public ::testing::TestWithParam<std::tuple<GgmlType, int, int64_t>> {};

// Every output is exactly the VecDot of its row and token: MatMul changes
// how the work is split, never the arithmetic.
TEST_P(MatMulTest, EqualsLoopOverVecDot) {
  const auto [type, threads, n_tokens] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(type) * 31 + threads * 7 +
                   static_cast<unsigned>(n_tokens));
  // 37 rows: not a multiple of the row block or the thread count.
  const int64_t rows = 37;
  const int64_t cols = BlockSize(type) == 1 ? 300 : 2 * kQkK;
  std::vector<uint8_t> w;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = RandomRow(rng, type, cols);
    w.insert(w.end(), row.begin(), row.end());
  }
  const std::vector<float> x = RandomFloats(rng, n_tokens * cols);

  ThreadPool pool(threads);
  std::vector<float> y(static_cast<size_t>(rows * n_tokens), -1.0f);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);

  const size_t row_bytes = Bytes(type, cols);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const std::vector<float> xt(x.begin() + t * cols,
                                x.begin() + (t + 1) * cols);
    const std::vector<uint8_t> xq = Quantized(type, xt);
    for (int64_t r = 0; r < rows; ++r) {
      const float expected =
          VecDot(type, w.data() + r * row_bytes, xq.data(), cols);
      ASSERT_EQ(y[t * rows + r], expected)
          << TypeName(type) << " token " << t << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, MatMulTest,
    ::testing::Combine(::testing::ValuesIn(AllWeightTypes()),
                       ::testing::Values(1, 3), ::testing::Values(1, 7)),
    [](const auto& info) {
      return TypeName(std::get<0>(info.param)) + "_threads" +
             std::to_string(std::get<1>(info.param)) + "_tokens" +
             std::to_string(std::get<2>(info.param));
    });

TEST(MatMulTest, NullPoolAndLargeBatchMatchPooled) {
  std::mt19937 rng(3);
  const GgmlType type = GgmlType::kQ4_K;
  const int64_t rows = 50, cols = 512, n_tokens = 20;  // several token tiles
  std::vector<uint8_t> w;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = RandomRow(rng, type, cols);
    w.insert(w.end(), row.begin(), row.end());
  }
  const std::vector<float> x = RandomFloats(rng, n_tokens * cols);
  std::vector<float> a(rows * n_tokens), b(rows * n_tokens);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, a.data(), nullptr);
  ThreadPool pool(2);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, b.data(), &pool);
  EXPECT_EQ(a, b);
}

TEST(GetRowsTest, DequantizesSelectedRows) {
  std::mt19937 rng(4);
  for (GgmlType type : AllWeightTypes()) {
    const int64_t rows = 10, cols = 512;
    std::vector<uint8_t> table;
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<uint8_t> row = RandomRow(rng, type, cols);
      table.insert(table.end(), row.begin(), row.end());
    }
    const std::vector<int32_t> ids = {3, 0, 9, 3};
    std::vector<float> out(ids.size() * cols);
    GetRows(type, table.data(), cols, ids.data(),
            static_cast<int64_t>(ids.size()), out.data());
    const size_t row_bytes = Bytes(type, cols);
    for (size_t i = 0; i < ids.size(); ++i) {
      std::vector<float> expected(cols);
      ASSERT_TRUE(DequantizeRow(type, table.data() + ids[i] * row_bytes,
                                expected.data(), cols));
      EXPECT_EQ(std::vector<float>(out.begin() + i * cols,
                                   out.begin() + (i + 1) * cols),
                expected)
          << TypeName(type) << " id " << ids[i];
    }
  }
}

}  // namespace
}  // namespace layerpool::kernels
