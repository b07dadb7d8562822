// AVX2 + F16C loops of attention.cc: the weighted sum of values, which for
// a prefill of n tokens runs n^2 / 2 times per head and layer and, written
// with the portable half-to-float conversion, took a quarter of a prompt's
// time once the matrix multiplications were tiled.

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernels/attention_internal.h"
#include "kernels/target.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX2

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

namespace {

inline __m256 LoadF16x8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace

void FmaLanesF16(const uint16_t* x, const uint16_t* y, int64_t n, int n_lanes,
                 float* lanes) {
  __m256 acc[8];
  const int regs = n_lanes / 8;
  for (int r = 0; r < regs; ++r) acc[r] = _mm256_loadu_ps(lanes + 8 * r);
  for (int64_t i = 0; i < n; i += n_lanes) {
    for (int r = 0; r < regs; ++r) {
      acc[r] = _mm256_fmadd_ps(LoadF16x8(x + i + 8 * r), LoadF16x8(y + i + 8 * r),
                               acc[r]);
    }
  }
  for (int r = 0; r < regs; ++r) _mm256_storeu_ps(lanes + 8 * r, acc[r]);
}

void FmaScaledF16(float w, const uint16_t* v, float* lane, int n) {
  const __m256 vw = _mm256_set1_ps(w);
  int d = 0;
  for (; d + 8 <= n; d += 8) {
    _mm256_storeu_ps(lane + d, _mm256_fmadd_ps(LoadF16x8(v + d), vw,
                                               _mm256_loadu_ps(lane + d)));
  }
  for (; d < n; ++d) lane[d] = std::fma(_cvtsh_ss(v[d]), w, lane[d]);
}

}  // namespace layerpool::kernels::avx2

LAYERPOOL_END_AVX2
