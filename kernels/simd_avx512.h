// Small AVX-512 building blocks shared by the kernels' *_avx512.cc files.
//
// Include this header only inside a LAYERPOOL_BEGIN_AVX512 region
// (target.h), as simd_avx2.h and for the same reason: the functions take
// the target of the region they are compiled in, and the unnamed namespace
// keeps each file's copies to itself.
#ifndef LAYERPOOL_KERNELS_SIMD_AVX512_H_
#define LAYERPOOL_KERNELS_SIMD_AVX512_H_

#include <immintrin.h>

namespace layerpool::kernels {
namespace {

inline __m512i Load512(const void* p) { return _mm512_loadu_si512(p); }

// Two 256-bit halves into one register: lo in bits 0..255.
inline __m512i Join(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// ggml_v_expf (ggml-cpu/vec.h, AVX-512 branch) on 16 lanes: GgmlExpf
// (ggml_float.h) lane by lane, bit for bit.
inline __m512 GgmlExpf16(__m512 x) {
  const __m512 r = _mm512_set1_ps(0x1.8p23f);
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
  const __m512 n = _mm512_sub_ps(z, r);
  const __m512 b = _mm512_fnmadd_ps(
      n, _mm512_set1_ps(0x1.7f7d1cp-20f),
      _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
  const __mmask16 out_of_range =
      _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_GT_OQ);
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 j = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b,
                                      _mm512_set1_ps(0x1.573e2ep-5f)),
                      u,
                      _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b,
                                      _mm512_set1_ps(0x1.fffdb6p-2f))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
  const __m512 result = _mm512_scalef_ps(j, n);
  if (out_of_range == 0) return result;
  const __m512 zero = _mm512_setzero_ps();
  const __m512 saturated = _mm512_mask_blend_ps(
      _mm512_cmp_ps_mask(n, zero, _CMP_LE_OQ),
      _mm512_set1_ps(__builtin_inff()), zero);
  return _mm512_mask_blend_ps(out_of_range, result, saturated);
}

}  // namespace
}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_SIMD_AVX512_H_
