// Register-tiled prefill kernels for matmul.cc and nothing else: weight types
// whose activations are Q8_0 (Q8_0 and Q4_0 weights) against a batch of
// tokens, computing a tile of outputs per pass over the blocks instead of
// one VecDot per output.
//
// Numerics: every output is computed exactly as ggml's x86 (AVX2/AVX-512)
// ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0 and llamafile's
// tinyBLAS_Q0_AVX compute it, which is what llama.cpp runs for these types
// on a batch: eight float lanes, lane l holding the products of weights
// 4l..4l+3 of every block, each block's exact integer partial sum p[l]
// added as
//   acc[l] = fma(fl(dw * dx), p[l], acc[l])
// in block order, and then the lanes summed as
//   ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
//   ((acc[1] + acc[5]) + (acc[3] + acc[7])).
// The outputs therefore equal llama.cpp's bit for bit, depend on neither the
// thread count, the tile an output falls in nor the instruction set, and
// differ from the scalar VecDot (which adds whole-block sums without
// fusing) only by float rounding: at most 2 * (nb + 3) * 2^-24 times
// sum over blocks and lanes |p[l] * dw * dx| (matmul_test.cc).
//
// Why that order and not the scalar reference's: the golden tests compare
// logits with llama.cpp's, and a tiny model such as TinyStories-656K Q8_0
// amplifies any last-bit difference in a matmul (it flips an activation's
// 8-bit quantization downstream) into logit differences of 0.17, where
// llama.cpp's own order gives 0.
#ifndef LAYERPOOL_KERNELS_MATMUL_INTERNAL_H_
#define LAYERPOOL_KERNELS_MATMUL_INTERNAL_H_

#include <xmmintrin.h>

#include <cstdint>

#include "kernels/thread_pool.h"
#include "kernels/vec_dot.h"
#include "model/quant/types.h"

namespace layerpool::kernels {

// Activations quantized to Q8_0 in the kernels' layout. Tokens go in pairs
// (2p, 2p + 1; an odd batch's last pair is padded with a zero token), and
// each pair has, per block b, kQ8PairBlockBytes bytes at
// pairs + (p * nb + b) * kQ8PairBlockBytes:
//   int8_t  qs[2][32]    the block's quants, token 2p then 2p + 1,
//   int32_t bias[2][8]   -128 * (qs[h][4l] + ... + qs[h][4l + 3]),
//   float   d[2][8]      the block's scale (as a float), repeated.
// One 64-byte load thus gives two tokens' worth of any of the three. The
// AVX-512 kernels feed the weights to vpdpbusd as unsigned bytes w + 128,
// and starting each lane at `bias` cancels the offset exactly.
inline constexpr int64_t kQ8PairBlockBytes = 192;

struct Q8Batch {
  const uint8_t* pairs;  // 64-byte aligned
  int64_t n_tokens;
  int64_t nb;  // blocks per row
};

// Quantizes one activation row x[0, 32 * nb) to Q8_0 exactly as
// QuantizeActivations does and writes it as token `half` (0 or 1) of a pair
// whose blocks start at `pair` (Q8Batch layout).
using QuantizeQ8RowFn = void (*)(const float* x, int64_t nb, uint8_t* pair,
                                 int half);

// y[t * ldy + r] = dot(row r of w, token t) for r in [r0, r1) and every
// token of x; w holds rows of w_row_bytes bytes. `pack` is scratch of
// TiledPackBytes(x.nb) bytes, 64-byte aligned.
using TiledMatMulFn = void (*)(const uint8_t* w, int64_t w_row_bytes,
                               int64_t r0, int64_t r1, const Q8Batch& x,
                               float* y, int64_t ldy, void* pack);

// Rows the kernels unpack at a time, and the bytes of the per-thread scratch
// they unpack them into (for rows of nb blocks).
inline constexpr int64_t kTiledBlockRows = 32;
int64_t TiledPackBytes(int64_t nb);

struct TiledKernel {
  QuantizeQ8RowFn quantize = nullptr;
  TiledMatMulFn matmul = nullptr;
};

// The tiled kernel for `w_type` from the best implementation at or below
// `isa`; both members are nullptr when there is none (MatMul then loops
// over VecDot).
TiledKernel GetTiledKernel(GgmlType w_type, CpuIsa isa);

// The plain C++ QuantizeQ8RowFn: QuantizeActivations, rearranged.
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half);

// MatMul (matmul.h) with the kernels of `isa` (at most DetectedIsa()) in
// place of ActiveIsa()'s, for tests and benchmarks.
void MatMulWithIsa(CpuIsa isa, GgmlType w_type, const void* w, int64_t rows,
                   int64_t cols, const float* x, int64_t n_tokens, float* y,
                   ThreadPool* pool);

// AVX-512 F/BW/DQ/VL + VNNI; matmul_avx512.cc.
namespace avx512 {
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half);
void MatMulQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
void MatMulQ4_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
}  // namespace avx512

// AVX2 + FMA + F16C; matmul_avx2.cc.
namespace avx2 {
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half);
void MatMulQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
void MatMulQ4_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
}  // namespace avx2

// Fetches [cursor, end) towards the caches, at most `lines` 64-byte lines;
// returns the new cursor. The tiled kernels call it to pull the next rows'
// weights in while the current tile computes.
inline const uint8_t* PrefetchSome(const uint8_t* cursor, const uint8_t* end,
                                   int64_t lines) {
  for (; lines > 0 && cursor < end; --lines, cursor += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(cursor), _MM_HINT_T1);
  }
  return cursor;
}

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_MATMUL_INTERNAL_H_
