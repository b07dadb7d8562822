// AVX-512 loops of attention.cc's f16 path: the scores against every cached
// key and the probability-weighted sum of the values, in the 16-lane order
// of llama.cpp's batch products (tinyBLAS), and the sums in double that
// ggml_vec_dot_f16 adds its last elements with (for one token, all of a
// short head's or cache's). The scalar loops in attention.cc define the
// order; these give the same bits (attention_test.cc).

#include <immintrin.h>

#include <cstdint>

#include "kernels/attention_internal.h"
#include "kernels/target.h"

LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx512.h"  // inside the target region, on purpose

namespace layerpool::kernels::avx512 {
namespace {

inline __m512 LoadF16x16(const uint16_t* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

}  // namespace

void ProbabilitiesF16(float* scores, int64_t n) {
  __m512 max16 = _mm512_set1_ps(-__builtin_inff());
  for (int64_t p = 0; p < n; p += 16) {
    const __mmask16 mask = n - p >= 16 ? 0xFFFF : (1u << (n - p)) - 1;
    max16 = _mm512_mask_max_ps(max16, mask, max16,
                               _mm512_maskz_loadu_ps(mask, scores + p));
  }
  const __m512 max_score = _mm512_set1_ps(_mm512_reduce_max_ps(max16));
  double sum = 0;
  for (int64_t p = 0; p < n; p += 16) {
    const __mmask16 mask = n - p >= 16 ? 0xFFFF : (1u << (n - p)) - 1;
    const __m512 e = _mm512_maskz_mov_ps(
        mask, GgmlExpf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, scores + p),
                                       max_score)));
    _mm512_mask_storeu_ps(scores + p, mask, e);
    sum += _mm512_reduce_add_ps(e);
  }
  const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
  for (int64_t p = 0; p < n; p += 16) {
    const __mmask16 mask = n - p >= 16 ? 0xFFFF : (1u << (n - p)) - 1;
    const __m512 w = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, scores + p), inv);
    _mm512_mask_storeu_ps(
        scores + p, mask,
        _mm512_cvtph_ps(_mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT |
                                               _MM_FROUND_NO_EXC)));
  }
}

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

namespace {

// Eight vectors of eight doubles transposed: out[i] holds element i of
// in[0], ..., in[7].
inline void Transpose8x8(const __m512d (&in)[8], __m512d (&out)[8]) {
  __m512d a[8], b[8];
  for (int j = 0; j < 4; ++j) {
    a[2 * j] = _mm512_unpacklo_pd(in[2 * j], in[2 * j + 1]);      // 0 2 4 6
    a[2 * j + 1] = _mm512_unpackhi_pd(in[2 * j], in[2 * j + 1]);  // 1 3 5 7
  }
  for (int h = 0; h < 2; ++h) {  // keys 0-3, then 4-7
    const __m512d* x = a + 4 * h;
    b[4 * h + 0] = _mm512_shuffle_f64x2(x[0], x[2], 0x88);  // elements 0, 4
    b[4 * h + 1] = _mm512_shuffle_f64x2(x[0], x[2], 0xDD);  // 2, 6
    b[4 * h + 2] = _mm512_shuffle_f64x2(x[1], x[3], 0x88);  // 1, 5
    b[4 * h + 3] = _mm512_shuffle_f64x2(x[1], x[3], 0xDD);  // 3, 7
  }
  out[0] = _mm512_shuffle_f64x2(b[0], b[4], 0x88);
  out[4] = _mm512_shuffle_f64x2(b[0], b[4], 0xDD);
  out[2] = _mm512_shuffle_f64x2(b[1], b[5], 0x88);
  out[6] = _mm512_shuffle_f64x2(b[1], b[5], 0xDD);
  out[1] = _mm512_shuffle_f64x2(b[2], b[6], 0x88);
  out[5] = _mm512_shuffle_f64x2(b[2], b[6], 0xDD);
  out[3] = _mm512_shuffle_f64x2(b[3], b[7], 0x88);
  out[7] = _mm512_shuffle_f64x2(b[3], b[7], 0xDD);
}

// The float products of eight f16 elements, widened to double.
inline __m512d ProductsF16(const uint16_t* x, __m256 y, __mmask8 mask) {
  const __m256 xf = _mm256_cvtph_ps(_mm_maskz_loadu_epi16(mask, x));
  return _mm512_cvtps_pd(_mm256_mul_ps(xf, y));
}

}  // namespace

void ScoresF16Double(const uint8_t* k, size_t row_bytes, int64_t n_kv,
                     const uint16_t* q16, int head_dim, float scale,
                     float* scores) {
  __m256 q[kMaxDoubleHeadDim / 8];
  const int chunks = (head_dim + 7) / 8;
  for (int c = 0; c < chunks; ++c) {
    const int width = head_dim - 8 * c < 8 ? head_dim - 8 * c : 8;
    q[c] = _mm256_cvtph_ps(_mm_maskz_loadu_epi16(
        static_cast<__mmask8>((1u << width) - 1), q16 + 8 * c));
  }
  for (int64_t p0 = 0; p0 < n_kv; p0 += 8) {
    const int keys = n_kv - p0 < 8 ? static_cast<int>(n_kv - p0) : 8;
    const uint16_t* key[8];
    for (int j = 0; j < 8; ++j) {  // missing keys repeat the first
      key[j] = reinterpret_cast<const uint16_t*>(
          k + (p0 + (j < keys ? j : 0)) * row_bytes);
    }
    __m512d sum = _mm512_setzero_pd();
    for (int c = 0; c < chunks; ++c) {
      const int width = head_dim - 8 * c < 8 ? head_dim - 8 * c : 8;
      const __mmask8 mask = static_cast<__mmask8>((1u << width) - 1);
      __m512d products[8], elements[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) {
        products[j] = ProductsF16(key[j] + 8 * c, q[c], mask);
      }
      Transpose8x8(products, elements);
      for (int i = 0; i < width; ++i) sum = _mm512_add_pd(sum, elements[i]);
    }
    const __m256 s = _mm256_mul_ps(_mm512_cvtpd_ps(sum), _mm256_set1_ps(scale));
    _mm256_mask_storeu_ps(scores + p0, static_cast<__mmask8>((1u << keys) - 1), s);
  }
}

void AddProductsF16Double(const uint8_t* v, size_t row_bytes, int64_t p_begin,
                          int64_t p_end, const float* w, int head_dim,
                          double* sums) {
  for (int d0 = 0; d0 < head_dim; d0 += 8) {
    const int width = head_dim - d0 < 8 ? head_dim - d0 : 8;
    const __mmask8 mask = static_cast<__mmask8>((1u << width) - 1);
    __m512d acc = _mm512_maskz_loadu_pd(mask, sums + d0);
    for (int64_t p = p_begin; p < p_end; ++p) {
      const uint16_t* value =
          reinterpret_cast<const uint16_t*>(v + p * row_bytes) + d0;
      acc = _mm512_add_pd(acc, ProductsF16(value, _mm256_set1_ps(w[p]), mask));
    }
    _mm512_mask_storeu_pd(sums + d0, mask, acc);
  }
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
