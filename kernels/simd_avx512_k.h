// AVX-512 building blocks of the super-block (K-quant) kernels:
// vec_dot_avx512_k.cc's dot products and matmul_k_avx512.cc's tiles.
//
// Include this header only inside a LAYERPOOL_BEGIN_AVX512 region
// (target.h), after simd_avx2.h, simd_avx512.h and simd_k.h (same reasons
// as there).
#ifndef LAYERPOOL_KERNELS_SIMD_AVX512_K_H_
#define LAYERPOOL_KERNELS_SIMD_AVX512_K_H_

#include <immintrin.h>

#include <cstdint>

#include "kernels/activation_blocks.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels::avx512 {
namespace {

// Shuffle masks for PickInt16PerLane: with mask m, 128-bit lane k of the
// result broadcasts int16 element kPick[m][k] of that lane of the source.
// Built at compile time.
constexpr uint8_t kPick[6][4] = {
    {0, 0, 1, 1}, {2, 2, 3, 3}, {4, 4, 5, 5}, {6, 6, 7, 7},  // Q4_K pairs
    {0, 1, 2, 3}, {4, 5, 6, 7},                              // Q6_K quads
};

struct PickMasks {
  alignas(64) uint8_t bytes[6][64];
};

constexpr PickMasks MakePickMasks() {
  PickMasks masks{};
  for (int m = 0; m < 6; ++m) {
    for (int i = 0; i < 64; ++i) {
      masks.bytes[m][i] = static_cast<uint8_t>(2 * kPick[m][i / 16] + (i & 1));
    }
  }
  return masks;
}

constexpr PickMasks kPickMasks = MakePickMasks();

inline __m512i PickInt16PerLane(__m512i v, int m) {
  return _mm512_shuffle_epi8(v, _mm512_load_si512(kPickMasks.bytes[m]));
}

// The two 256-bit halves' int32 lanes added: ggml's eight lanes.
inline __m256i FoldHalves(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v),
                          _mm512_extracti64x4_epi64(v, 1));
}

// A Q4_K super-block unpacked for vpdpwssd. Per 64 weights j: the 4-bit
// levels, sub-block 2j in the low 256-bit half and 2j + 1 in the high one,
// and those sub-blocks' scales as int16, one per 128-bit lane as the pair
// sums need them; plus the packed scales and mins and the two half-float
// scales.
struct UnpackedQ4K {
  __m512i q[4];
  __m512i scales[4];
  __m128i scales_mins;
  float d, dmin;
};

inline UnpackedQ4K UnpackQ4K(const BlockQ4_K& b) {
  UnpackedQ4K u;
  u.d = HalfToFloat(b.d);
  u.dmin = HalfToFloat(b.dmin);
  u.scales_mins = UnpackScalesMinsK4(b.scales);
  const __m512i scales =
      _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(u.scales_mins));
  // Shifts that put the low nibbles of 32 bytes in the low half of a
  // register and their high nibbles in the high half.
  const __m512i nibble_shift = Join(_mm256_set1_epi16(0), _mm256_set1_epi16(4));
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i bits = _mm512_broadcast_i64x4(Load256(b.qs + 32 * j));
    u.q[j] = _mm512_and_si512(_mm512_srlv_epi16(bits, nibble_shift),
                              _mm512_set1_epi8(0x0F));
    u.scales[j] = PickInt16PerLane(scales, j);
  }
  return u;
}

// One super-block of a Q4_K row times one of Q8_K activations, added to the
// dot product's accumulators in ggml's order: the minimum terms into
// acc_min's four lanes, the exact integer lanes by one fma into acc's eight.
inline void AccumulateQ4K(const UnpackedQ4K& w, const BlockQ8_K& x,
                          __m256& acc, __m128& acc_min) {
  const float d = x.d * w.d;
  const float dmin = x.d * w.dmin;
  acc_min = _mm_fmadd_ps(_mm_set1_ps(-dmin),
                         _mm_cvtepi32_ps(MinLanesK4(w.scales_mins, x.bsums)),
                         acc_min);
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i p16 = _mm512_maddubs_epi16(w.q[j], Load512(x.qs + 64 * j));
    sumi = _mm512_dpwssd_epi32(sumi, w.scales[j], p16);
  }
  acc = FmaLanes(d, FoldHalves(sumi), acc);
}

// A Q5_K super-block unpacked: as Q4_K, the levels with their fifth bit
// (bit k of byte l of qh is that of weight 32k + l).
struct UnpackedQ5K {
  __m512i q[4];
  __m512i scales[4];
  __m128i scales_mins;
  float d, dmin;
};

inline UnpackedQ5K UnpackQ5K(const BlockQ5_K& b) {
  UnpackedQ5K u;
  u.d = HalfToFloat(b.d);
  u.dmin = HalfToFloat(b.dmin);
  u.scales_mins = UnpackScalesMinsK4(b.scales);
  const __m512i scales =
      _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(u.scales_mins));
  const __m512i nibble_shift = Join(_mm256_set1_epi16(0), _mm256_set1_epi16(4));
  const __m512i hbits = _mm512_broadcast_i64x4(Load256(b.qh));
  const __m512i one = _mm512_set1_epi8(1);
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i bits = _mm512_broadcast_i64x4(Load256(b.qs + 32 * j));
    // Bit 2j of qh for the low half, 2j + 1 for the high half, to bit 4.
    // The 16-bit shift carries bits across bytes, but the mask keeps only
    // each byte's own bit.
    const __m512i fifth = _mm512_slli_epi16(
        _mm512_and_si512(
            _mm512_srlv_epi16(hbits, Join(_mm256_set1_epi16(2 * j),
                                          _mm256_set1_epi16(2 * j + 1))),
            one),
        4);
    u.q[j] = _mm512_or_si512(
        _mm512_and_si512(_mm512_srlv_epi16(bits, nibble_shift),
                         _mm512_set1_epi8(0x0F)),
        fifth);
    u.scales[j] = PickInt16PerLane(scales, j);
  }
  return u;
}

// One super-block of a Q5_K row times one of Q8_K activations, in ggml's
// order: the four minimum lanes summed exactly and fused into the scalar
// `summs` (lane 0), the integer lanes by one fma into acc's eight.
inline void AccumulateQ5K(const UnpackedQ5K& w, const BlockQ8_K& x,
                          __m256& acc, __m128& summs) {
  const float d = x.d * w.d;
  const float dmin = x.d * w.dmin;
  summs = FmaIntSum4(-dmin, MinLanesK4(w.scales_mins, x.bsums), summs);
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i p16 = _mm512_maddubs_epi16(w.q[j], Load512(x.qs + 64 * j));
    sumi = _mm512_dpwssd_epi32(sumi, w.scales[j], p16);
  }
  acc = FmaLanes(d, FoldHalves(sumi), acc);
}

// A Q6_K super-block unpacked: per half h (128 weights) its 6-bit levels,
// q[2h] for weights 0..63 and q[2h + 1] for 64..127, and the scales of the
// 16-weight sub-blocks that each 128-bit lane of those covers.
struct UnpackedQ6K {
  __m512i q[4];
  __m512i scales[4];
  float d;
};

inline UnpackedQ6K UnpackQ6K(const BlockQ6_K& b) {
  UnpackedQ6K u;
  u.d = HalfToFloat(b.d);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(3);
  // Per-256-bit-half shifts of the qh bits: weights 32k + l take bits
  // 2k..2k+1 of qh[l]; one register holds k = 0, 1 and the other k = 2, 3.
  const __m512i shift01 = Join(_mm256_set1_epi16(0), _mm256_set1_epi16(2));
  const __m512i shift23 = Join(_mm256_set1_epi16(4), _mm256_set1_epi16(6));
  const __m256i scales16 = _mm256_cvtepi8_epi16(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m128i sc = h == 0 ? _mm256_castsi256_si128(scales16)
                              : _mm256_extracti128_si256(scales16, 1);
    const __m512i sc4 = _mm512_broadcast_i32x4(sc);
    const __m512i hbits = _mm512_broadcast_i64x4(Load256(b.qh + 32 * h));
    const __m512i low = Load512(b.ql + 64 * h);
    // Weights 0..63 of the half: low nibbles + bits (0, 2) of qh;
    // weights 64..127: high nibbles + bits (4, 6).
    u.q[2 * h] = _mm512_or_si512(
        _mm512_and_si512(low, m4),
        _mm512_slli_epi16(
            _mm512_and_si512(_mm512_srlv_epi16(hbits, shift01), m2), 4));
    u.q[2 * h + 1] = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi16(low, 4), m4),
        _mm512_slli_epi16(
            _mm512_and_si512(_mm512_srlv_epi16(hbits, shift23), m2), 4));
    u.scales[2 * h] = PickInt16PerLane(sc4, 4);
    u.scales[2 * h + 1] = PickInt16PerLane(sc4, 5);
  }
  return u;
}

// One super-block of a Q6_K row times one of Q8_K activations, added to the
// dot product's eight lanes in ggml's order.
inline void AccumulateQ6K(const UnpackedQ6K& w, const BlockQ8_K& x,
                          __m256& acc) {
  const float d = x.d * w.d;
  const __m512i m32 = _mm512_set1_epi8(32);
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i y = Load512(x.qs + 64 * j);
    // Pair sums of (q - 32) * y, per weight as in ggml, exact in 16 bits.
    const __m512i p16 = _mm512_sub_epi16(_mm512_maddubs_epi16(w.q[j], y),
                                         _mm512_maddubs_epi16(m32, y));
    // Each 128-bit lane of products covers one 16-weight sub-block.
    sumi = _mm512_dpwssd_epi32(sumi, w.scales[j], p16);
  }
  acc = FmaLanes(d, FoldHalves(sumi), acc);
}

}  // namespace
}  // namespace layerpool::kernels::avx512

#endif  // LAYERPOOL_KERNELS_SIMD_AVX512_K_H_
