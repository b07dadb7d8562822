// Matrix multiplication of a stored weight matrix with a batch of activation
// rows (decode and prefill), and the embedding lookup.
//
// Weights are a row-major matrix of `rows` rows of `cols` elements in a GGUF
// type (a tensor of GGML shape {cols, rows}); activations are float.
//
// Numerics: MatMul is llama.cpp's CPU mul_mat on the reference machine (an
// AVX-512 build): each activation row is converted once to the weight
// type's vec_dot type, and every output is computed in the order of float
// operations that llama.cpp uses for that matrix and batch size, so that its
// logits are matched bit for bit on AVX2 and AVX-512 CPUs:
//  - one token: ggml's vec_dot (VecDot, vec_dot.h), except for Q4_0
//    matrices with a multiple of 8 rows, which llama.cpp repacks and
//    computes in its own order (matmul_repack_avx512.cc);
//  - a batch: the same repacked order for those Q4_0 matrices, llamafile's
//    tinyBLAS for Q8_0, the other Q4_0 matrices, IQ4_NL and (when the
//    shapes fit its tiles) the float types, and vec_dot for everything
//    else (matmul_internal.h, RowDotFn);
//  - an expert's matrix (MatMulExpert): vec_dot, as ggml's mul_mat_id.
// These orders differ from the scalar reference VecDot only by float
// rounding (bounds in the tests), and no output depends on the thread
// count, the tiling or which of the two instruction sets runs. With
// LAYERPOOL_KERNELS=scalar every output is the reference VecDot's.
//
// Performance: decode (n_tokens = 1) is bound by the memory bandwidth of
// reading the weights; rows are split into one contiguous range per thread,
// and Q8_0, Q4_0 and F32 run several rows at once (matmul_internal.h) so
// that their dependent FMA chains keep up with the memory. With AVX-512 the
// K-quants' one-token kernels run VecDot's super-block loop inline and take
// what depends on the token alone (the sub-block sums of the minimum terms)
// out of the row loop: a Q4_K super-block costs about 17 cycles on one
// core, which on the development machine reads a cold Q4_K matrix at about
// 0.85 of its measured read bandwidth (kernels_bench).
// For n_tokens > 1 each thread walks its rows in blocks and runs every token
// of a tile against the block while it is in cache, so weights are read from
// memory once per call, not once per token. With AVX-512 VNNI the tiled
// kernels are compute-bound at about 230 (Q8_0), 300 (repacked Q4_0) and
// 120-160 (Q4_K) GFLOP/s per core, where a VecDot loop manages 40-65; Q5_K,
// Q6_K and the float types are tiled too. On AVX2-only CPUs Q8_0 and Q4_0
// are tiled and the rest loop over VecDot (a Q4_K tile measured no faster
// there).
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

// MatMul in the order ggml's mul_mat_id (mixture-of-experts) computes: every
// output by vec_dot, whatever the batch size and type (no tinyBLAS, no Q4_0
// repacking), which is what llama.cpp does for one expert's matrix.
void MatMulExpert(GgmlType w_type, const void* w, int64_t rows, int64_t cols,
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
