// Register-tiled prefill for F32, F16 and BF16 matrices (and, at the end,
// a one-token F32 kernel in ggml_vec_dot_f32's order), in the order
// llama.cpp's batch path gives them (llamafile's tinyBLAS, RowDotFn's
// Dot*Batch): each output has one 16-lane accumulator, lane l taking the
// products of elements c + l of every 16-element step c (BF16: of the pair
// 2l, 2l + 1 of every 32-element step, odd element first, as vdpbf16ps),
// and the lanes are summed by _mm512_reduce_add_ps.
//
// A tile is 4 rows x 4 tokens: 16 accumulators, the 4 rows' vectors and one
// token's, so each weight load serves 4 tokens and each activation load 4
// rows, where the dot-product loop it replaces loaded both for every FMA.
// The instruction sequence per output does not depend on the tile, so the
// results equal Dot*Batch's bit for bit (matmul_test.cc).

#include <immintrin.h>

#include <cstdint>

#include "kernels/matmul_internal.h"
#include "kernels/target.h"

LAYERPOOL_BEGIN_AVX512

namespace layerpool::kernels::avx512 {
namespace {

// Each element type: how many elements one step covers, and the step's
// vectors (BF16 has two: the odd elements of each pair, then the even).
struct F32 {
  static constexpr int kStep = 16, kParts = 1;
  static void Load(const uint8_t* row, int64_t i, __m512* v) {
    v[0] = _mm512_loadu_ps(reinterpret_cast<const float*>(row) + i);
  }
};

struct F16 {
  static constexpr int kStep = 16, kParts = 1;
  static void Load(const uint8_t* row, int64_t i, __m512* v) {
    v[0] = _mm512_cvtph_ps(_mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(row) + i)));
  }
};

struct BF16 {
  static constexpr int kStep = 32, kParts = 2;
  static void Load(const uint8_t* row, int64_t i, __m512* v) {
    const __m512i pairs = _mm512_loadu_si512(reinterpret_cast<const uint16_t*>(row) + i);
    v[0] = _mm512_castsi512_ps(
        _mm512_and_si512(pairs, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
    v[1] = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
  }
};

template <class T, int RM, int RN>
void Tile(const uint8_t* w, int64_t w_row_bytes, int64_t r, const uint8_t* x,
          int64_t x_row_bytes, int64_t t, int64_t cols, float* y, int64_t ldy) {
  __m512 acc[RM][RN];
#pragma GCC unroll 4
  for (int i = 0; i < RM; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < cols; k += T::kStep) {
    __m512 a[RM][T::kParts];
#pragma GCC unroll 4
    for (int i = 0; i < RM; ++i) T::Load(w + (r + i) * w_row_bytes, k, a[i]);
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) {
      __m512 b[T::kParts];
      T::Load(x + (t + j) * x_row_bytes, k, b);
#pragma GCC unroll 4
      for (int p = 0; p < T::kParts; ++p) {
#pragma GCC unroll 4
        for (int i = 0; i < RM; ++i) {
          acc[i][j] = _mm512_fmadd_ps(a[i][p], b[p], acc[i][j]);
        }
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < RM; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) {
      y[(t + j) * ldy + r + i] = _mm512_reduce_add_ps(acc[i][j]);
    }
  }
}

// Rows [r, r + RM) against every token: whole tiles of 4 tokens, then the
// remainder in one narrower tile.
template <class T, int RM>
void RowTiles(const uint8_t* w, int64_t w_row_bytes, int64_t r,
              const uint8_t* x, int64_t x_row_bytes, int64_t t0, int64_t t1,
              int64_t cols, float* y, int64_t ldy) {
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) {
    Tile<T, RM, 4>(w, w_row_bytes, r, x, x_row_bytes, t, cols, y, ldy);
  }
  switch (t1 - t) {
    case 3: Tile<T, RM, 3>(w, w_row_bytes, r, x, x_row_bytes, t, cols, y, ldy); break;
    case 2: Tile<T, RM, 2>(w, w_row_bytes, r, x, x_row_bytes, t, cols, y, ldy); break;
    case 1: Tile<T, RM, 1>(w, w_row_bytes, r, x, x_row_bytes, t, cols, y, ldy); break;
    default: break;
  }
}

// Blocks of 16 rows (a 2048-wide F32 block is 128 KB, kept in L2) against
// token tiles of 4; the rows within a block in tiles of 4, then one at a
// time.
template <class T>
void MatMul(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
            const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
            int64_t cols, float* y, int64_t ldy) {
  constexpr int64_t kRowBlock = 16, kTokenTile = 4;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = r1 < rb + kRowBlock ? r1 : rb + kRowBlock;
    for (int64_t tb = 0; tb < n_tokens; tb += kTokenTile) {
      const int64_t te = n_tokens < tb + kTokenTile ? n_tokens : tb + kTokenTile;
      int64_t r = rb;
      for (; r + 4 <= re; r += 4) {
        RowTiles<T, 4>(w, w_row_bytes, r, x, x_row_bytes, tb, te, cols, y, ldy);
      }
      for (; r < re; ++r) {
        RowTiles<T, 1>(w, w_row_bytes, r, x, x_row_bytes, tb, te, cols, y, ldy);
      }
    }
  }
}

}  // namespace

void MatMulF32Batch(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                    const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
                    int64_t cols, float* y, int64_t ldy) {
  MatMul<F32>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens, cols, y, ldy);
}

void MatMulF16Batch(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                    const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
                    int64_t cols, float* y, int64_t ldy) {
  MatMul<F16>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens, cols, y, ldy);
}

void MatMulBF16Batch(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                     const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
                     int64_t cols, float* y, int64_t ldy) {
  MatMul<BF16>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens, cols, y, ldy);
}

namespace {

// ggml_vec_dot_f32 for rows [r, r + RM): 64-element steps into four 16-lane
// accumulators per row (the activations' four vectors loaded once for all
// rows), reduced as ((a0 + a2) + (a1 + a3)) and then by
// _mm512_reduce_add_ps, and the elements past the last step fused into
// that sum one by one (ggml's C compiler contracts its tail loop).
template <int RM>
void MatVecRows(const uint8_t* w, int64_t w_row_bytes, int64_t r,
                const float* x, int64_t cols, float* y) {
  const int64_t steps_end = cols & ~int64_t{63};
  const float* rows[RM];
  __m512 acc[RM][4];
#pragma GCC unroll 4
  for (int i = 0; i < RM; ++i) {
    rows[i] = reinterpret_cast<const float*>(w + (r + i) * w_row_bytes);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < steps_end; k += 64) {
    __m512 xv[4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) xv[j] = _mm512_loadu_ps(x + k + 16 * j);
#pragma GCC unroll 4
    for (int i = 0; i < RM; ++i) {
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        acc[i][j] = _mm512_fmadd_ps(_mm512_loadu_ps(rows[i] + k + 16 * j),
                                    xv[j], acc[i][j]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < RM; ++i) {
    const __m512 sum4 = _mm512_add_ps(_mm512_add_ps(acc[i][0], acc[i][2]),
                                      _mm512_add_ps(acc[i][1], acc[i][3]));
    __m128 sum = _mm_set_ss(_mm512_reduce_add_ps(sum4));
    for (int64_t k = steps_end; k < cols; ++k) {
      sum = _mm_fmadd_ss(_mm_set_ss(rows[i][k]), _mm_set_ss(x[k]), sum);
    }
    y[r + i] = _mm_cvtss_f32(sum);
  }
}

}  // namespace

void MatVecF32(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
               const void* xq, int64_t cols, float* y, void* /*scratch*/) {
  const float* x = static_cast<const float*>(xq);
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) MatVecRows<4>(w, w_row_bytes, r, x, cols, y);
  for (; r < r1; ++r) MatVecRows<1>(w, w_row_bytes, r, x, cols, y);
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
