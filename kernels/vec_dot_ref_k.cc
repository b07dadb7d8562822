// Scalar reference dot products for the 256-weight super-block formats (the
// K-quants and IQ4_XS) against Q8_K activations, in the float order of
// llama.cpp's x86 build, which is what the logits are compared with.
//
// Each function unpacks a super-block into its integer levels q[0..256) in
// natural weight order and its per-sub-block integer scales (and minimums).
// The integer part is exact; what the order below fixes is how it becomes a
// float. ggml's AVX2 kernels (ggml_vec_dot_*_q8_K in ggml-cpu-quants.c, early
// 2025; an AVX-512 build runs the same code, as these functions have no
// AVX-512 branch) keep a super-block's sum in the eight int32 lanes of a
// register: every 32-byte load of weights meets the 32 activations at the
// same offsets and the multiply-adds sum products 4l..4l+3 into lane l, so
//   lane[l] = sum over weights i with (i % 32) / 4 == l
//             of scale(i) * q(i) * y(i),
// the per-weight offsets (Q3_K's -4, Q6_K's -32) included. Then per
// super-block, in block order, with d = x.d * y.d:
//   acc[l] = fma(d, float(lane[l]), acc[l])                 (8 float lanes)
// and at the end hsum_float_8: ((acc0 + acc4) + (acc2 + acc6)) +
// ((acc1 + acc5) + (acc3 + acc7)). The minimum terms of Q2_K, Q4_K and Q5_K
// (-dmin * sum_s min[s] * bsum[s]) are added in a way of their own per type,
// described at each function. The SIMD kernels compute exactly this, so they
// agree with these functions bit for bit (vec_dot_k_test.cc).
//
// llama.cpp runs these same functions for one token and for a batch: its
// llamafile sgemm has no case for these types (and declines n < 2 anyway),
// and at that commit nothing repacks them on x86 (Q4_K's 8x8 repacking for
// AVX2 came in March 2025). So MatMul's batch path, a VecDot per output,
// follows llama.cpp's batch path too.

#include <array>
#include <cmath>
#include <cstdint>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels::ref {
namespace {

using Lanes = std::array<int32_t, 8>;

// lane[(i % 32) / 4] += scale[i / sub] * q[i] * y[i] over the super-block.
Lanes ScaledLaneSums(const int8_t* q, const int8_t* y, const int* scale,
                     int sub) {
  Lanes lanes{};
  for (int i = 0; i < kQkK; ++i) {
    lanes[(i % 32) / 4] += scale[i / sub] * q[i] * y[i];
  }
  return lanes;
}

// acc[l] = fma(d, lanes[l], acc[l]) for every lane, as _mm256_fmadd_ps does.
template <size_t kCount>
void FmaLanes(float d, const std::array<int32_t, kCount>& lanes,
              std::array<float, kCount>& acc) {
  for (size_t l = 0; l < kCount; ++l) {
    acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
  }
}

// ggml's hsum_float_8: high half plus low half, then pairs, then the last
// two.
float HorizontalSum(const std::array<float, 8>& a) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// The 4-lane version Q4_K ends its minimum accumulator with.
float HorizontalSum(const std::array<float, 4>& a) {
  return (a[0] + a[2]) + (a[1] + a[3]);
}

// Q4_K and Q5_K minimum terms in four lanes, as ggml's _mm_madd_epi16 of
// the mins with the 32-weight activation sums: lane m holds sub-blocks 2m and
// 2m + 1.
std::array<int32_t, 4> MinLanesK4(const int* min, const int16_t* bsums) {
  std::array<int32_t, 4> lanes{};
  for (int s = 0; s < 8; ++s) {
    lanes[s / 2] += min[s] * (bsums[2 * s] + bsums[2 * s + 1]);
  }
  return lanes;
}

// Weight 128 * half + 32 * j + l of the Q2_K/Q3_K layout lives in bits
// 2j..2j+1 of qs[32 * half + l].
int Low2Bits(const uint8_t* qs, int i) {
  const int half = i / 128, j = (i % 128) / 32, l = i % 32;
  return (qs[32 * half + l] >> (2 * j)) & 3;
}

// Scale and min (6 bits each) of sub-block j (0..7) of Q4_K/Q5_K.
void ScaleMinK4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The 4-bit part of weight i of Q4_K/Q5_K: pairs of sub-blocks share 32
// bytes, low nibbles for the first, high for the second.
int Nibble64(const uint8_t* qs, int i) {
  const int pair = i / 64, l = i % 32;
  return (i % 64) < 32 ? qs[32 * pair + l] & 0xF : qs[32 * pair + l] >> 4;
}

}  // namespace

// x = d * sc * q - dmin * m, q in 0..3, 16 sub-blocks of 16. The minimum
// term goes into the same accumulator, first: lane l gets min[2l] * bsum[2l]
// + min[2l + 1] * bsum[2l + 1] times -dmin, then the block's scaled sums.
float DotQ2_K(const void* w, const void* x, int64_t n) {
  const BlockQ2_K* wb = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  std::array<float, 8> acc{};
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[16], min[16];
    for (int l = 0; l < kQkK; ++l)
      q[l] = static_cast<int8_t>(Low2Bits(wb[i].qs, l));
    for (int s = 0; s < 16; ++s) {
      scale[s] = wb[i].scales[s] & 0xF;
      min[s] = wb[i].scales[s] >> 4;
    }
    Lanes min_lanes{};
    for (int s = 0; s < 16; ++s) min_lanes[s / 2] += min[s] * xb[i].bsums[s];
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    const float dmin = xb[i].d * Fp16ToFp32(wb[i].dmin);
    FmaLanes(-dmin, min_lanes, acc);
    FmaLanes(d, ScaledLaneSums(q, xb[i].qs, scale, 16), acc);
  }
  return HorizontalSum(acc);
}

// x = d * (sc - 32) * q, q = low two bits - (high bit ? 0 : 4).
float DotQ3_K(const void* w, const void* x, int64_t n) {
  const BlockQ3_K* wb = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  std::array<float, 8> acc{};
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[16];
    for (int l = 0; l < kQkK; ++l) {
      const bool high = (wb[i].hmask[l % 32] >> (l / 32)) & 1;
      q[l] = static_cast<int8_t>(Low2Bits(wb[i].qs, l) - (high ? 0 : 4));
    }
    for (int s = 0; s < 16; ++s) {
      const int low = s < 8 ? wb[i].scales[s] & 0xF : wb[i].scales[s - 8] >> 4;
      const int top = (wb[i].scales[8 + s % 4] >> (2 * (s / 4))) & 3;
      scale[s] = (low | (top << 4)) - 32;
    }
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    FmaLanes(d, ScaledLaneSums(q, xb[i].qs, scale, 16), acc);
  }
  return HorizontalSum(acc);
}

// x = d * sc * q - dmin * m, q in 0..15, 8 sub-blocks of 32. The minimum
// terms have an accumulator of their own, of four lanes (MinLanesK4), summed
// on its own and added last.
float DotQ4_K(const void* w, const void* x, int64_t n) {
  const BlockQ4_K* wb = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  std::array<float, 8> acc{};
  std::array<float, 4> acc_min{};
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[8], min[8];
    for (int l = 0; l < kQkK; ++l)
      q[l] = static_cast<int8_t>(Nibble64(wb[i].qs, l));
    for (int s = 0; s < 8; ++s) ScaleMinK4(s, wb[i].scales, &scale[s], &min[s]);
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    const float dmin = xb[i].d * Fp16ToFp32(wb[i].dmin);
    FmaLanes(-dmin, MinLanesK4(min, xb[i].bsums), acc_min);
    FmaLanes(d, ScaledLaneSums(q, xb[i].qs, scale, 32), acc);
  }
  return HorizontalSum(acc) + HorizontalSum(acc_min);
}

// As Q4_K with a fifth bit: bit 4 of weight 32k + l is bit k of qh[l]. Here
// ggml sums the minimum terms of a block in integers and keeps a scalar
// float, summs = fma(-dmin, sum, summs): its C source says
// `summs += dmin * sum`, which the compiler fuses (GCC's default
// -ffp-contract=fast for GNU C, which ggml's CMake build uses).
float DotQ5_K(const void* w, const void* x, int64_t n) {
  const BlockQ5_K* wb = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  std::array<float, 8> acc{};
  float summs = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[8], min[8];
    for (int l = 0; l < kQkK; ++l) {
      const int high = (wb[i].qh[l % 32] >> (l / 32)) & 1;
      q[l] = static_cast<int8_t>(Nibble64(wb[i].qs, l) | (high << 4));
    }
    for (int s = 0; s < 8; ++s) ScaleMinK4(s, wb[i].scales, &scale[s], &min[s]);
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    const float dmin = xb[i].d * Fp16ToFp32(wb[i].dmin);
    const std::array<int32_t, 4> min_lanes = MinLanesK4(min, xb[i].bsums);
    const int32_t min_sum =
        min_lanes[0] + min_lanes[1] + min_lanes[2] + min_lanes[3];
    summs = std::fma(-dmin, static_cast<float>(min_sum), summs);
    FmaLanes(d, ScaledLaneSums(q, xb[i].qs, scale, 32), acc);
  }
  return HorizontalSum(acc) + summs;
}

// x = d * sc * (q - 32), q in 0..63, 16 sub-blocks of 16 with int8 scales.
float DotQ6_K(const void* w, const void* x, int64_t n) {
  const BlockQ6_K* wb = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  std::array<float, 8> acc{};
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[16];
    for (int l = 0; l < kQkK; ++l) {
      // Within a 128-weight half: ql[r] holds weights r (low nibble) and
      // r + 64 (high) for r < 64, where r = l % 64 picks the byte, and qh
      // holds the top two bits of weights r, r+32, r+64, r+96 (r < 32).
      const int half = l / 128, k = l % 128;
      const uint8_t* ql = wb[i].ql + 64 * half;
      const uint8_t* qh = wb[i].qh + 32 * half;
      const int low = k < 64 ? ql[k] & 0xF : ql[k - 64] >> 4;
      const int top = (qh[k % 32] >> (2 * (k / 32))) & 3;
      q[l] = static_cast<int8_t>((low | (top << 4)) - 32);
    }
    for (int s = 0; s < 16; ++s) scale[s] = wb[i].scales[s];
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    FmaLanes(d, ScaledLaneSums(q, xb[i].qs, scale, 16), acc);
  }
  return HorizontalSum(acc);
}

// x = d * (ls - 32) * kIq4NlValues[q], 8 sub-blocks of 32.
float DotIQ4_XS(const void* w, const void* x, int64_t n) {
  const BlockIQ4_XS* wb = static_cast<const BlockIQ4_XS*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  std::array<float, 8> acc{};
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[8];
    for (int s = 0; s < 8; ++s) {
      const uint8_t* qs = wb[i].qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        q[32 * s + j] = kIq4NlValues[qs[j] & 0xF];
        q[32 * s + j + 16] = kIq4NlValues[qs[j] >> 4];
      }
      const int ls = ((wb[i].scales_l[s / 2] >> (4 * (s % 2))) & 0xF) |
                     (((wb[i].scales_h >> (2 * s)) & 3) << 4);
      scale[s] = ls - 32;
    }
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    FmaLanes(d, ScaledLaneSums(q, xb[i].qs, scale, 32), acc);
  }
  return HorizontalSum(acc);
}

}  // namespace layerpool::kernels::ref
