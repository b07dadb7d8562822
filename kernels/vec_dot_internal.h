// Per-instruction-set dot product kernels, for vec_dot.cc's dispatch table
// and nothing else. Each function has the VecDotFn signature: (weight row,
// activations in the vec_dot type, n) -> float, with n a multiple of the
// block size.
#ifndef LAYERPOOL_KERNELS_VEC_DOT_INTERNAL_H_
#define LAYERPOOL_KERNELS_VEC_DOT_INTERNAL_H_

#include <cstdint>

namespace layerpool::kernels {

// Plain C++; vec_dot_ref.cc and vec_dot_ref_k.cc.
namespace ref {
float DotF32(const void* w, const void* x, int64_t n);
float DotF16(const void* w, const void* x, int64_t n);
float DotBF16(const void* w, const void* x, int64_t n);
float DotQ4_0(const void* w, const void* x, int64_t n);
float DotQ4_1(const void* w, const void* x, int64_t n);
float DotQ5_0(const void* w, const void* x, int64_t n);
float DotQ5_1(const void* w, const void* x, int64_t n);
float DotQ8_0(const void* w, const void* x, int64_t n);
float DotIQ4_NL(const void* w, const void* x, int64_t n);
float DotQ2_K(const void* w, const void* x, int64_t n);
float DotQ3_K(const void* w, const void* x, int64_t n);
float DotQ4_K(const void* w, const void* x, int64_t n);
float DotQ5_K(const void* w, const void* x, int64_t n);
float DotQ6_K(const void* w, const void* x, int64_t n);
float DotIQ4_XS(const void* w, const void* x, int64_t n);
}  // namespace ref

// AVX2 + FMA + F16C. Only call when the CPU has them.
namespace avx2 {
// vec_dot_avx2.cc
float DotF32(const void* w, const void* x, int64_t n);
float DotF16(const void* w, const void* x, int64_t n);
float DotBF16(const void* w, const void* x, int64_t n);
float DotQ4_0(const void* w, const void* x, int64_t n);
float DotQ4_1(const void* w, const void* x, int64_t n);
float DotQ5_0(const void* w, const void* x, int64_t n);
float DotQ5_1(const void* w, const void* x, int64_t n);
float DotQ8_0(const void* w, const void* x, int64_t n);
float DotIQ4_NL(const void* w, const void* x, int64_t n);
// The orders of llamafile's tinyBLAS, which llama.cpp uses for a batch
// (MatMul): one accumulator per output. F32 and F16 need n % 16 == 0,
// BF16 n % 32 == 0.
float DotIQ4_NLBatch(const void* w, const void* x, int64_t n);
float DotF32Batch(const void* w, const void* x, int64_t n);
float DotF16Batch(const void* w, const void* x, int64_t n);
float DotBF16Batch(const void* w, const void* x, int64_t n);
// vec_dot_avx2_k.cc
float DotQ2_K(const void* w, const void* x, int64_t n);
float DotQ3_K(const void* w, const void* x, int64_t n);
float DotQ4_K(const void* w, const void* x, int64_t n);
float DotQ5_K(const void* w, const void* x, int64_t n);
float DotQ6_K(const void* w, const void* x, int64_t n);
float DotIQ4_XS(const void* w, const void* x, int64_t n);
}  // namespace avx2

// AVX-512 F/BW/DQ/VL + VNNI.
namespace avx512 {
// vec_dot_avx512.cc
float DotQ4_0(const void* w, const void* x, int64_t n);
float DotQ8_0(const void* w, const void* x, int64_t n);
// vec_dot_avx512_k.cc
float DotQ4_K(const void* w, const void* x, int64_t n);
float DotQ5_K(const void* w, const void* x, int64_t n);
float DotQ6_K(const void* w, const void* x, int64_t n);
}  // namespace avx512

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_VEC_DOT_INTERNAL_H_
