// AVX-512 loops of attention.cc's f16 path for a token of a batch, where
// llama.cpp's products are tinyBLAS's (16 lanes): the scores against every
// cached key, and the probability-weighted sum of the values. The scalar
// loops in attention.cc define the order; these give the same bits
// (attention_test.cc).

#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_internal.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12's avx512fintrin.h builds its "undefined" vectors by self-
// initialisation, which -Wuninitialized reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace layerpool::kernels::avx512 {
namespace {

inline __m512 LoadF16x16(const uint16_t* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

}  // namespace

void ScoresF16Lanes16(const uint8_t* k, size_t row_bytes, int64_t n_kv,
                      const uint16_t* q16, int head_dim, float scale,
                      float* scores) {
  __m512 q[kMaxScoreHeadDim / 16];
  const int steps = head_dim / 16;
  for (int j = 0; j < steps; ++j) q[j] = LoadF16x16(q16 + 16 * j, 0xFFFF);
  for (int64_t p = 0; p < n_kv; ++p) {
    const uint16_t* key = reinterpret_cast<const uint16_t*>(k + p * row_bytes);
    __m512 acc = _mm512_setzero_ps();
    for (int j = 0; j < steps; ++j) {
      acc = _mm512_fmadd_ps(LoadF16x16(key + 16 * j, 0xFFFF), q[j], acc);
    }
    scores[p] = _mm512_reduce_add_ps(acc) * scale;
  }
}

void WeightedSumF16Lanes16(const uint8_t* v, size_t row_bytes, int64_t n_kv,
                           const float* w, int head_dim, float* out) {
  for (int d0 = 0; d0 < head_dim; d0 += 16) {
    const int width = head_dim - d0 < 16 ? head_dim - d0 : 16;
    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l) acc[l] = _mm512_setzero_ps();
    const uint8_t* row = v + 2 * d0;
    int64_t p0 = 0;
    for (; p0 + 16 <= n_kv; p0 += 16) {
#pragma GCC unroll 16
      for (int l = 0; l < 16; ++l) {
        const uint16_t* value =
            reinterpret_cast<const uint16_t*>(row + (p0 + l) * row_bytes);
        acc[l] = _mm512_fmadd_ps(LoadF16x16(value, mask),
                                 _mm512_set1_ps(w[p0 + l]), acc[l]);
      }
    }
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l) {
      if (p0 + l >= n_kv) break;
      const uint16_t* value =
          reinterpret_cast<const uint16_t*>(row + (p0 + l) * row_bytes);
      acc[l] = _mm512_fmadd_ps(LoadF16x16(value, mask),
                               _mm512_set1_ps(w[p0 + l]), acc[l]);
    }
    // ReduceAdd16 across the lanes, for 16 outputs at once.
    __m512 h8[8], h4[4];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) h8[i] = _mm512_add_ps(acc[i + 8], acc[i]);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) h4[i] = _mm512_add_ps(h8[i + 4], h8[i]);
    _mm512_mask_storeu_ps(out + d0, mask,
                          _mm512_add_ps(_mm512_add_ps(h4[0], h4[2]),
                                        _mm512_add_ps(h4[1], h4[3])));
  }
}

}  // namespace layerpool::kernels::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
