// Matrix multiplication of a stored weight matrix with a batch of activation
// rows (decode and prefill), and the embedding lookup.
//
// Weights are a row-major matrix of `rows` rows of `cols` elements in a GGUF
// type (a tensor of GGML shape {cols, rows}); activations are float.
//
// Numerics: MatMul is llama.cpp's CPU mul_mat: each activation row is
// converted once to the weight type's vec_dot type and every output is one
// VecDot (vec_dot.h), so every output agrees with VecDot on the same data
// exactly, whatever the thread count or batch size. The exception is the
// prefill (n_tokens > 1) of Q8_0 and Q4_0 weights on AVX2 or AVX-512 CPUs,
// which runs register-tiled kernels (matmul_internal.h) that compute every
// output as ggml's x86 dot product of those types does (eight lanes of fused
// multiply-adds), so that llama.cpp's batch logits are matched bit for bit;
// they agree with VecDot within float rounding (the bound is in
// matmul_internal.h), and exactly across thread counts, batch sizes and the
// two instruction sets.
//
// Performance: decode (n_tokens = 1) is bound by the memory bandwidth of
// reading the weights; rows are split into one contiguous range per thread.
// For n_tokens > 1 each thread walks its rows in blocks and runs every token
// of a tile against the block while it is in cache, so weights are read from
// memory once per call, not once per token; the tiled Q8_0 and Q4_0 kernels
// are compute-bound at about 235 GFLOP/s per core with AVX-512 VNNI (a
// VecDot loop manages about 65).
//
// Thread safety: MatMul may be called from several threads at once (each
// with its own pool, or pool == nullptr). The activation scratch buffer is
// per calling thread and grows to the largest batch seen, and the tiled
// kernels' weight scratch is per pool thread; neither is freed until its
// thread exits.
#ifndef LAYERPOOL_KERNELS_MATMUL_H_
#define LAYERPOOL_KERNELS_MATMUL_H_

#include <cstdint>

#include "kernels/thread_pool.h"
#include "model/quant/types.h"

namespace layerpool::kernels {

// True when MatMul handles weights of `type` (same as IsVecDotSupported).
bool IsMatMulSupported(GgmlType w_type);

// y[t * rows + r] = dot(row r of w, x[t * cols .. (t + 1) * cols)) for
// t < n_tokens, r < rows.
//
// Preconditions (the caller's; violating them is a bug): IsMatMulSupported,
// cols a multiple of the type's block size, w holds RowBytes(w_type, cols) *
// rows bytes (2-byte aligned, as GGUF data is), x holds n_tokens * cols
// floats, y room for n_tokens * rows floats and overlaps neither. pool may be
// nullptr (single-threaded).
void MatMul(GgmlType w_type, const void* w, int64_t rows, int64_t cols,
            const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

// Embedding lookup: out[i * cols .. (i + 1) * cols) = row ids[i] of `table`
// (rows of `cols` elements of `type`), dequantized exactly as DequantizeRow
// does (llama.cpp's get_rows). Preconditions: every id is a valid row of the
// table (callers validate token ids; this function cannot know the row
// count), `type` is dequantizable and cols a multiple of its block size.
void GetRows(GgmlType type, const void* table, int64_t cols, const int32_t* ids,
             int64_t n, float* out);

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_MATMUL_H_
