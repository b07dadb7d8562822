// SIMD pieces of AttendOneToken (attention.cc) and nothing else.
#ifndef LAYERPOOL_KERNELS_ATTENTION_INTERNAL_H_
#define LAYERPOOL_KERNELS_ATTENTION_INTERNAL_H_

#include <cstdint>

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

#endif  // LAYERPOOL_KERNELS_ATTENTION_INTERNAL_H_
