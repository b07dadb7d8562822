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
#include <cstring>

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

// A super-block unpacked for vpdpwssd: four registers of 64 levels each,
// with per-128-bit-lane int16 scales for their pair sums, and the
// super-block's float scales (Q4_K/Q5_K: d, dmin and the packed scales and
// mins; Q6_K: d only).
//  - Q4_K/Q5_K: register j holds sub-block 2j in its low 256-bit half and
//    2j + 1 in the high one (each 128-bit lane with its sub-block's scale).
//  - Q6_K: registers 2h and 2h + 1 hold weights 0..63 and 64..127 of half
//    h, each 128-bit lane one 16-weight sub-block.
struct UnpackedK {
  __m512i q[4];
  __m512i scales[4];
  __m128i scales_mins;
  __m128 d_dmin;  // lanes 0 and 1 (Q6_K: d, 0)
};

// The super-block scales d and dmin (two adjacent halves) as float lanes 0
// and 1, converted together.
inline __m128 LoadScalePair(const uint16_t* d_dmin) {
  uint32_t both;
  std::memcpy(&both, d_dmin, sizeof(both));
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(both)));
}

// A token's scale times lanes 0 and 1 of a super-block's d_dmin, each
// broadcast: the products x.d * d and x.d * dmin that ggml forms as scalars
// (the same roundings).
struct ScaleProducts {
  __m256 d;
  __m128 dmin;
};
inline ScaleProducts MulScales(float xd, __m128 d_dmin) {
  const __m128 p = _mm_mul_ps(_mm_set1_ps(xd), d_dmin);
  return {_mm256_broadcastss_ps(p), _mm_permute_ps(p, _MM_SHUFFLE(1, 1, 1, 1))};
}

// The integer lanes of one super-block against Q8_K activations: per
// register, pair sums by vpmaddubsw, scaled and accumulated by vpdpwssd;
// then the two 256-bit halves added (ggml's eight lanes). Q6_K's levels are
// offset by 32, which is taken off per pair sum as ggml does.
template <bool kOffset32>
inline __m256i IntegerLanes(const UnpackedK& w, const BlockQ8_K& x) {
  __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i y = Load512(x.qs + 64 * j);
    __m512i p16 = _mm512_maddubs_epi16(w.q[j], y);
    if (kOffset32) {
      // (q - 32) * y per weight, exact in 16 bits.
      p16 = _mm512_sub_epi16(p16, _mm512_maddubs_epi16(_mm512_set1_epi8(32), y));
    }
    sumi = _mm512_dpwssd_epi32(sumi, w.scales[j], p16);
  }
  return FoldHalves(sumi);
}

// Q4_K/Q5_K's levels (with the fifth bits when qh is given: bit k of byte
// l of qh is that of weight 32k + l) and scales.
inline UnpackedK UnpackK4(const uint8_t* packed_scales, const uint16_t* d_dmin,
                          const uint8_t* qs, const uint8_t* qh) {
  UnpackedK u;
  u.d_dmin = LoadScalePair(d_dmin);
  u.scales_mins = UnpackScalesMinsK4(packed_scales);
  const __m512i scales =
      _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(u.scales_mins));
  // Shifts that put the low nibbles of 32 bytes in the low half of a
  // register and their high nibbles in the high half.
  const __m512i nibble_shift = Join(_mm256_set1_epi16(0), _mm256_set1_epi16(4));
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i bits = _mm512_broadcast_i64x4(Load256(qs + 32 * j));
    u.q[j] = _mm512_and_si512(_mm512_srlv_epi16(bits, nibble_shift),
                              _mm512_set1_epi8(0x0F));
    if (qh != nullptr) {
      // Bit 2j of qh for the low half, 2j + 1 for the high half, to bit 4.
      // The 16-bit shift carries bits across bytes, but the mask keeps only
      // each byte's own bit.
      const __m512i shift =
          Join(_mm256_set1_epi16(2 * j), _mm256_set1_epi16(2 * j + 1));
      const __m512i fifth = _mm512_and_si512(
          _mm512_srlv_epi16(_mm512_broadcast_i64x4(Load256(qh)), shift),
          _mm512_set1_epi8(1));
      u.q[j] = _mm512_or_si512(u.q[j], _mm512_slli_epi16(fifth, 4));
    }
    u.scales[j] = PickInt16PerLane(scales, j);
  }
  return u;
}

// The formats, for the dot products (vec_dot_avx512_k.cc) and the tiles
// (matmul_k_avx512.cc). Each accumulates one super-block into an output's
// eight lanes `acc` and its minimum accumulator `mins`, in ggml's order,
// and Result gives the output from them. `sums` is SubBlockSumsK of the
// token's super-block (computed once per token by kernels that run many
// rows; Q6_K has no minimum terms and ignores it).
struct Q4KFormat {
  static constexpr bool kHasMins = true;
  using Block = BlockQ4_K;
  static UnpackedK Unpack(const Block& b) {
    return UnpackK4(b.scales, &b.d, b.qs, nullptr);
  }
  // The minimum terms go into four float lanes: fma(-dmin, m, mins), which
  // fnmadd computes with the same rounding.
  static void Accumulate(const UnpackedK& w, const BlockQ8_K& x, __m128i sums,
                         __m256& acc, __m128& mins) {
    const ScaleProducts s = MulScales(x.d, w.d_dmin);
    mins = _mm_fnmadd_ps(
        s.dmin, _mm_cvtepi32_ps(MinLanesK4(w.scales_mins, sums)), mins);
    acc = _mm256_fmadd_ps(s.d, _mm256_cvtepi32_ps(IntegerLanes<false>(w, x)),
                          acc);
  }
  static float Result(__m256 acc, __m128 mins) {
    return HorizontalSum(acc) + HorizontalSum4(mins);
  }
};

struct Q5KFormat {
  static constexpr bool kHasMins = true;
  using Block = BlockQ5_K;
  static UnpackedK Unpack(const Block& b) {
    return UnpackK4(b.scales, &b.d, b.qs, b.qh);
  }
  // The four minimum lanes are summed exactly and fused into one float
  // (lane 0 of mins): fma(-dmin, m, mins) by fnmadd, the same rounding.
  static void Accumulate(const UnpackedK& w, const BlockQ8_K& x, __m128i sums,
                         __m256& acc, __m128& mins) {
    const ScaleProducts s = MulScales(x.d, w.d_dmin);
    mins = _mm_fnmadd_ss(
        s.dmin, _mm_cvtepi32_ps(IntSum4(MinLanesK4(w.scales_mins, sums))),
        mins);
    acc = _mm256_fmadd_ps(s.d, _mm256_cvtepi32_ps(IntegerLanes<false>(w, x)),
                          acc);
  }
  static float Result(__m256 acc, __m128 mins) {
    return HorizontalSum(acc) + _mm_cvtss_f32(mins);
  }
};

struct Q6KFormat {
  static constexpr bool kHasMins = false;
  using Block = BlockQ6_K;
  static UnpackedK Unpack(const Block& b) {
    UnpackedK u;
    u.d_dmin = _mm_set_ss(HalfToFloat(b.d));
    u.scales_mins = _mm_setzero_si128();
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
  static void Accumulate(const UnpackedK& w, const BlockQ8_K& x,
                         __m128i /*sums*/, __m256& acc, __m128& /*mins*/) {
    acc = FmaLanes(x.d * _mm_cvtss_f32(w.d_dmin), IntegerLanes<true>(w, x),
                   acc);
  }
  static float Result(__m256 acc, __m128 /*mins*/) {
    return HorizontalSum(acc);
  }
};

}  // namespace
}  // namespace layerpool::kernels::avx512

#endif  // LAYERPOOL_KERNELS_SIMD_AVX512_K_H_
