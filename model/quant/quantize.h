// Turning floats into stored weights: the reference quantizers.
//
// QuantizeRow writes the bytes llama.cpp writes for the same floats when it
// quantizes without an importance matrix (what `llama-quantize` does by
// default), byte for byte. It follows ggml's `quantize_row_*_ref` functions
// (ggml-quants.c) expression by expression, including their rounding
// helpers (nearest_int's add-a-magic-number trick, roundf, truncating
// casts) and their scale searches (make_qx_quants, make_q3_quants,
// make_qkx2_quants); the library is built with -ffp-contract=off so that no
// fused multiply-add changes a rounding. Quantization is a one-off, offline
// step, so clarity wins over speed here too.
//
// Supported types (IsQuantizable): F32 (a copy), F16 and BF16 (round to
// nearest even), Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
// The IQ types need ggml's lattice searches and are not produced here; they
// can still be read (dequantize.h).
//
// Thread safety: the functions are pure; any number of threads may call them
// at once on disjoint outputs.
#ifndef LAYERPOOL_MODEL_QUANT_QUANTIZE_H_
#define LAYERPOOL_MODEL_QUANT_QUANTIZE_H_

#include <cstdint>

#include "model/quant/types.h"

namespace layerpool {

// True when QuantizeRow can produce `type`.
bool IsQuantizable(GgmlType type);

// Quantizes `src[0..n)` into RowBytes(type, n) bytes at `dst`.
//
// Preconditions (the caller's to guarantee): `src` holds n finite floats
// (NaN or infinity give unspecified, though memory-safe, output, as in ggml);
// `dst` has room for RowBytes(type, n) bytes, is 2-byte aligned and does not
// overlap `src`.
//
// Returns false, writing nothing, when `type` is not quantizable or when `n`
// is negative or not a multiple of the type's block size.
[[nodiscard]] bool QuantizeRow(GgmlType type, const float* src, void* dst,
                               int64_t n);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_QUANT_QUANTIZE_H_
