// Dot products of a stored weight row with an activation vector: the inner
// loop of every matrix multiplication in the forward pass.
//
// The numerics follow llama.cpp's CPU backend (ggml-cpu, early 2025), whose
// logits ours are compared with. ggml never multiplies a quantized weight by
// float activations directly: it first converts the activations to the
// weight type's "vec_dot type" and then takes a block-by-block dot product in
// integers (or halves), scaling each block's integer sum by the two block
// scales:
//
//   weight type                          vec_dot type (activations)
//   Q4_0, Q5_0, Q8_0, IQ4_NL             Q8_0   (32 int8 + half scale)
//   Q4_1, Q5_1                           Q8_1   (Q8_0 + half d*sum)
//   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS Q8_K   (256 int8 + float scale
//                                                 + 16 partial sums)
//   F16 / BF16 / F32                     F16 / BF16 / F32
//
// So a caller quantizes the activations once with QuantizeActivations and
// then calls VecDot against as many weight rows as it likes (matmul.h does
// exactly that). The activation quantizers are bit-exact with what
// llama.cpp's x86 build (AVX2 or AVX-512) produces: Q8_0 and Q8_1 follow
// ggml's SIMD quantize_row_q8_0/q8_1 (scale 127/amax, ties to even), which
// differ from its scalar *_ref versions (1/d, ties away from zero) in the
// last bit of a few quants; Q8_K follows quantize_row_q8_K_ref, which is what
// x86 uses. The dot products compute the same integer sums as ggml and, on
// every implementation, its float operations in its order (ggml's one-token
// vec_dot; matmul.h picks the batch orders), so they give ggml's bits.
//
// Implementations: every type has a plain scalar version written to be read
// (the oracle of the tests) and an AVX2 (+FMA, F16C) version; Q4_0, Q8_0,
// Q4_K, Q5_K and Q6_K also have AVX-512 (BW, VL, VNNI) versions where
// measurement showed a gain. The best one the CPU supports is chosen at run time. The
// library is compiled for baseline x86-64; the SIMD functions carry their own
// target attributes, so other CPUs (and other architectures) run the scalar
// code. Setting the environment variable LAYERPOOL_KERNELS=scalar
// forces the scalar path everywhere (LAYERPOOL_KERNELS=avx2 caps it at AVX2);
// the variable is read once, at the first use.
//
// Supported weight types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS.
//
// Thread safety: all functions are pure (the dispatch table is built once,
// thread-safely) and may be called from any number of threads.
// Standard library only; kernels/ is a leaf that CUDA builds also use.
#ifndef LAYERPOOL_KERNELS_VEC_DOT_H_
#define LAYERPOOL_KERNELS_VEC_DOT_H_

#include <cstdint>

#include "model/quant/types.h"

namespace layerpool::kernels {

// True when VecDot (and so MatMul) handles weights of `type`.
bool IsVecDotSupported(GgmlType weight_type);

// The type activations are converted to before meeting a row of
// `weight_type` (table above). Precondition: IsVecDotSupported(weight_type).
GgmlType VecDotType(GgmlType weight_type);

// Converts n floats x[0..n) to `vec_dot_type` (Q8_0, Q8_1, Q8_K, F16, BF16 or
// F32) at `out`, which must have room for RowBytes(vec_dot_type, n) bytes and
// be 4-byte aligned. Preconditions (violations abort): a supported type and n
// a multiple of its block size. x should be finite, as in ggml.
void QuantizeActivations(GgmlType vec_dot_type, const float* x, void* out,
                         int64_t n);

// Dot product of the n weights at `w_row` (RowBytes(weight_type, n) bytes,
// 2-byte aligned) with n activations at `x_quantized`, which were produced by
// QuantizeActivations(VecDotType(weight_type), ...). n must be a multiple of
// the weight type's block size. Unsupported types abort (a bug: callers
// check IsVecDotSupported when they load weights).
float VecDot(GgmlType weight_type, const void* w_row, const void* x_quantized,
             int64_t n);

// ----------------------------------------------------------------------------
// Choosing an implementation. The functions above use ActiveIsa(); tests and
// benchmarks use these to compare implementations side by side.

enum class CpuIsa {
  kScalar = 0,  // portable reference code
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/DQ/VL + VNNI
};

const char* IsaName(CpuIsa isa);

// The best instruction set this CPU (and OS) supports.
CpuIsa DetectedIsa();

// What VecDot and MatMul use: DetectedIsa(), lowered by LAYERPOOL_KERNELS.
CpuIsa ActiveIsa();

using VecDotFn = float (*)(const void* w_row, const void* x_quantized,
                           int64_t n);

// The dot product for `weight_type` from the best implementation at or below
// `isa` (types without a SIMD version fall back to scalar). Precondition:
// isa <= DetectedIsa() and IsVecDotSupported(weight_type).
VecDotFn GetVecDotFn(GgmlType weight_type, CpuIsa isa);

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_VEC_DOT_H_
