// AVX-512 (F, BW, DQ, VL, VNNI) dot products of the Q8_0-activation formats
// that dominate real models (Q8_0, Q4_0); the super-block formats are in
// vec_dot_avx512_k.cc. See vec_dot_avx2.cc for the conventions.
//
// F32 and F16 keep their AVX2 kernels: they are bound by memory bandwidth,
// and a 512-bit F32 kernel streaming from DRAM measured about 40% slower
// (15 vs 25 GB/s on one thread) than the 256-bit one on the AMD EPYC
// development machine.
//
// What the wider registers buy: the integer work. Two blocks share a zmm,
// and VNNI's vpdpbusd sums four u8 x s8 products into int32 in one
// instruction. The float work stays ggml's (vec_dot_avx2.cc): each block's
// eight lane sums, converted, go into one 8-lane accumulator with an FMA,
// block after block, so the results equal the AVX2 kernels' bit for bit.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/target.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"


LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx2.h"    // inside the target region, on purpose
#include "kernels/simd_avx512.h"  // likewise

namespace layerpool::kernels::avx512 {
namespace {

// Signed int8 x signed int8 added into int32 lanes (four products each).
// vpdpbusd wants an unsigned left operand: use |x| and move x's sign onto y
// (AVX-512 has no vpsignb; a masked negate does it). Exact for |x| <= 128,
// |y| <= 127.
inline __m512i DotI8(__m512i x, __m512i y) {
  const __mmask64 negative = _mm512_movepi8_mask(x);
  const __m512i signed_y =
      _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
  return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(x),
                             signed_y);
}

// The same for one block in a ymm.
inline __m256i DotI8(__m256i x, __m256i y) {
  const __mmask32 negative = _mm256_movepi8_mask(x);
  const __m256i signed_y =
      _mm256_mask_sub_epi8(y, negative, _mm256_setzero_si256(), y);
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x),
                             signed_y);
}

// acc[l] = fma(fl(dw * dx), p[l], acc[l]) for one block's lane sums p.
inline __m256 AddBlock(__m256 acc, __m256 p, float dw, const BlockQ8_0& y) {
  return _mm256_fmadd_ps(_mm256_set1_ps(dw * HalfToFloat(y.d)), p, acc);
}

// Blocks i and i + 1, whose signed levels fill `weights`, in block order.
inline __m256 AddTwoBlocks(__m256 acc, __m512i weights, float dw0, float dw1,
                           const BlockQ8_0* y) {
  const __m512 p = _mm512_cvtepi32_ps(
      DotI8(weights, Join(Load256(y[0].qs), Load256(y[1].qs))));
  acc = AddBlock(acc, _mm512_castps512_ps256(p), dw0, y[0]);
  return AddBlock(acc, _mm512_extractf32x8_ps(p, 1), dw1, y[1]);
}

// The 8-lane sums of a last, odd block.
inline __m256 AddOneBlock(__m256 acc, __m256i weights, float dw,
                          const BlockQ8_0& y) {
  const __m256 p = _mm256_cvtepi32_ps(DotI8(weights, Load256(y.qs)));
  return AddBlock(acc, p, dw, y);
}

}  // namespace

float DotQ8_0(const void* w, const void* x, int64_t n) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQk32;
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc = AddTwoBlocks(acc, Join(Load256(wb[i].qs), Load256(wb[i + 1].qs)),
                       HalfToFloat(wb[i].d), HalfToFloat(wb[i + 1].d), xb + i);
  }
  if (i < nb) {
    acc = AddOneBlock(acc, Load256(wb[i].qs), HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

float DotQ4_0(const void* w, const void* x, int64_t n) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQk32;
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i q = _mm512_sub_epi8(
        Join(Nibbles32(wb[i].qs), Nibbles32(wb[i + 1].qs)),
        _mm512_set1_epi8(8));
    acc = AddTwoBlocks(acc, q, HalfToFloat(wb[i].d), HalfToFloat(wb[i + 1].d),
                       xb + i);
  }
  if (i < nb) {
    acc = AddOneBlock(acc, _mm256_sub_epi8(Nibbles32(wb[i].qs), eight),
                      HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
