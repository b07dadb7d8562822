// AVX2 (+FMA, F16C) dot products of the 256-weight super-block formats with
// Q8_K activations, in the float order of llama.cpp's x86 build (described
// in vec_dot_ref_k.cc), so they equal the scalar references bit for bit.
//
// What that order asks of the code: each super-block's integer sum must end
// up in eight int32 lanes exactly as ggml's kernels put it there (lane l: the
// products of weights i with (i % 32) / 4 == l, each 32-byte load of weights
// meeting the activations at the same offsets), with Q3_K's -4 and Q6_K's
// -32 offsets applied per weight, not through the activations' bsums (which
// would sum the same integers into other lanes). The lanes become floats
// with one fma per super-block; the minimum terms of Q2_K, Q4_K and Q5_K are
// accumulated the way each of ggml's functions does it.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/target.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX2

#include "kernels/simd_avx2.h"  // inside the target region, on purpose
#include "kernels/simd_k.h"     // likewise

namespace layerpool::kernels::avx2 {
namespace {

// The 16 scales of a Q3_K block as int8 (6-bit values minus 32). Word s/4
// of the result gathers sub-blocks 4w..4w+3: low nibbles from bytes 0..7
// (high nibbles for sub-blocks 8..15), top two bits from bytes 8..11 at
// bits 2w..2w+1. The twelve bytes are read as 8 + 4, not past the block.
inline __m128i UnpackScalesQ3K(const uint8_t* packed) {
  int32_t top;
  std::memcpy(&top, packed + 8, sizeof(top));
  const __m128i u = _mm_insert_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(packed)), top, 2);
  const __m128i low = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 0, 1, 0)),
                     _mm_setr_epi32(0, 0, 4, 4)),
      _mm_set1_epi8(0x0F));
  const __m128i high = _mm_slli_epi32(
      _mm_and_si128(
          _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 2, 2, 2)),
                         _mm_setr_epi32(0, 2, 4, 6)),
          _mm_set1_epi8(3)),
      4);
  return _mm_sub_epi8(_mm_or_si128(low, high), _mm_set1_epi8(32));
}

}  // namespace

// The minimum term shares the accumulator and comes first, as in ggml:
// lane l of madd(mins, bsums) holds sub-blocks 2l and 2l + 1.
float DotQ2_K(const void* w, const void* x, int64_t n) {
  const BlockQ2_K* wb = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    const float dmin = xb[i].d * HalfToFloat(wb[i].dmin);
    // Byte s of scales: scale of sub-block s (low nibble), min (high).
    const __m128i packed =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[i].scales));
    const __m256i scales = _mm256_cvtepu8_epi16(_mm_and_si128(packed, m4));
    const __m256i mins =
        _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
    acc = FmaLanes(-dmin, _mm256_madd_epi16(mins, Load256(xb[i].bsums)), acc);
    const int8_t* q8 = xb[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i sc2 = _mm256_broadcastsi128_si256(
          half == 0 ? _mm256_castsi256_si128(scales)
                    : _mm256_extracti128_si256(scales, 1));
      const __m256i bits = Load256(wb[i].qs + 32 * half);
      for (int k = 0; k < 4; ++k, q8 += 32) {
        // Weights 128 * half + 32k + l: bits 2k..2k+1 of qs[l]; sub-blocks
        // 8 * half + 2k (l < 16) and + 1.
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
        const __m256i p16 = _mm256_maddubs_epi16(q, Load256(q8));
        sumi = _mm256_add_epi32(
            sumi, _mm256_madd_epi16(BroadcastPairInt16(sc2, k), p16));
      }
    }
    acc = FmaLanes(d, sumi, acc);
  }
  return HorizontalSum(acc);
}

float DotQ3_K(const void* w, const void* x, int64_t n) {
  const BlockQ3_K* wb = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m256i m3 = _mm256_set1_epi8(3);
  const __m256i one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    const __m256i scales = _mm256_cvtepi8_epi16(UnpackScalesQ3K(wb[i].scales));
    const __m256i hmask = Load256(wb[i].hmask);
    const int8_t* q8 = xb[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i sc2 = _mm256_broadcastsi128_si256(
          half == 0 ? _mm256_castsi256_si128(scales)
                    : _mm256_extracti128_si256(scales, 1));
      const __m256i bits = Load256(wb[i].qs + 32 * half);
      for (int k = 0; k < 4; ++k, q8 += 32) {
        const __m256i low =
            _mm256_and_si256(_mm256_srli_epi16(bits, 2 * k), m3);
        // 4 where the high bit is clear: the level is low - 4 there. Both
        // parts meet the activations separately (maddubs wants unsigned
        // weights); their pair sums subtract exactly in 16 bits.
        const __m256i minus4 = _mm256_slli_epi16(
            _mm256_andnot_si256(_mm256_srli_epi16(hmask, 4 * half + k), one),
            2);
        const __m256i y = Load256(q8);
        const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(low, y),
                                             _mm256_maddubs_epi16(minus4, y));
        sumi = _mm256_add_epi32(
            sumi, _mm256_madd_epi16(BroadcastPairInt16(sc2, k), p16));
      }
    }
    acc = FmaLanes(d, sumi, acc);
  }
  return HorizontalSum(acc);
}

// The minimum terms go to a 4-lane accumulator of their own (MinLanesK4),
// summed separately and added last, as in ggml.
float DotQ4_K(const void* w, const void* x, int64_t n) {
  const BlockQ4_K* wb = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_min = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    const float dmin = xb[i].d * HalfToFloat(wb[i].dmin);
    const __m128i scales_mins = UnpackScalesMinsK4(wb[i].scales);
    acc_min = _mm_fmadd_ps(
        _mm_set1_ps(-dmin),
        _mm_cvtepi32_ps(MinLanesK4(scales_mins, xb[i].bsums)), acc_min);
    // The eight scales as int16, in both 128-bit lanes.
    const __m256i scales =
        _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales_mins));

    const uint8_t* q4 = wb[i].qs;
    const int8_t* q8 = xb[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < kQkK / 64; ++j, q4 += 32, q8 += 64) {
      const __m256i bits = Load256(q4);
      const __m256i lo = _mm256_and_si256(bits, m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
      const __m256i p_lo = _mm256_madd_epi16(
          BroadcastInt16(scales, 2 * j), _mm256_maddubs_epi16(lo, Load256(q8)));
      const __m256i p_hi =
          _mm256_madd_epi16(BroadcastInt16(scales, 2 * j + 1),
                            _mm256_maddubs_epi16(hi, Load256(q8 + 32)));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_lo, p_hi));
    }
    acc = FmaLanes(d, sumi, acc);
  }
  return HorizontalSum(acc) + HorizontalSum4(acc_min);
}

// The minimum terms of a block are summed in integers and added to one
// scalar float with a fused multiply-add (see DotQ5_K in vec_dot_ref_k.cc).
float DotQ5_K(const void* w, const void* x, int64_t n) {
  const BlockQ5_K* wb = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  __m256 acc = _mm256_setzero_ps();
  __m128 summs = _mm_setzero_ps();  // in lane 0
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    const float dmin = xb[i].d * HalfToFloat(wb[i].dmin);
    const __m128i scales_mins = UnpackScalesMinsK4(wb[i].scales);
    summs = FmaIntSum4(-dmin, MinLanesK4(scales_mins, xb[i].bsums), summs);
    // The eight scales as int16, in both 128-bit lanes.
    const __m256i scales =
        _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales_mins));

    // Bit k of byte l of qh is the fifth bit of weight 32k + l.
    const __m256i hbits = Load256(wb[i].qh);
    const uint8_t* q5 = wb[i].qs;
    const int8_t* q8 = xb[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < kQkK / 64; ++j, q5 += 32, q8 += 64) {
      const __m256i bits = Load256(q5);
      const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4),
                                         FifthBit(hbits, 2 * j, one));
      const __m256i hi =
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                          FifthBit(hbits, 2 * j + 1, one));
      const __m256i p_lo = _mm256_madd_epi16(
          BroadcastInt16(scales, 2 * j), _mm256_maddubs_epi16(lo, Load256(q8)));
      const __m256i p_hi =
          _mm256_madd_epi16(BroadcastInt16(scales, 2 * j + 1),
                            _mm256_maddubs_epi16(hi, Load256(q8 + 32)));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_lo, p_hi));
    }
    acc = FmaLanes(d, sumi, acc);
  }
  return HorizontalSum(acc) + _mm_cvtss_f32(summs);
}

float DotQ6_K(const void* w, const void* x, int64_t n) {
  const BlockQ6_K* wb = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m2 = _mm256_set1_epi8(3);
  const __m256i m32 = _mm256_set1_epi8(32);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    // The 16 int8 scales as int16, both halves of the block side by side.
    const __m256i scales = _mm256_cvtepi8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb[i].scales)));
    const __m128i sc_lo = _mm256_castsi256_si128(scales);       // scales 0..7
    const __m128i sc_hi = _mm256_extracti128_si256(scales, 1);  // 8..15
    const uint8_t* ql = wb[i].ql;
    const uint8_t* qh = wb[i].qh;
    const int8_t* q8 = xb[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, q8 += 128) {
      const __m128i sc = half == 0 ? sc_lo : sc_hi;
      const __m256i sc2 = _mm256_set_m128i(sc, sc);
      const __m256i hbits = Load256(qh);
      const __m256i bits1 = Load256(ql);       // weights 0..31 / 64..95
      const __m256i bits2 = Load256(ql + 32);  // weights 32..63 / 96..127
      // q for weights 32k + l (k = 0..3) of this half, in 0..63.
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(bits1, m4),
                          _mm256_slli_epi16(_mm256_and_si256(hbits, m2), 4)),
          _mm256_or_si256(
              _mm256_and_si256(bits2, m4),
              _mm256_slli_epi16(
                  _mm256_and_si256(_mm256_srli_epi16(hbits, 2), m2), 4)),
          _mm256_or_si256(
              _mm256_and_si256(_mm256_srli_epi16(bits1, 4), m4),
              _mm256_slli_epi16(
                  _mm256_and_si256(_mm256_srli_epi16(hbits, 4), m2), 4)),
          _mm256_or_si256(
              _mm256_and_si256(_mm256_srli_epi16(bits2, 4), m4),
              _mm256_slli_epi16(
                  _mm256_and_si256(_mm256_srli_epi16(hbits, 6), m2), 4)),
      };
      for (int k = 0; k < 4; ++k) {
        const __m256i y = Load256(q8 + 32 * k);
        // Pair sums of (q - 32) * y, exact in 16 bits (|q - 32| <= 32).
        const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y),
                                             _mm256_maddubs_epi16(m32, y));
        // Weights 32k..32k+15 use scale 2k of this half, the rest 2k + 1:
        // the low 128-bit lane holds the first 16 products' pair sums.
        const __m256i scale = BroadcastPairInt16(sc2, k);
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale, p16));
      }
    }
    acc = FmaLanes(d, sumi, acc);
  }
  return HorizontalSum(acc);
}

float DotIQ4_XS(const void* w, const void* x, int64_t n) {
  const BlockIQ4_XS* wb = static_cast<const BlockIQ4_XS*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  const __m256i table = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4NlValues)));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = xb[i].d * HalfToFloat(wb[i].d);
    __m256i sumi = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      const int ls = ((wb[i].scales_l[s / 2] >> (4 * (s % 2))) & 0xF) |
                     (((wb[i].scales_h >> (2 * s)) & 3) << 4);
      const __m256i q =
          _mm256_shuffle_epi8(table, Nibbles32(wb[i].qs + 16 * s));
      const __m256i y = Load256(xb[i].qs + 32 * s);
      // |q| <= 127: the sign trick's pair sums fit int16; then scale.
      const __m256i p16 =
          _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(y, q));
      sumi = _mm256_add_epi32(
          sumi, _mm256_madd_epi16(
                    p16, _mm256_set1_epi16(static_cast<int16_t>(ls - 32))));
    }
    acc = FmaLanes(d, sumi, acc);
  }
  return HorizontalSum(acc);
}

}  // namespace layerpool::kernels::avx2

LAYERPOOL_END_AVX2
