#include "kernels/vec_dot.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/activation_blocks.h"
#include "kernels/test_util.h"
#include "model/quant/blocks.h"
#include "model/quant/quantize.h"

namespace layerpool::kernels {
namespace {

using testing::AllWeightTypes;
using testing::AvailableIsas;
using testing::BlockSize;
using testing::Bytes;
using testing::DoubleDot;
using testing::Quantized;
using testing::RandomFloats;
using testing::RandomRow;
using testing::TypeName;

// Relative tolerances, against the sum of |w_i * x_i| (the scale of the
// rounding errors a float sum of those terms can make):
//  - a SIMD kernel vs the scalar reference: same integer block sums, float
//    additions in another order;
//  - the scalar reference vs the dequantize-and-dot-in-double oracle: block
//    scales multiplied in float instead of per element.
constexpr double kSimdTolerance = 1e-5;
constexpr double kOracleTolerance = 1e-5;

// Row lengths per type: several blocks, an odd count (the tails of unrolled
// loops) and, for the float types, lengths that are not multiples of 32.
std::vector<int64_t> Lengths(GgmlType type) {
  const int64_t b = BlockSize(type);
  if (b == 1) return {1, 31, 32, 257, 4096 + 5};
  if (b == kQk32) return {32, 96, 1024, 4096 + 32};
  return {256, 768, 4096};
}

// Q4_1 and Q5_1 add m * s per block where s = fp16(d * sum(q)) is stored in
// half precision, so they carry an extra error of up to |m * s| * 2^-11.
double OffsetTermError(GgmlType type, const std::vector<uint8_t>& w,
                       const std::vector<uint8_t>& xq, int64_t n) {
  if (type != GgmlType::kQ4_1 && type != GgmlType::kQ5_1) return 0;
  const auto* x = reinterpret_cast<const BlockQ8_1*>(xq.data());
  double err = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    // m sits right after d in both BlockQ4_1 and BlockQ5_1.
    uint16_t m;
    std::memcpy(&m, w.data() + i * (type == GgmlType::kQ4_1 ? 20 : 24) + 2, 2);
    err += std::fabs(Fp16ToFp32(m) * Fp16ToFp32(x[i].s)) * 0x1.0p-10;
  }
  return err;
}

class VecDotTest
    : public ::testing::TestWithParam<std::tuple<GgmlType, CpuIsa>> {};

// The instruction set's kernel agrees with the scalar reference.
TEST_P(VecDotTest, MatchesScalarReference) {
  const auto [type, isa] = GetParam();
  std::mt19937 rng(1234 + static_cast<int>(type));
  for (int64_t n : Lengths(type)) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<uint8_t> w = RandomRow(rng, type, n);
      const std::vector<uint8_t> xq = Quantized(type, RandomFloats(rng, n));
      const float ref =
          GetVecDotFn(type, CpuIsa::kScalar)(w.data(), xq.data(), n);
      const float got = GetVecDotFn(type, isa)(w.data(), xq.data(), n);
      const double scale = DoubleDot(type, w.data(), xq.data(), n).abs_sum;
      EXPECT_NEAR(got, ref, kSimdTolerance * scale + 1e-30)
          << TypeName(type) << " " << IsaName(isa) << " n=" << n;
    }
  }
}

// The scalar reference computes what the stored numbers mean: it agrees with
// dequantizing both sides and summing in double.
TEST_P(VecDotTest, ReferenceMatchesDequantizedDot) {
  const auto [type, isa] = GetParam();
  if (isa != CpuIsa::kScalar) GTEST_SKIP() << "checked once, for scalar";
  std::mt19937 rng(99 + static_cast<int>(type));
  for (int64_t n : Lengths(type)) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<uint8_t> w = RandomRow(rng, type, n);
      const std::vector<uint8_t> xq = Quantized(type, RandomFloats(rng, n));
      const float ref =
          GetVecDotFn(type, CpuIsa::kScalar)(w.data(), xq.data(), n);
      const testing::Oracle o = DoubleDot(type, w.data(), xq.data(), n);
      EXPECT_NEAR(ref, o.dot,
                  kOracleTolerance * o.abs_sum +
                      OffsetTermError(type, w, xq, n) + 1e-30)
          << TypeName(type) << " n=" << n;
    }
  }
}

// VecDot itself dispatches to one of the implementations.
TEST_P(VecDotTest, VecDotUsesActiveImplementation) {
  const auto [type, isa] = GetParam();
  if (isa != CpuIsa::kScalar) GTEST_SKIP() << "checked once";
  std::mt19937 rng(5);
  const int64_t n = 4 * kQkK;
  const std::vector<uint8_t> w = RandomRow(rng, type, n);
  const std::vector<uint8_t> xq = Quantized(type, RandomFloats(rng, n));
  EXPECT_EQ(VecDot(type, w.data(), xq.data(), n),
            GetVecDotFn(type, ActiveIsa())(w.data(), xq.data(), n));
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, VecDotTest,
    ::testing::Combine(::testing::ValuesIn(AllWeightTypes()),
                       ::testing::ValuesIn(AvailableIsas())),
    [](const auto& info) {
      return TypeName(std::get<0>(info.param)) + "_" +
             IsaName(std::get<1>(info.param));
    });

// LAYERPOOL_KERNELS=scalar forces the reference path, =avx2 caps it (ctest
// runs the kernels tests once more with it set).
TEST(ActiveIsaTest, FollowsEnvironment) {
  const char* env = std::getenv("LAYERPOOL_KERNELS");
  const std::string value = env != nullptr ? env : "";
  if (value == "scalar") {
    EXPECT_EQ(ActiveIsa(), CpuIsa::kScalar);
  } else if (value == "avx2") {
    EXPECT_EQ(ActiveIsa(), std::min(DetectedIsa(), CpuIsa::kAvx2));
  } else {
    EXPECT_EQ(ActiveIsa(), DetectedIsa());
  }
}

TEST(VecDotTypeTest, MatchesGgmlTable) {
  EXPECT_EQ(VecDotType(GgmlType::kQ4_0), GgmlType::kQ8_0);
  EXPECT_EQ(VecDotType(GgmlType::kQ5_0), GgmlType::kQ8_0);
  EXPECT_EQ(VecDotType(GgmlType::kQ8_0), GgmlType::kQ8_0);
  EXPECT_EQ(VecDotType(GgmlType::kIQ4_NL), GgmlType::kQ8_0);
  EXPECT_EQ(VecDotType(GgmlType::kQ4_1), GgmlType::kQ8_1);
  EXPECT_EQ(VecDotType(GgmlType::kQ5_1), GgmlType::kQ8_1);
  for (GgmlType t : {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K,
                     GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_XS}) {
    EXPECT_EQ(VecDotType(t), GgmlType::kQ8_K);
  }
  EXPECT_EQ(VecDotType(GgmlType::kF16), GgmlType::kF16);
  EXPECT_EQ(VecDotType(GgmlType::kBF16), GgmlType::kBF16);
  EXPECT_EQ(VecDotType(GgmlType::kF32), GgmlType::kF32);
  for (GgmlType t : AllWeightTypes()) EXPECT_TRUE(IsVecDotSupported(t));
  EXPECT_FALSE(IsVecDotSupported(GgmlType::kIQ2_XXS));
  EXPECT_FALSE(IsVecDotSupported(GgmlType::kQ8_K));
}

// ---------------------------------------------------------------- activations

// Q8_0 activations: same scale as the reference quantizer (QuantizeRow,
// ggml's quantize_row_q8_0_ref) bit for bit; quants equal except where the
// SIMD rounding (127/amax, ties to even) and the reference's (1/d, roundf)
// part, which is off by one at most and rare.
TEST(QuantizeActivationsTest, Q8_0AgreesWithReferenceQuantizer) {
  std::mt19937 rng(7);
  const int64_t n = 32 * 1024;
  const std::vector<float> x = RandomFloats(rng, n);
  std::vector<BlockQ8_0> ours(n / kQk32), ref(n / kQk32);
  QuantizeActivations(GgmlType::kQ8_0, x.data(), ours.data(), n);
  ASSERT_TRUE(QuantizeRow(GgmlType::kQ8_0, x.data(), ref.data(), n));
  int64_t differing = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    ASSERT_EQ(ours[i].d, ref[i].d) << "block " << i;
    for (int j = 0; j < kQk32; ++j) {
      ASSERT_LE(std::abs(ours[i].qs[j] - ref[i].qs[j]), 1);
      differing += ours[i].qs[j] != ref[i].qs[j];
    }
  }
  EXPECT_LT(differing, n / 1000);
}

// The SIMD quantizer rounds ties to even: with amax = 127 the multiplier is
// exactly 1, so 2.5 becomes 2 and -3.5 becomes -4 (roundf would give 3, -4).
TEST(QuantizeActivationsTest, Q8_0RoundsTiesToEven) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -3.5f;
  x[3] = 0.5f;
  BlockQ8_0 b;
  QuantizeActivations(GgmlType::kQ8_0, x.data(), &b, 32);
  EXPECT_EQ(Fp16ToFp32(b.d), 1.0f);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], -4);
  EXPECT_EQ(b.qs[3], 0);
}

TEST(QuantizeActivationsTest, Q8_1StoresScaledSum) {
  std::mt19937 rng(8);
  const int64_t n = 32 * 64;
  const std::vector<float> x = RandomFloats(rng, n);
  std::vector<BlockQ8_1> q1(n / kQk32);
  std::vector<BlockQ8_0> q0(n / kQk32);
  QuantizeActivations(GgmlType::kQ8_1, x.data(), q1.data(), n);
  QuantizeActivations(GgmlType::kQ8_0, x.data(), q0.data(), n);
  for (size_t i = 0; i < q1.size(); ++i) {
    ASSERT_EQ(q1[i].d, q0[i].d);
    ASSERT_EQ(std::memcmp(q1[i].qs, q0[i].qs, kQk32), 0);
    int sum = 0;
    for (int j = 0; j < kQk32; ++j) sum += q1[i].qs[j];
    float amax = 0;
    for (int j = 0; j < kQk32; ++j) {
      amax = std::max(amax, std::fabs(x[i * kQk32 + j]));
    }
    const float d = amax / 127.f;  // before its rounding to half
    EXPECT_EQ(q1[i].s, Fp32ToFp16(d * static_cast<float>(sum)));
  }
}

// Q8_K, written out once more from ggml's quantize_row_q8_K_ref: scale from
// the signed extreme, nearest_int, clamp at 127, bsums of 16.
TEST(QuantizeActivationsTest, Q8_KMatchesGgmlFormula) {
  std::mt19937 rng(9);
  const int64_t n = kQkK * 64;
  std::vector<float> x = RandomFloats(rng, n);
  std::fill(x.begin() + kQkK, x.begin() + 2 * kQkK, 0.0f);  // an all-zero block
  std::vector<BlockQ8_K> q(n / kQkK);
  QuantizeActivations(GgmlType::kQ8_K, x.data(), q.data(), n);
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float* xb = x.data() + i * kQkK;
    float amax = 0, max = 0;
    for (int j = 0; j < kQkK; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    if (amax == 0) {
      EXPECT_EQ(q[i].d, 0.0f);
      for (int j = 0; j < kQkK; ++j) EXPECT_EQ(q[i].qs[j], 0);
      for (int s = 0; s < 16; ++s) EXPECT_EQ(q[i].bsums[s], 0);
      continue;
    }
    const float iscale = -127.f / max;
    EXPECT_EQ(q[i].d, 1 / iscale);
    for (int j = 0; j < kQkK; ++j) {
      const float v = iscale * xb[j];
      const int expected = std::min(127, static_cast<int>(std::nearbyint(v)));
      ASSERT_EQ(q[i].qs[j], expected) << "block " << i << " element " << j;
    }
    for (int s = 0; s < 16; ++s) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += q[i].qs[16 * s + j];
      EXPECT_EQ(q[i].bsums[s], sum);
    }
  }
}

TEST(QuantizeActivationsTest, HalfTypesRoundToNearestEven) {
  std::mt19937 rng(10);
  const std::vector<float> x = RandomFloats(rng, 1000);
  std::vector<uint16_t> f16(1000), bf16(1000);
  std::vector<float> f32(1000);
  QuantizeActivations(GgmlType::kF16, x.data(), f16.data(), 1000);
  QuantizeActivations(GgmlType::kBF16, x.data(), bf16.data(), 1000);
  QuantizeActivations(GgmlType::kF32, x.data(), f32.data(), 1000);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(f16[i], Fp32ToFp16(x[i]));
    EXPECT_EQ(bf16[i], Fp32ToBf16(x[i]));
    EXPECT_EQ(f32[i], x[i]);
  }
}

}  // namespace
}  // namespace layerpool::kernels
