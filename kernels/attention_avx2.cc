// AVX2 + F16C loops of attention.cc: the weighted sum of values, which for
// a prefill of n tokens runs n^2 / 2 times per head and layer and, written
// with the portable half-to-float conversion, took a quarter of a prompt's
// time once the matrix multiplications were tiled.

#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_internal.h"
#include "model/quant/blocks.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace layerpool::kernels::avx2 {

void AddScaledF16(float w, const uint16_t* v, float* o, int n) {
  const __m256 vw = _mm256_set1_ps(w);
  int d = 0;
  for (; d + 8 <= n; d += 8) {
    const __m256 vv = _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(v + d)));
    _mm256_storeu_ps(
        o + d, _mm256_add_ps(_mm256_loadu_ps(o + d), _mm256_mul_ps(vw, vv)));
  }
  for (; d < n; ++d) o[d] += w * _cvtsh_ss(v[d]);
}

void AddScaledF32(float w, const float* v, float* o, int n) {
  const __m256 vw = _mm256_set1_ps(w);
  int d = 0;
  for (; d + 8 <= n; d += 8) {
    _mm256_storeu_ps(o + d,
                     _mm256_add_ps(_mm256_loadu_ps(o + d),
                                   _mm256_mul_ps(vw, _mm256_loadu_ps(v + d))));
  }
  for (; d < n; ++d) o[d] += w * v[d];
}

}  // namespace layerpool::kernels::avx2

#pragma GCC pop_options
