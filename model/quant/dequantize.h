// Turning stored weights back into floats: the reference dequantizers.
//
// DequantizeRow produces exactly the floats llama.cpp's `dequantize_row_*`
// (ggml-quants.c) produce for the same bytes, bit for bit: the arithmetic is
// the same float operations in the same order, with no fused multiply-add
// (the library is built with -ffp-contract=off). That makes these functions
// the oracle the SIMD and CUDA kernels are tested against, so they are
// written to be read, not to be fast.
//
// Supported types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K, IQ4_NL and IQ4_XS (exactly the types whose TypeTraits
// say `supported`).
//
// Thread safety: the functions are pure; any number of threads may call them
// at once on disjoint outputs.
#ifndef LAYERPOOL_MODEL_QUANT_DEQUANTIZE_H_
#define LAYERPOOL_MODEL_QUANT_DEQUANTIZE_H_

#include <cstdint>

#include "model/quant/types.h"

namespace layerpool {

// True when DequantizeRow handles `type`.
bool CanDequantize(GgmlType type);

// Dequantizes `n` consecutive weights of `type` stored at `src` into
// `dst[0..n)`.
//
// Preconditions (the caller's to guarantee; violating them is a bug):
// `src` holds RowBytes(type, n) readable bytes and is 2-byte aligned (block
// scales are 16-bit; GGUF data always is); `dst` has room for n floats and
// does not overlap `src`.
//
// Returns false, writing nothing, when `type` is not supported or when `n` is
// negative or not a multiple of the type's block size. Any bytes are valid
// input: every bit pattern decodes to some float (NaN or infinity included),
// never to a crash.
[[nodiscard]] bool DequantizeRow(GgmlType type, const void* src, float* dst,
                                 int64_t n);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_QUANT_DEQUANTIZE_H_
