// The SIMD dot products against ggml's float order, bit for bit: the plain
// C++ below writes out what ggml-cpu's x86 (AVX-512 build) ggml_vec_dot_*
// and llamafile's tinyBLAS compute for each output (vec_dot_avx2.cc and
// matmul.cc's RowDotFn say which runs when), and every SIMD kernel must
// give the same float exactly, on rows with and without tails.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/activation_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/test_util.h"
#include "kernels/vec_dot.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels {
namespace {

using testing::Quantized;
using testing::RandomFloats;
using testing::RandomRow;
using testing::TypeName;

// ---------------------------------------------------------------- levels

// The 32 integer levels of block b of a weight row (signed for the _0
// types and IQ4_NL, unsigned for the _1 types), and its d (and m).
struct Levels {
  int q[32];
  float d, m;
};

int Nibble(const uint8_t* qs, int j) {
  return j < 16 ? qs[j] & 0x0F : qs[j - 16] >> 4;
}

int HighBit(const uint8_t* qh, int j) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  return static_cast<int>((bits >> j) & 1u) << 4;
}

Levels BlockLevels(GgmlType type, const uint8_t* row, int64_t b) {
  Levels l{};
  switch (type) {
    case GgmlType::kQ8_0: {
      const auto& x = reinterpret_cast<const BlockQ8_0*>(row)[b];
      for (int j = 0; j < 32; ++j) l.q[j] = x.qs[j];
      l.d = Fp16ToFp32(x.d);
      break;
    }
    case GgmlType::kQ4_0: {
      const auto& x = reinterpret_cast<const BlockQ4_0*>(row)[b];
      for (int j = 0; j < 32; ++j) l.q[j] = Nibble(x.qs, j) - 8;
      l.d = Fp16ToFp32(x.d);
      break;
    }
    case GgmlType::kQ5_0: {
      const auto& x = reinterpret_cast<const BlockQ5_0*>(row)[b];
      for (int j = 0; j < 32; ++j) {
        l.q[j] = (Nibble(x.qs, j) | HighBit(x.qh, j)) - 16;
      }
      l.d = Fp16ToFp32(x.d);
      break;
    }
    case GgmlType::kQ4_1: {
      const auto& x = reinterpret_cast<const BlockQ4_1*>(row)[b];
      for (int j = 0; j < 32; ++j) l.q[j] = Nibble(x.qs, j);
      l.d = Fp16ToFp32(x.d);
      l.m = Fp16ToFp32(x.m);
      break;
    }
    case GgmlType::kQ5_1: {
      const auto& x = reinterpret_cast<const BlockQ5_1*>(row)[b];
      for (int j = 0; j < 32; ++j) l.q[j] = Nibble(x.qs, j) | HighBit(x.qh, j);
      l.d = Fp16ToFp32(x.d);
      l.m = Fp16ToFp32(x.m);
      break;
    }
    case GgmlType::kIQ4_NL: {
      const auto& x = reinterpret_cast<const BlockIQ4_NL*>(row)[b];
      for (int j = 0; j < 32; ++j) l.q[j] = kIq4NlValues[Nibble(x.qs, j)];
      l.d = Fp16ToFp32(x.d);
      break;
    }
    default:
      ADD_FAILURE() << "no levels for " << TypeName(type);
  }
  return l;
}

// Lane k's exact integer sum: levels 4k..4k+3 times the activations'.
int Lane(const Levels& w, const int8_t* x, int k) {
  int p = 0;
  for (int j = 4 * k; j < 4 * k + 4; ++j) p += w.q[j] * x[j];
  return p;
}

// ggml's hsum_float_8.
float Hsum8(const float* a) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// GCC's _mm512_reduce_add_ps: halves added lane by lane down to one.
float ReduceAdd16(const float* v) {
  float h[8];
  for (int k = 0; k < 8; ++k) h[k] = v[k + 8] + v[k];
  return Hsum8(h);
}

// ------------------------------------------------------ quantized formats

// One block's lanes into acc[8]: acc[l] = fma(fl(dw * dx), p[l], acc[l]).
void AddLanes(const Levels& w, const int8_t* xq, float dx, float* acc) {
  const float d = w.d * dx;
  for (int k = 0; k < 8; ++k) {
    acc[k] = std::fma(d, static_cast<float>(Lane(w, xq, k)), acc[k]);
  }
}

// ggml_vec_dot_{q4_0,q5_0,q8_0}_q8_0 (AVX2 branch), and tinyBLAS_Q0_AVX
// for any of them including IQ4_NL: one 8-lane accumulator.
float EightLanes(GgmlType type, const uint8_t* w, const uint8_t* xq,
                 int64_t n) {
  const auto* x = reinterpret_cast<const BlockQ8_0*>(xq);
  float acc[8] = {};
  for (int64_t b = 0; b < n / 32; ++b) {
    AddLanes(BlockLevels(type, w, b), x[b].qs, Fp16ToFp32(x[b].d), acc);
  }
  return Hsum8(acc);
}

// ggml_vec_dot_{q4_1,q5_1}_q8_1: the lanes, and m * s in a float.
float EightLanesWithOffsets(GgmlType type, const uint8_t* w,
                            const uint8_t* xq, int64_t n) {
  const auto* x = reinterpret_cast<const BlockQ8_1*>(xq);
  float acc[8] = {};
  float offsets = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    const Levels l = BlockLevels(type, w, b);
    AddLanes(l, x[b].qs, Fp16ToFp32(x[b].d), acc);
    offsets += l.m * Fp16ToFp32(x[b].s);
  }
  return Hsum8(acc) + offsets;
}

// ggml_vec_dot_iq4_nl_q8_0: even and odd blocks in two accumulators; an
// odd last block fused into the sum.
float Iq4NlOneToken(const uint8_t* w, const uint8_t* xq, int64_t n) {
  const auto* x = reinterpret_cast<const BlockQ8_0*>(xq);
  const int64_t nb = n / 32;
  float even[8] = {}, odd[8] = {};
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    AddLanes(BlockLevels(GgmlType::kIQ4_NL, w, b), x[b].qs,
             Fp16ToFp32(x[b].d), even);
    AddLanes(BlockLevels(GgmlType::kIQ4_NL, w, b + 1), x[b + 1].qs,
             Fp16ToFp32(x[b + 1].d), odd);
  }
  float both[8];
  for (int k = 0; k < 8; ++k) both[k] = even[k] + odd[k];
  float sum = Hsum8(both);
  if (b < nb) {
    const Levels l = BlockLevels(GgmlType::kIQ4_NL, w, b);
    int isum = 0;
    for (int k = 0; k < 8; ++k) isum += Lane(l, x[b].qs, k);
    sum = std::fma(Fp16ToFp32(x[b].d) * l.d, static_cast<float>(isum), sum);
  }
  return sum;
}

// ------------------------------------------------------------ float types

float Element(GgmlType type, const void* p, int64_t i) {
  switch (type) {
    case GgmlType::kF32:
      return static_cast<const float*>(p)[i];
    case GgmlType::kF16:
      return Fp16ToFp32(static_cast<const uint16_t*>(p)[i]);
    default:
      return Bf16ToFp32(static_cast<const uint16_t*>(p)[i]);
  }
}

// ggml_vec_dot_f32 / _f16: 64-element steps into four 16-lane
// accumulators, reduced ((0 + 2) + (1 + 3)) and then across lanes; the tail
// in a float (F32, each product fused into it) or a double (F16).
float FloatOneToken(GgmlType type, const void* w, const void* x, int64_t n) {
  const int64_t np = n & ~int64_t{63};
  float acc[4][16] = {};
  for (int64_t i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 16; ++l) {
        const int64_t e = i + 16 * j + l;
        acc[j][l] =
            std::fma(Element(type, w, e), Element(type, x, e), acc[j][l]);
      }
    }
  }
  float r[16];
  for (int l = 0; l < 16; ++l) {
    r[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
  }
  if (type == GgmlType::kF32) {
    float sum = ReduceAdd16(r);
    for (int64_t i = np; i < n; ++i) {
      sum = std::fma(Element(type, w, i), Element(type, x, i), sum);
    }
    return sum;
  }
  double sum = ReduceAdd16(r);
  for (int64_t i = np; i < n; ++i) {
    sum += Element(type, w, i) * Element(type, x, i);
  }
  return static_cast<float>(sum);
}

// vdpbf16ps on 32 elements from e0: lane l adds pair l's odd product, then
// its even one.
void DotBf16Pairs(const void* w, const void* x, int64_t e0, float* lanes) {
  for (int l = 0; l < 16; ++l) {
    for (int64_t e : {e0 + 2 * l + 1, e0 + 2 * l}) {
      lanes[l] = std::fma(Element(GgmlType::kBF16, w, e),
                          Element(GgmlType::kBF16, x, e), lanes[l]);
    }
  }
}

// ggml_vec_dot_bf16 (AVX512-BF16 branch): 64-element steps into two
// accumulators, each reduced into a double; the tail in the double.
float Bf16OneToken(const void* w, const void* x, int64_t n) {
  float c1[16] = {}, c2[16] = {};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    DotBf16Pairs(w, x, i, c1);
    DotBf16Pairs(w, x, i + 32, c2);
  }
  double sum = 0;
  sum += ReduceAdd16(c1);
  sum += ReduceAdd16(c2);
  for (; i < n; ++i) {
    sum += Element(GgmlType::kBF16, w, i) * Element(GgmlType::kBF16, x, i);
  }
  return static_cast<float>(sum);
}

// tinyBLAS (AVX-512) for the float types: one 16-lane accumulator.
float FloatBatch(GgmlType type, const void* w, const void* x, int64_t n) {
  float lanes[16] = {};
  if (type == GgmlType::kBF16) {
    for (int64_t i = 0; i < n; i += 32) DotBf16Pairs(w, x, i, lanes);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      lanes[i % 16] =
          std::fma(Element(type, w, i), Element(type, x, i), lanes[i % 16]);
    }
  }
  return ReduceAdd16(lanes);
}

// ------------------------------------------------------------------ tests

float OneTokenOrder(GgmlType type, const uint8_t* w, const uint8_t* xq,
                    int64_t n) {
  switch (type) {
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
      return EightLanesWithOffsets(type, w, xq, n);
    case GgmlType::kIQ4_NL:
      return Iq4NlOneToken(w, xq, n);
    case GgmlType::kF32:
    case GgmlType::kF16:
      return FloatOneToken(type, w, xq, n);
    case GgmlType::kBF16:
      return Bf16OneToken(w, xq, n);
    default:
      return EightLanes(type, w, xq, n);
  }
}

const GgmlType kTypes[] = {GgmlType::kQ4_0, GgmlType::kQ4_1,
                           GgmlType::kQ5_0, GgmlType::kQ5_1,
                           GgmlType::kQ8_0, GgmlType::kIQ4_NL,
                           GgmlType::kF32,  GgmlType::kF16,
                           GgmlType::kBF16};

std::vector<int64_t> Lengths(GgmlType type) {
  if (testing::BlockSize(type) == 1) return {16, 64, 96, 256, 300, 4096 + 40};
  return {32, 64, 96, 2048, 4096 + 32};  // odd block counts: IQ4_NL's tail
}

TEST(VecDotOrderTest, OneTokenMatchesGgml) {
  for (CpuIsa isa : testing::AvailableIsas()) {
    if (isa < CpuIsa::kAvx2) continue;
    for (GgmlType type : kTypes) {
      std::mt19937 rng(17 + static_cast<int>(type));
      for (int64_t n : Lengths(type)) {
        for (int trial = 0; trial < 5; ++trial) {
          const std::vector<uint8_t> w = RandomRow(rng, type, n);
          const std::vector<uint8_t> xq =
              Quantized(type, RandomFloats(rng, n));
          ASSERT_EQ(GetVecDotFn(type, isa)(w.data(), xq.data(), n),
                    OneTokenOrder(type, w.data(), xq.data(), n))
              << TypeName(type) << " " << IsaName(isa) << " n=" << n;
        }
      }
    }
  }
}

TEST(VecDotOrderTest, BatchMatchesTinyBlas) {
  if (ActiveIsa() < CpuIsa::kAvx2) GTEST_SKIP() << "the scalar path";
  for (GgmlType type : {GgmlType::kIQ4_NL, GgmlType::kF32, GgmlType::kF16,
                        GgmlType::kBF16, GgmlType::kQ8_0, GgmlType::kQ5_0}) {
    std::mt19937 rng(29 + static_cast<int>(type));
    for (int64_t n : {64, 512, 2048 + 32}) {
      const std::vector<uint8_t> w = RandomRow(rng, type, n);
      const std::vector<uint8_t> xq = Quantized(type, RandomFloats(rng, n));
      // 8 rows: tinyBLAS takes the float types in tiles of 4 rows.
      const VecDotFn dot = RowDotFn(type, ActiveIsa(), 8, n, /*n_tokens=*/2);
      const float want =
          testing::BlockSize(type) == 1
              ? FloatBatch(type, w.data(), xq.data(), n)
              : EightLanes(type, w.data(), xq.data(), n);
      ASSERT_EQ(dot(w.data(), xq.data(), n), want)
          << TypeName(type) << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace layerpool::kernels
