// SIMD pieces of ops.cc and nothing else, and its instruction-set choice for
// tests.
#ifndef LAYERPOOL_KERNELS_OPS_INTERNAL_H_
#define LAYERPOOL_KERNELS_OPS_INTERNAL_H_

#include <cstdint>

#include "kernels/vec_dot.h"

namespace layerpool::kernels {

// Silu (ops.h) with the loops of `isa` (at most DetectedIsa()); every choice
// gives the same bits.
void SiluWithIsa(CpuIsa isa, const float* x, int64_t n, float* y);

namespace avx512 {
// y[i] = x[i] / (1 + GgmlExpf(0 - x[i])) for i < n, n a multiple of 16:
// ggml_v_silu. AVX-512 F/DQ; ops_avx512.cc.
void SiluGroups(const float* x, int64_t n, float* y);
}  // namespace avx512

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_OPS_INTERNAL_H_
