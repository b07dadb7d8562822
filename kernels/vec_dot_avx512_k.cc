// AVX-512 (F, BW, DQ, VL, VNNI) dot products of the super-block formats
// Q4_K and Q6_K with Q8_K activations, in ggml's float order like
// vec_dot_avx2_k.cc (and so equal to the scalar references bit for bit).
//
// What the wider registers buy: a super-block is processed in half the
// instructions (a pair of 32-weight sub-blocks, or 64 Q6_K weights, per
// register). The order stays ggml's because each 256-bit half of a 512-bit
// register holds one 32-weight load, with lane l of the half collecting the
// products of weights (i % 32) / 4 == l just as ggml's 256-bit lanes do; the
// two halves are added in integers (exact) before the one fma per
// super-block, which is therefore ggml's 8-lane fma. Q6_K's -32 offset is
// applied per weight, as in vec_dot_avx2_k.cc; VNNI's vpdpwssd multiplies
// the int16 pair sums by their scales and accumulates in one instruction,
// which wins back most of what that costs.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels::avx512 {
namespace {

// Shuffle masks for PickInt16PerLane: with mask m, 128-bit lane k of the
// result broadcasts int16 element kPick[m][k] of that lane of the source.
// Built at compile time, outside the target region below.
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

}  // namespace
}  // namespace layerpool::kernels::avx512

#pragma GCC push_options
#pragma GCC target( \
    "avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")
// GCC 12's avx512fintrin.h builds its "undefined" vectors by self-
// initialisation, which -Wuninitialized reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "kernels/simd_avx2.h"    // inside the target region, on purpose
#include "kernels/simd_avx512.h"  // likewise
#include "kernels/simd_k.h"       // likewise

namespace layerpool::kernels::avx512 {
namespace {

inline __m512i PickInt16PerLane(__m512i v, int m) {
  return _mm512_shuffle_epi8(v, _mm512_load_si512(kPickMasks.bytes[m]));
}

// The two 256-bit halves' int32 lanes added: ggml's eight lanes.
inline __m256i FoldHalves(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v),
                          _mm512_extracti64x4_epi64(v, 1));
}

}  // namespace

float DotQ4_K(const void* w, const void* x, int64_t n) {
  const BlockQ4_K* wb = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  // Shifts that put the low nibbles of 32 bytes in the low half of a
  // register and their high nibbles in the high half.
  const __m512i nibble_shift = Join(_mm256_set1_epi16(0), _mm256_set1_epi16(4));
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    const float dmin = xb[i].d * HalfToFloat(wb[i].dmin);
    const __m128i scales_mins = UnpackScalesMinsK4(wb[i].scales);
    acc_min = _mm_fmadd_ps(
        _mm_set1_ps(-dmin),
        _mm_cvtepi32_ps(MinLanesK4(scales_mins, xb[i].bsums)), acc_min);
    // The eight scales as int16, in all four 128-bit lanes.
    const __m512i scales =
        _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(scales_mins));
    const uint8_t* q4 = wb[i].qs;
    const int8_t* q8 = xb[i].qs;
    __m512i sumi = _mm512_setzero_si512();
    // Per 64 weights: sub-block 2j in the low nibbles, 2j + 1 in the high
    // ones; their activations are the next 64 bytes.
    for (int j = 0; j < kQkK / 64; ++j, q4 += 32, q8 += 64) {
      const __m512i bits = _mm512_broadcast_i64x4(Load256(q4));
      const __m512i q =
          _mm512_and_si512(_mm512_srlv_epi16(bits, nibble_shift), m4);
      const __m512i p16 = _mm512_maddubs_epi16(q, Load512(q8));
      sumi = _mm512_dpwssd_epi32(sumi, PickInt16PerLane(scales, j), p16);
    }
    acc = FmaLanes(d, FoldHalves(sumi), acc);
  }
  return HorizontalSum(acc) + HorizontalSum4(acc_min);
}

float DotQ6_K(const void* w, const void* x, int64_t n) {
  const BlockQ6_K* wb = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m2 = _mm512_set1_epi8(3);
  const __m512i m32 = _mm512_set1_epi8(32);
  // Per-256-bit-half shifts of the qh bits: weights 32k + l take bits
  // 2k..2k+1 of qh[l]; one register holds k = 0, 1 and the other k = 2, 3.
  const __m512i shift01 = Join(_mm256_set1_epi16(0), _mm256_set1_epi16(2));
  const __m512i shift23 = Join(_mm256_set1_epi16(4), _mm256_set1_epi16(6));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    const __m256i scales16 = _mm256_cvtepi8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[i].scales)));
    const uint8_t* ql = wb[i].ql;
    const uint8_t* qh = wb[i].qh;
    const int8_t* q8 = xb[i].qs;
    __m512i sumi = _mm512_setzero_si512();
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, q8 += 128) {
      const __m128i sc = half == 0 ? _mm256_castsi256_si128(scales16)
                                   : _mm256_extracti128_si256(scales16, 1);
      const __m512i sc4 = _mm512_broadcast_i32x4(sc);
      const __m512i hbits = _mm512_broadcast_i64x4(Load256(qh));
      const __m512i low = Load512(ql);  // ql[0..63]
      // Weights 0..63 of the half: low nibbles + bits (0, 2) of qh;
      // weights 64..127: high nibbles + bits (4, 6).
      const __m512i q_a = _mm512_or_si512(
          _mm512_and_si512(low, m4),
          _mm512_slli_epi16(
              _mm512_and_si512(_mm512_srlv_epi16(hbits, shift01), m2), 4));
      const __m512i q_b = _mm512_or_si512(
          _mm512_and_si512(_mm512_srli_epi16(low, 4), m4),
          _mm512_slli_epi16(
              _mm512_and_si512(_mm512_srlv_epi16(hbits, shift23), m2), 4));
      const __m512i y_a = Load512(q8);
      const __m512i y_b = Load512(q8 + 64);
      // Pair sums of (q - 32) * y, per weight as in ggml, exact in 16 bits.
      const __m512i p16_a = _mm512_sub_epi16(_mm512_maddubs_epi16(q_a, y_a),
                                             _mm512_maddubs_epi16(m32, y_a));
      const __m512i p16_b = _mm512_sub_epi16(_mm512_maddubs_epi16(q_b, y_b),
                                             _mm512_maddubs_epi16(m32, y_b));
      // Each 128-bit lane of products covers one 16-weight sub-block.
      sumi = _mm512_dpwssd_epi32(sumi, PickInt16PerLane(sc4, 4), p16_a);
      sumi = _mm512_dpwssd_epi32(sumi, PickInt16PerLane(sc4, 5), p16_b);
    }
    acc = FmaLanes(d, FoldHalves(sumi), acc);
  }
  return HorizontalSum(acc);
}

}  // namespace layerpool::kernels::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
