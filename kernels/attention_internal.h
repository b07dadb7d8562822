// SIMD pieces of AttendOneToken (attention.cc) and nothing else, and its
// instruction-set choice for tests.
#ifndef LAYERPOOL_KERNELS_ATTENTION_INTERNAL_H_
#define LAYERPOOL_KERNELS_ATTENTION_INTERNAL_H_

#include <cstddef>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/vec_dot.h"

namespace layerpool::kernels::avx2 {

// o[d] += w * v[d] for d < n, v in f16 or f32: one rounded multiply and one
// rounded add per element, as the scalar loops in attention.cc, so the same
// bits. AVX2 + F16C; attention_avx2.cc. Only call when the CPU has them.
void AddScaledF16(float w, const uint16_t* v, float* o, int n);
void AddScaledF32(float w, const float* v, float* o, int n);

// The f16 products in llama.cpp's order (attention.cc): for i < n,
// lanes[i % n_lanes] = fma(x[i], y[i], lanes[i % n_lanes]), n_lanes 16 or
// 64 and n a multiple of it; and lane[d] = fma(v[d], w, lane[d]) for d < n.
void FmaLanesF16(const uint16_t* x, const uint16_t* y, int64_t n, int n_lanes,
                 float* lanes);
void FmaScaledF16(float w, const uint16_t* v, float* lane, int n);

}  // namespace layerpool::kernels::avx2

// The 16-lane (batch) order of attention.cc's f16 path with AVX-512 F/BW/
// DQ/VL; attention_avx512.cc.
namespace layerpool::kernels::avx512 {

inline constexpr int kMaxScoreHeadDim = 256;

// The softmax of scores[0, n) as ggml_vec_soft_max_f32 computes it (exp by
// GgmlExpf in groups of 16, each group's ReduceAdd16 added into a double),
// times float(1 / sum), rounded to f16: the values' weights, in place.
void ProbabilitiesF16(float* scores, int64_t n);

// scores[p] = (key p . q) * scale for p < n_kv, the product in 16 lanes and
// reduced by ReduceAdd16; key p's head starts at k + p * row_bytes. q16 and
// the keys are f16; head_dim % 16 == 0 and head_dim <= kMaxScoreHeadDim.
void ScoresF16Lanes16(const uint8_t* k, size_t row_bytes, int64_t n_kv,
                      const uint16_t* q16, int head_dim, float scale,
                      float* scores);

// out[d] = sum over p < n_kv of w[p] * value p[d], position p in lane p %
// 16 (one FMA each), the lanes summed by ReduceAdd16; value p's head starts
// at v + p * row_bytes, in f16. Any head_dim.
void WeightedSumF16Lanes16(const uint8_t* v, size_t row_bytes, int64_t n_kv,
                           const float* w, int head_dim, float* out);


// ggml_vec_dot_f16 where the whole product is its double tail (fewer than
// 64 elements): scores[p] = float(sum over d, in order, in double, of the
// float product key p[d] * q[d]) * scale. head_dim <= kMaxDoubleHeadDim.
inline constexpr int kMaxDoubleHeadDim = 64;
void ScoresF16Double(const uint8_t* k, size_t row_bytes, int64_t n_kv,
                     const uint16_t* q16, int head_dim, float scale,
                     float* scores);

// The double tail of the values' weighted sum: for p in [p_begin, p_end) in
// order, sums[d] += double(float(value p[d] * w[p])), d < head_dim.
void AddProductsF16Double(const uint8_t* v, size_t row_bytes, int64_t p_begin,
                          int64_t p_end, const float* w, int head_dim,
                          double* sums);

}  // namespace layerpool::kernels::avx512

namespace layerpool::kernels {

// AttendOneToken with the loops of `isa` (at most DetectedIsa()) in place of
// ActiveIsa()'s; every choice gives the same bits.
void AttendOneTokenWithIsa(CpuIsa isa, const AttentionShape& shape,
                           const float* q, const KvLayerView& kv, int64_t n_kv,
                           bool in_batch, int head_begin, int head_end,
                           float* out, AttentionScratch& scratch);

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_ATTENTION_INTERNAL_H_
