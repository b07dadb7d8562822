// AVX-512 (F, BW, DQ, VL, VNNI) dot products of the Q8_0-activation formats
// that dominate real models (Q8_0, Q4_0); the super-block formats are in
// vec_dot_avx512_k.cc. See vec_dot_avx2.cc for the conventions.
//
// F32 and F16 keep their AVX2 kernels: they are bound by memory bandwidth,
// and a 512-bit F32 kernel streaming from DRAM measured about 40% slower
// (15 vs 25 GB/s on one thread) than the 256-bit one on the AMD EPYC
// development machine.
//
// What the wider registers buy: the signed int8 products go through VNNI's
// vpdpbusd, which sums four u8 x s8 products into int32 in one instruction.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"


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

namespace layerpool::kernels::avx512 {
namespace {

inline __m512 JoinScales(float lo, float hi) {
  return _mm512_insertf32x8(_mm512_set1_ps(lo), _mm256_set1_ps(hi), 1);
}

// Signed int8 x signed int8 added into int32 lanes (four products each).
// vpdpbusd wants an unsigned left operand: use |x| and move x's sign onto y
// (AVX-512 has no vpsignb; a masked negate does it). Exact for |x| <= 128,
// |y| <= 127.
inline __m512i DotI8(__m512i acc, __m512i x, __m512i y) {
  const __mmask64 negative = _mm512_movepi8_mask(x);
  const __m512i signed_y =
      _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
  return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(x), signed_y);
}

// Two 32-weight blocks per register; `weights` holds their signed levels.
inline __m512 TwoBlocks(__m512 acc, __m512i weights, float dw0, float dw1,
                        const BlockQ8_0* y) {
  const __m512i act = Join(Load256(y[0].qs), Load256(y[1].qs));
  const __m512i sums = DotI8(_mm512_setzero_si512(), weights, act);
  const __m512 d =
      JoinScales(dw0 * HalfToFloat(y[0].d), dw1 * HalfToFloat(y[1].d));
  return _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sums), acc);
}

}  // namespace

float DotQ8_0(const void* w, const void* x, int64_t n) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQk32;
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc = TwoBlocks(acc, Join(Load256(wb[i].qs), Load256(wb[i + 1].qs)),
                    HalfToFloat(wb[i].d), HalfToFloat(wb[i + 1].d), xb + i);
  }
  float sum = _mm512_reduce_add_ps(acc);
  for (; i < nb; ++i) {  // an odd last block, scalar
    int isum = 0;
    for (int j = 0; j < kQk32; ++j) isum += wb[i].qs[j] * xb[i].qs[j];
    sum += isum * (HalfToFloat(wb[i].d) * HalfToFloat(xb[i].d));
  }
  return sum;
}

float DotQ4_0(const void* w, const void* x, int64_t n) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const int64_t nb = n / kQk32;
  const __m512i eight = _mm512_set1_epi8(8);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m512i q = _mm512_sub_epi8(
        Join(Nibbles32(wb[i].qs), Nibbles32(wb[i + 1].qs)), eight);
    acc = TwoBlocks(acc, q, HalfToFloat(wb[i].d), HalfToFloat(wb[i + 1].d),
                    xb + i);
  }
  float sum = _mm512_reduce_add_ps(acc);
  for (; i < nb; ++i) {
    int isum = 0;
    for (int j = 0; j < kQk32 / 2; ++j) {
      isum += ((wb[i].qs[j] & 0x0F) - 8) * xb[i].qs[j];
      isum += ((wb[i].qs[j] >> 4) - 8) * xb[i].qs[j + kQk32 / 2];
    }
    sum += isum * HalfToFloat(wb[i].d) * HalfToFloat(xb[i].d);
  }
  return sum;
}

}  // namespace layerpool::kernels::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
