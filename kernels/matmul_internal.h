// The kernels behind MatMul (matmul.cc and nothing else): register-tiled
// prefill kernels for the Q8_0-activation formats (Q8_0 and Q4_0 weights),
// the float types and Q4_K/Q5_K/Q6_K, which compute a tile of outputs per pass over the
// blocks instead of one dot product per output; one-token kernels that run several rows at once;
// and the choice of the per-output order for everything else (RowDotFn).
//
// Numerics: each output follows the order llama.cpp (ggml's CPU backend,
// AVX-512 build, early 2025) uses for that matrix and batch:
//  - Q8_0, and Q4_0 matrices whose row count is not a multiple of 8: ggml's
//    x86 ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0 for one token and
//    llamafile's tinyBLAS_Q0_AVX for a batch, which agree: eight float
//    lanes, lane l holding the products of weights 4l..4l+3 of every
//    block, each block's exact integer partial sum p[l] added as
//      acc[l] = fma(fl(dw * dx), p[l], acc[l])
//    in block order, and then the lanes summed as
//      ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
//      ((acc[1] + acc[5]) + (acc[3] + acc[7])).
//  - Q4_0 matrices with a multiple of 8 rows, which ggml repacks on any AVX2
//    CPU: per block the exact integer sum, acc = fma(float(isum),
//    fl(dw * dx), acc), for one token and for a batch
//    (matmul_repack_avx512.cc).
//  - IQ4_NL and the float types: ggml's vec_dot for one token, tinyBLAS
//    (one accumulator) for a batch where it takes them (RowDotFn).
// The outputs therefore depend on neither the thread count, the tile an
// output falls in nor the instruction set, and differ from the scalar
// VecDot (which adds whole-block sums without fusing) only by float
// rounding: at most 2 * (nb + 3) * 2^-24 times sum over blocks and lanes
// |p[l] * dw * dx| (matmul_test.cc).
//
// Why these orders and not the scalar reference's: the golden tests compare
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

// Whether llama.cpp repacks a `rows`-row matrix of `w_type` on an AVX2
// machine, and so computes it in matmul_repack_avx512.cc's order, for one
// token and for a batch: Q4_0 with rows % 8 == 0.
bool IsRepackedByLlamaCpp(GgmlType w_type, int64_t rows);

// The tiled kernel for a `rows`-row matrix of `w_type` from the best
// implementation at or below `isa`; both members are nullptr when there is
// none (MatMul then loops over RowDotFn).
TiledKernel GetTiledKernel(GgmlType w_type, CpuIsa isa, int64_t rows);

// The dot product MatMul computes each output of a rows x cols matrix with
// where it has no tiled kernel for the batch: ggml's vec_dot for one token
// (VecDot), and for a batch the order llama.cpp's batch path has where that
// is another one (llamafile's tinyBLAS, for IQ4_NL and the float types).
VecDotFn RowDotFn(GgmlType w_type, CpuIsa isa, int64_t rows, int64_t cols,
                  int64_t n_tokens);

// A batch through a matrix whose activations are already in the vec_dot
// type, register-tiled: y[t * ldy + r] = RowDotFn's dot(row r, token t),
// bit for bit, for r in [r0, r1) and every token; x holds n_tokens rows of
// x_row_bytes bytes. For the float types (tinyBLAS's order) and Q4_K, Q5_K
// and Q6_K (ggml_vec_dot's).
using BatchTiledFn = void (*)(const uint8_t* w, int64_t w_row_bytes,
                              int64_t r0, int64_t r1, const uint8_t* x,
                              int64_t x_row_bytes, int64_t n_tokens,
                              int64_t cols, float* y, int64_t ldy);

// The BatchTiledFn for a batch through a rows x cols matrix at or below
// `isa`, or nullptr where there is none.
BatchTiledFn GetBatchTiledKernel(GgmlType w_type, CpuIsa isa, int64_t rows,
                                 int64_t cols);

// The plain C++ QuantizeQ8RowFn: QuantizeActivations, rearranged.
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half);

// MatMul (matmul.h) with the kernels of `isa` (at most DetectedIsa()) in
// place of ActiveIsa()'s, for tests and benchmarks.
// `vec_dot_order`: MatMulExpert's order rather than MatMul's.
void MatMulWithIsa(CpuIsa isa, GgmlType w_type, const void* w, int64_t rows,
                   int64_t cols, const float* x, int64_t n_tokens, float* y,
                   ThreadPool* pool, bool vec_dot_order = false);

// One token: y[r] = VecDot(row r, x) for r in [r0, r1), bit for bit, with
// x in the vec_dot type (cols elements) and `scratch` of
// MatVecScratchBytes(cols) bytes; for weight types whose VecDot is
// latency-bound.
using MatVecFn = void (*)(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                          int64_t r1, const void* xq, int64_t cols, float* y,
                          void* scratch);
inline int64_t MatVecScratchBytes(int64_t cols) { return cols / 32 * 36; }

// The one-token kernel for a `rows`-row matrix of `w_type` at or below
// `isa`, or nullptr (MatMul then loops over RowDotFn).
MatVecFn GetMatVecKernel(GgmlType w_type, CpuIsa isa, int64_t rows);

// AVX-512 F/BW/DQ/VL + VNNI; matmul_avx512.cc and, for Q4_0 matrices that
// llama.cpp repacks (rows % 8 == 0), matmul_repack_avx512.cc.
namespace avx512 {
void MatVecQ4_0x8(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                  int64_t r1, const void* xq, int64_t cols, float* y,
                  void* scratch);
void MatMulQ4_0x8(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                  int64_t r1, const Q8Batch& x, float* y, int64_t ldy,
                  void* pack);
void MatVecQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch);
// ggml_vec_dot_f32's order, four rows at a time (matmul_float_avx512.cc).
void MatVecF32(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
               const void* xq, int64_t cols, float* y, void* scratch);
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half);
void MatMulQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
void MatMulQ4_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
// BatchTiledFns: matmul_float_avx512.cc (F/BW/DQ/VL only) and
// matmul_k_avx512.cc.
void MatMulF32Batch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                    int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                    int64_t n_tokens, int64_t cols, float* y, int64_t ldy);
void MatMulF16Batch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                    int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                    int64_t n_tokens, int64_t cols, float* y, int64_t ldy);
void MatMulBF16Batch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy);
// One token through a Q4_K, Q5_K or Q6_K matrix: each row VecDot's
// super-block loop, inline (matmul_k_avx512.cc).
void MatVecQ4_K(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch);
void MatVecQ5_K(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch);
void MatVecQ6_K(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch);
void MatMulQ4_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy);
void MatMulQ5_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy);
void MatMulQ6_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy);
}  // namespace avx512

// AVX2 + FMA + F16C; matmul_avx2.cc.
namespace avx2 {
// One row of a repacked Q4_0 matrix in llama.cpp's order (see
// matmul_repack_avx512.cc): a VecDotFn.
float DotQ4_0Repacked(const void* w, const void* x, int64_t n);
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half);
void MatMulQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
void MatMulQ4_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack);
}  // namespace avx2

// For a tiled kernel that walks rows in blocks of `block_rows`, each block
// against `steps` token tiles: pulls the next block's weights (rows [re,
// min(r1, re + block_rows)) of w) towards the caches while the current
// block computes, spread evenly over its steps. Call Step() once per token
// tile. The weights come from DRAM; this keeps the kernels compute-bound.
class NextBlockPrefetch {
 public:
  NextBlockPrefetch(const uint8_t* w, int64_t w_row_bytes, int64_t re,
                    int64_t r1, int64_t block_rows, int64_t steps)
      : next_(w + re * w_row_bytes),
        end_(w + (r1 - re < block_rows ? r1 : re + block_rows) * w_row_bytes),
        lines_per_step_(((end_ - next_) / 64 + steps) / steps) {}

  void Step() {
    for (int64_t lines = lines_per_step_; lines > 0 && next_ < end_;
         --lines, next_ += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(next_), _MM_HINT_T1);
    }
  }

 private:
  const uint8_t* next_;
  const uint8_t* end_;
  int64_t lines_per_step_;
};

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_MATMUL_INTERNAL_H_
