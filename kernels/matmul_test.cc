#include "kernels/matmul.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/matmul_internal.h"
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

using testing::AvailableIsas;
using testing::Dequantized;
using testing::DequantizedActivations;

// Signed level j of block b of a Q8_0 or Q4_0 weight row.
int WeightLevel(GgmlType type, const uint8_t* w_row, int64_t b, int j) {
  if (type == GgmlType::kQ8_0) {
    return reinterpret_cast<const BlockQ8_0*>(w_row)[b].qs[j];
  }
  const uint8_t q = reinterpret_cast<const BlockQ4_0*>(w_row)[b].qs[j % 16];
  return (j < 16 ? q & 0x0F : q >> 4) - 8;
}

float WeightScale(GgmlType type, const uint8_t* w_row, int64_t b) {
  return Fp16ToFp32(type == GgmlType::kQ8_0
                        ? reinterpret_cast<const BlockQ8_0*>(w_row)[b].d
                        : reinterpret_cast<const BlockQ4_0*>(w_row)[b].d);
}

// The partial sum of block b's weights 4l..4l+3 times the activations'.
int LanePartial(GgmlType type, const uint8_t* w_row, const BlockQ8_0* x,
                int64_t b, int l) {
  int p = 0;
  for (int j = 4 * l; j < 4 * l + 4; ++j) {
    p += WeightLevel(type, w_row, b, j) * x[b].qs[j];
  }
  return p;
}

// What the tiled kernels compute (matmul_internal.h), in plain C++: ggml's
// x86 dot product of a Q8_0 or Q4_0 row with Q8_0 activations, eight lanes
// of fused multiply-adds and its horizontal sum.
float GgmlOrderDot(GgmlType type, const uint8_t* w_row, const uint8_t* xq,
                   int64_t cols) {
  const auto* x = reinterpret_cast<const BlockQ8_0*>(xq);
  float acc[8] = {};
  for (int64_t b = 0; b < cols / kQk32; ++b) {
    const float d = WeightScale(type, w_row, b) * Fp16ToFp32(x[b].d);
    for (int l = 0; l < 8; ++l) {
      acc[l] = std::fma(
          d, static_cast<float>(LanePartial(type, w_row, x, b, l)), acc[l]);
    }
  }
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
         ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// What llama.cpp computes for a repacked Q4_0 matrix (rows % 8 == 0;
// matmul_repack_avx512.cc): per block the exact integer sum, then one FMA.
float RepackedOrderDot(const uint8_t* w_row, const uint8_t* xq, int64_t cols) {
  const auto* x = reinterpret_cast<const BlockQ8_0*>(xq);
  float acc = 0.0f;
  for (int64_t b = 0; b < cols / kQk32; ++b) {
    int isum = 0;
    for (int l = 0; l < 8; ++l) {
      isum += LanePartial(GgmlType::kQ4_0, w_row, x, b, l);
    }
    const float d =
        WeightScale(GgmlType::kQ4_0, w_row, b) * Fp16ToFp32(x[b].d);
    acc = std::fma(static_cast<float>(isum), d, acc);
  }
  return acc;
}

// The order a prefill of `rows` rows of `type` follows, exactly.
float PrefillOrderDot(GgmlType type, int64_t rows, const uint8_t* w_row,
                      const uint8_t* xq, int64_t cols) {
  return IsRepackedByLlamaCpp(type, rows) ? RepackedOrderDot(w_row, xq, cols)
                                          : GgmlOrderDot(type, w_row, xq, cols);
}

// The scale the tiled kernels and the scalar VecDot may differ by: the sum
// over blocks and lanes of |partial * dw * dx| (in double), for one row and
// token.
double LaneAbsSum(GgmlType type, const uint8_t* w_row, const uint8_t* xq,
                  int64_t cols) {
  const auto* x = reinterpret_cast<const BlockQ8_0*>(xq);
  double total = 0;
  for (int64_t b = 0; b < cols / kQk32; ++b) {
    const double d =
        static_cast<double>(WeightScale(type, w_row, b)) * Fp16ToFp32(x[b].d);
    for (int l = 0; l < 8; ++l) {
      total += std::fabs(LanePartial(type, w_row, x, b, l) * d);
    }
  }
  return total;
}

// The reference adds fl(fl(isum * dw) * dx) in block order: within nb + 2
// roundings (unit 2^-24) of the exact sum, relative to the sum of the block
// terms' magnitudes. The tiled kernels round dw * dx once and then add nb
// lane terms per lane and 3 levels of lanes: within nb + 4 roundings
// relative to LaneAbsSum, which is at least the block one. The repacked
// Q4_0 order rounds dw * dx once and fuses each block's term into the sum:
// within nb + 1 roundings of the block magnitudes. So each is within
// 2 * (nb + 3) roundings of LaneAbsSum of the reference. Random data lands
// far inside this bound (the errors mostly cancel); a wrong block, scale or
// offset far outside it.
double TiledTolerance(int64_t cols, double lane_abs_sum) {
  const double nb = static_cast<double>(cols / kQk32);
  return 2 * (nb + 3) * std::ldexp(1.0, -24) * lane_abs_sum;
}

std::vector<uint8_t> RandomMatrix(std::mt19937& rng, GgmlType type,
                                  int64_t rows, int64_t cols) {
  std::vector<uint8_t> w;
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = RandomRow(rng, type, cols);
    w.insert(w.end(), row.begin(), row.end());
  }
  return w;
}

// Checks the outputs y (n_tokens x rows) of a prefill: bit for bit
// PrefillOrderDot, and within TiledTolerance of the scalar VecDot (exactly
// equal to it when `exact`).
void ExpectTiledOutputs(GgmlType type, const std::vector<uint8_t>& w,
                        int64_t rows, int64_t cols, const std::vector<float>& x,
                        int64_t n_tokens, const std::vector<float>& y,
                        bool exact = false) {
  const VecDotFn scalar_dot = GetVecDotFn(type, CpuIsa::kScalar);
  const size_t row_bytes = Bytes(type, cols);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const std::vector<float> xt(x.begin() + t * cols,
                                x.begin() + (t + 1) * cols);
    const std::vector<uint8_t> xq = Quantized(type, xt);
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* w_row = w.data() + r * row_bytes;
      const float got = y[t * rows + r];
      ASSERT_EQ(got, PrefillOrderDot(type, rows, w_row, xq.data(), cols))
          << TypeName(type) << " token " << t << " row " << r << " of " << rows
          << " x " << cols << ", " << n_tokens << " tokens";
      const float expected = scalar_dot(w_row, xq.data(), cols);
      if (exact) {
        ASSERT_EQ(got, expected)
            << TypeName(type) << " token " << t << " row " << r;
      } else {
        const double scale = LaneAbsSum(type, w_row, xq.data(), cols);
        ASSERT_NEAR(got, expected, TiledTolerance(cols, scale))
            << TypeName(type) << " token " << t << " row " << r << " of "
            << rows << " x " << cols << ", " << n_tokens << " tokens";
      }
    }
  }
}

// (weight type, threads, tokens)
class MatMulTest
    : public ::testing::TestWithParam<std::tuple<GgmlType, int, int64_t>> {};

// Every output is the dot product of its row and token: exactly RowDotFn's
// for the batch (VecDot for one token; the scalar-path run of this test pins
// it to the reference), except for the prefill of types with a tiled kernel,
// which is PrefillOrderDot's, within TiledTolerance of the scalar VecDot.
TEST_P(MatMulTest, EqualsLoopOverVecDot) {
  const auto [type, threads, n_tokens] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(type) * 31 + threads * 7 +
                   static_cast<unsigned>(n_tokens));
  // 37 rows: not a multiple of the row block or the thread count.
  const int64_t rows = 37;
  const int64_t cols = BlockSize(type) == 1 ? 300 : 2 * kQkK;
  const std::vector<uint8_t> w = RandomMatrix(rng, type, rows, cols);
  const std::vector<float> x = RandomFloats(rng, n_tokens * cols);

  ThreadPool pool(threads);
  std::vector<float> y(static_cast<size_t>(rows * n_tokens), -1.0f);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);

  if (n_tokens > 1 &&
      GetTiledKernel(type, ActiveIsa(), rows).matmul != nullptr) {
    ExpectTiledOutputs(type, w, rows, cols, x, n_tokens, y);
    return;
  }
  const VecDotFn dot = RowDotFn(type, ActiveIsa(), rows, cols, n_tokens);
  const size_t row_bytes = Bytes(type, cols);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const std::vector<float> xt(x.begin() + t * cols,
                                x.begin() + (t + 1) * cols);
    const std::vector<uint8_t> xq = Quantized(type, xt);
    for (int64_t r = 0; r < rows; ++r) {
      const float expected = dot(w.data() + r * row_bytes, xq.data(), cols);
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

// MatMulExpert is ggml_vec_dot for every output, as mul_mat_id: for every
// type, batch or not, with 40 rows (a multiple of 8, which MatMul would
// compute as llama.cpp's repacked Q4_0) and 2 threads.
TEST(MatMulTest, ExpertOrderIsVecDot) {
  std::mt19937 rng(12);
  const int64_t rows = 40;
  ThreadPool pool(2);
  for (GgmlType type : AllWeightTypes()) {
    const int64_t cols = BlockSize(type) == 1 ? 512 : 2 * kQkK;
    const std::vector<uint8_t> w = RandomMatrix(rng, type, rows, cols);
    const VecDotFn dot = GetVecDotFn(type, ActiveIsa());
    const size_t row_bytes = Bytes(type, cols);
    for (int64_t n_tokens : {1, 5, 12}) {
      const std::vector<float> x = RandomFloats(rng, n_tokens * cols);
      std::vector<float> y(static_cast<size_t>(rows * n_tokens));
      MatMulExpert(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const std::vector<float> xt(x.begin() + t * cols, x.begin() + (t + 1) * cols);
        const std::vector<uint8_t> xq = Quantized(type, xt);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(y[t * rows + r], dot(w.data() + r * row_bytes, xq.data(), cols))
              << TypeName(type) << " tokens " << n_tokens << " token " << t << " row " << r;
        }
      }
    }
  }
}

TEST(MatMulTest, NullPoolAndLargeBatchMatchPooled) {
  std::mt19937 rng(3);
  const GgmlType type = GgmlType::kQ4_K;
  const int64_t rows = 50, cols = 512, n_tokens = 20;  // several token tiles
  const std::vector<uint8_t> w = RandomMatrix(rng, type, rows, cols);
  const std::vector<float> x = RandomFloats(rng, n_tokens * cols);
  std::vector<float> a(rows * n_tokens), b(rows * n_tokens);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, a.data(), nullptr);
  ThreadPool pool(2);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, b.data(), &pool);
  EXPECT_EQ(a, b);
}

// (instruction set, weight type): the tiled prefill kernels on shapes that
// exercise their tails: row counts that are not a multiple of the tile (4
// or 2 rows) or of the 32-row blocks, odd token counts and partial tiles of
// pairs, and rows from one block to 4096 columns, in whole and partial
// chunks of 16 blocks.
class TiledMatMulTest
    : public ::testing::TestWithParam<std::tuple<CpuIsa, GgmlType>> {};

TEST_P(TiledMatMulTest, MatchesScalarAndIgnoresThreadCount) {
  const auto [isa, type] = GetParam();
  // Shapes whose rows are a multiple of 8 take the repacked Q4_0 order,
  // with the AVX-512 tiled kernel or, on AVX2, a loop over its row dot.
  if (GetTiledKernel(type, isa, /*rows=*/1).matmul == nullptr) {
    GTEST_SKIP() << "no tiled " << TypeName(type) << " kernel for "
                 << IsaName(isa);
  }
  struct Shape {
    int64_t rows, cols, n_tokens;
  };
  const Shape shapes[] = {{1, 32, 2},     {16, 32, 3},   {37, 64, 5},
                          {15, 96, 17},   {64, 256, 64}, {33, 1024, 9},
                          {37, 2048, 17}, {17, 4096, 2}, {40, 4096, 64},
                          {3, 128, 8},    {48, 160, 16}, {20, 512, 7},
                          {35, 1568, 33}, {66, 544, 12}};
  std::mt19937 rng(static_cast<unsigned>(type) * 5 +
                   static_cast<unsigned>(isa));
  ThreadPool two(2), three(3);
  for (const Shape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << s.rows << " x " << s.cols << ", "
                                      << s.n_tokens << " tokens");
    const std::vector<uint8_t> w = RandomMatrix(rng, type, s.rows, s.cols);
    const std::vector<float> x = RandomFloats(rng, s.n_tokens * s.cols);
    // One guard float past the end: the masked tails must not write it.
    const size_t n_out = static_cast<size_t>(s.rows * s.n_tokens);
    std::vector<float> y1(n_out + 1, -7.0f), y2(n_out + 1, -8.0f),
        y3(n_out + 1, -9.0f);
    MatMulWithIsa(isa, type, w.data(), s.rows, s.cols, x.data(), s.n_tokens,
                  y1.data(), nullptr);
    MatMulWithIsa(isa, type, w.data(), s.rows, s.cols, x.data(), s.n_tokens,
                  y2.data(), &two);
    MatMulWithIsa(isa, type, w.data(), s.rows, s.cols, x.data(), s.n_tokens,
                  y3.data(), &three);
    EXPECT_EQ(y1[n_out], -7.0f);
    EXPECT_EQ(y2[n_out], -8.0f);
    EXPECT_EQ(y3[n_out], -9.0f);
    y1.pop_back();
    y2.pop_back();
    y3.pop_back();
    EXPECT_TRUE(y1 == y2) << "1 vs 2 threads";
    EXPECT_TRUE(y1 == y3) << "1 vs 3 threads";
    ExpectTiledOutputs(type, w, s.rows, s.cols, x, s.n_tokens, y1);
  }
}

// The kernels of every instruction set compute the same integer sums and
// do the same float operations on them (matmul_internal.h,
// matmul_repack_avx512.cc), so they agree bit for bit: tiled kernels,
// one-token kernels and row-dot loops alike.
TEST(TiledMatMulIsaTest, InstructionSetsAgreeExactly) {
  const std::vector<CpuIsa> isas = AvailableIsas();
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    for (int64_t rows : {45, 48}) {
      for (int64_t n_tokens : {1, 11}) {
        std::mt19937 rng(static_cast<unsigned>(type) + rows);
        const int64_t cols = 1536;
        const std::vector<uint8_t> w = RandomMatrix(rng, type, rows, cols);
        const std::vector<float> x = RandomFloats(rng, n_tokens * cols);
        std::vector<float> first;
        for (CpuIsa isa : isas) {
          if (isa < CpuIsa::kAvx2) continue;
          std::vector<float> y(static_cast<size_t>(rows * n_tokens));
          MatMulWithIsa(isa, type, w.data(), rows, cols, x.data(), n_tokens,
                        y.data(), nullptr);
          if (first.empty()) {
            first = y;
          } else {
            EXPECT_TRUE(y == first) << TypeName(type) << " " << IsaName(isa)
                                    << " " << rows << " rows, " << n_tokens
                                    << " tokens";
          }
        }
      }
    }
  }
}

// A batch through a matrix with a BatchTiledFn gives RowDotFn's per-output
// order bit for bit (for the float types tinyBLAS's, which it takes where
// rows % 4 == 0 and rows are whole 512-bit steps; for Q4_K, Q5_K and Q6_K
// ggml_vec_dot's): from the tiled AVX-512 kernel and from the row-dot loop
// alike, whatever the thread count and however the tokens fall into tiles.
// The cases cover row counts that leave 4-row and 16-row blocks partial,
// and token counts that leave a partial token tile.
TEST(BatchTiledTest, GivesRowDotOrder) {
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16,
                        GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    for (int64_t rows : {4, 36, 52}) {
      for (int64_t n_tokens : {2, 7, 13}) {
        std::mt19937 rng(static_cast<unsigned>(type) * 101 + rows + n_tokens);
        const int64_t cols = BlockSize(type) == kQkK ? 512 : 320;
        const std::vector<uint8_t> w = RandomMatrix(rng, type, rows, cols);
        const std::vector<float> x = RandomFloats(rng, n_tokens * cols);
        for (CpuIsa isa : AvailableIsas()) {
          if (isa < CpuIsa::kAvx2) continue;
          const VecDotFn dot = RowDotFn(type, isa, rows, cols, n_tokens);
          for (int threads : {1, 3}) {
            ThreadPool pool(threads);
            std::vector<float> y(static_cast<size_t>(rows * n_tokens));
            MatMulWithIsa(isa, type, w.data(), rows, cols, x.data(), n_tokens,
                          y.data(), &pool);
            for (int64_t t = 0; t < n_tokens; ++t) {
              const std::vector<uint8_t> xq = Quantized(
                  type, std::vector<float>(x.begin() + t * cols,
                                           x.begin() + (t + 1) * cols));
              for (int64_t r = 0; r < rows; ++r) {
                ASSERT_EQ(y[t * rows + r],
                          dot(w.data() + r * Bytes(type, cols), xq.data(), cols))
                    << TypeName(type) << " " << IsaName(isa) << " " << threads
                    << " threads, " << rows << " rows, token " << t
                    << " of " << n_tokens << ", row " << r;
              }
            }
          }
        }
      }
    }
  }
  // The dot product itself is tinyBLAS's, not ggml_vec_dot's.
  EXPECT_NE(RowDotFn(GgmlType::kF32, CpuIsa::kAvx2, 4, 320, 2),
            GetVecDotFn(GgmlType::kF32, CpuIsa::kAvx2));
  EXPECT_EQ(GetBatchTiledKernel(GgmlType::kF32, CpuIsa::kAvx512, 6, 320), nullptr);
  EXPECT_EQ(GetBatchTiledKernel(GgmlType::kBF16, CpuIsa::kAvx512, 4, 48), nullptr);
}

// A Q4_0 matrix with rows % 8 == 0 follows llama.cpp's repacked order
// exactly, for one token and for a batch, whatever the thread count.
TEST(RepackedQ4_0Test, FollowsLlamaCppOrder) {
  if (ActiveIsa() < CpuIsa::kAvx2) GTEST_SKIP() << "the scalar path";
  struct Shape {
    int64_t rows, cols, n_tokens;
  };
  const Shape shapes[] = {{8, 32, 1},    {8, 32, 2},    {16, 96, 3},
                          {40, 512, 1},  {40, 512, 7},  {64, 2048, 5},
                          {48, 160, 17}, {200, 64, 4}};
  std::mt19937 rng(21);
  ThreadPool three(3);
  for (const Shape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << s.rows << " x " << s.cols << ", "
                                      << s.n_tokens << " tokens");
    const std::vector<uint8_t> w =
        RandomMatrix(rng, GgmlType::kQ4_0, s.rows, s.cols);
    const std::vector<float> x = RandomFloats(rng, s.n_tokens * s.cols);
    const size_t n_out = static_cast<size_t>(s.rows * s.n_tokens);
    std::vector<float> y1(n_out), y3(n_out);
    MatMul(GgmlType::kQ4_0, w.data(), s.rows, s.cols, x.data(), s.n_tokens,
           y1.data(), nullptr);
    MatMul(GgmlType::kQ4_0, w.data(), s.rows, s.cols, x.data(), s.n_tokens,
           y3.data(), &three);
    EXPECT_TRUE(y1 == y3) << "1 vs 3 threads";
    ExpectTiledOutputs(GgmlType::kQ4_0, w, s.rows, s.cols, x, s.n_tokens, y1);
  }
}

// The largest products the formats allow: weight quants of -128 (which
// ggml's quantizer never writes but a file may hold) and 127, against
// activations at full scale. The integer sums must not saturate.
void ExpectExtremeQuantsExact(CpuIsa isa, GgmlType type, int64_t rows) {
  const int64_t cols = 256, n_tokens = 3;
  std::vector<uint8_t> w(Bytes(type, cols) * rows);
  const int64_t nb = cols / kQk32;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      if (type == GgmlType::kQ8_0) {
        auto* block = reinterpret_cast<BlockQ8_0*>(w.data()) + r * nb + b;
        block->d = Fp32ToFp16(1.0f);
        for (int j = 0; j < kQk32; ++j) {
          block->qs[j] = static_cast<int8_t>((r + j) % 3 == 0 ? 127 : -128);
        }
      } else {
        auto* block = reinterpret_cast<BlockQ4_0*>(w.data()) + r * nb + b;
        block->d = Fp32ToFp16(1.0f);
        for (int j = 0; j < kQk32 / 2; ++j) {
          block->qs[j] = static_cast<uint8_t>((r + j) % 3 == 0 ? 0xF0 : 0x0F);
        }
      }
    }
  }
  std::vector<float> x(static_cast<size_t>(n_tokens * cols));
  // Activations of +-127 quantize to +-127 with scale 1, so every product
  // and sum is an integer below 2^24.
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 5 < 2) ? -127.0f : 127.0f;
  std::vector<float> y(static_cast<size_t>(rows * n_tokens));
  MatMulWithIsa(isa, type, w.data(), rows, cols, x.data(), n_tokens, y.data(),
                nullptr);
  ExpectTiledOutputs(type, w, rows, cols, x, n_tokens, y, /*exact=*/true);
}

TEST_P(TiledMatMulTest, ExtremeQuantsAreExact) {
  const auto [isa, type] = GetParam();
  if (GetTiledKernel(type, isa, /*rows=*/1).matmul == nullptr) GTEST_SKIP();
  for (int64_t rows : {18, 16}) {  // 16: the repacked Q4_0 order
    ExpectExtremeQuantsExact(isa, type, rows);
  }
}

// The SIMD activation quantizers write exactly what QuantizeActivations
// does, in the Q8Batch layout: random rows, all-zero blocks, ties and both
// signs of full scale, into both halves of a pair.
TEST_P(TiledMatMulTest, QuantizerMatchesReference) {
  const auto [isa, type] = GetParam();
  const TiledKernel kernel = GetTiledKernel(type, isa, /*rows=*/1);
  if (kernel.quantize == nullptr) GTEST_SKIP();
  std::mt19937 rng(11);
  const int64_t nb = 64;
  std::vector<float> x = RandomFloats(rng, 2 * nb * kQk32);
  for (int j = 0; j < kQk32; ++j) {
    x[kQk32 + j] = 0.0f;                          // block 1: zero
    x[2 * kQk32 + j] = (j % 8) * 0.5f - 1.75f;    // block 2: ties
    x[3 * kQk32 + j] = j == 5 ? -1e-3f : 1e-30f;  // block 3: tiny
    x[4 * kQk32 + j] = j % 2 ? 127.0f : -127.0f;  // block 4: full
  }
  x[2 * kQk32] = 127.0f / 2;  // scale 0.5: the others land on halves
  struct alignas(64) PairBlock {
    uint8_t bytes[kQ8PairBlockBytes];
  };
  std::vector<PairBlock> ref(nb), got(nb);
  for (int half = 0; half < 2; ++half) {
    const float* row = x.data() + half * nb * kQk32;
    QuantizeQ8Row(row, nb, ref[0].bytes, half);
    kernel.quantize(row, nb, got[0].bytes, half);
  }
  for (int64_t b = 0; b < nb; ++b) {
    ASSERT_EQ(
        std::vector<uint8_t>(got[b].bytes, got[b].bytes + kQ8PairBlockBytes),
        std::vector<uint8_t>(ref[b].bytes, ref[b].bytes + kQ8PairBlockBytes))
        << "block " << b;
  }
  // And the reference is QuantizeActivations, rearranged.
  const std::vector<uint8_t> q =
      Quantized(type, std::vector<float>(x.begin(), x.begin() + nb * kQk32));
  const auto* blocks = reinterpret_cast<const BlockQ8_0*>(q.data());
  for (int64_t b = 0; b < nb; ++b) {
    EXPECT_EQ(std::vector<int8_t>(blocks[b].qs, blocks[b].qs + kQk32),
              std::vector<int8_t>(ref[b].bytes, ref[b].bytes + kQk32));
    float d;
    std::memcpy(&d, ref[b].bytes + 128, sizeof(d));
    EXPECT_EQ(d, Fp16ToFp32(blocks[b].d));
    int32_t bias;
    std::memcpy(&bias, ref[b].bytes + 64 + 4, sizeof(bias));
    EXPECT_EQ(bias, -128 * (blocks[b].qs[4] + blocks[b].qs[5] +
                            blocks[b].qs[6] + blocks[b].qs[7]));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Isas, TiledMatMulTest,
    ::testing::Combine(::testing::ValuesIn(AvailableIsas()),
                       ::testing::Values(GgmlType::kQ8_0, GgmlType::kQ4_0)),
    [](const auto& info) {
      return std::string(IsaName(std::get<0>(info.param))) + "_" +
             TypeName(std::get<1>(info.param));
    });

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
