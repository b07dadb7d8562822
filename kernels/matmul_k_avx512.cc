// Register-tiled prefill for Q4_K, Q5_K and Q6_K matrices (AVX-512 VNNI):
// each
// output is the dot product vec_dot_avx512_k.cc computes, by the same
// instruction sequence (simd_avx512_k.h: unpack a super-block, then
// accumulate it against one token), so the same bits; what the tile saves
// is the unpacking, done once per weight super-block for four tokens
// instead of once per token.
//
// A tile is one row x 4 tokens: per super-block the row's unpacked levels
// and scales take 8 registers, and each token's eight-lane and minimum
// accumulators stay in registers across the whole row.

#include <immintrin.h>

#include <cstdint>

#include "kernels/activation_blocks.h"
#include "kernels/matmul_internal.h"
#include "kernels/target.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx2.h"      // inside the target region, on purpose
#include "kernels/simd_avx512.h"    // likewise
#include "kernels/simd_k.h"         // likewise
#include "kernels/simd_avx512_k.h"  // likewise

namespace layerpool::kernels::avx512 {
namespace {

// Row r against tokens [t, t + RN).
template <int RN>
void Q4KTile(const BlockQ4_K* row, int64_t nsb, const uint8_t* x,
             int64_t x_row_bytes, int64_t t, float* out, int64_t ldy) {
  __m256 acc[RN];
  __m128 acc_min[RN];
  const BlockQ8_K* tokens[RN];
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) {
    acc[j] = _mm256_setzero_ps();
    acc_min[j] = _mm_setzero_ps();
    tokens[j] = reinterpret_cast<const BlockQ8_K*>(x + (t + j) * x_row_bytes);
  }
  for (int64_t i = 0; i < nsb; ++i) {
    const UnpackedQ4K w = UnpackQ4K(row[i]);
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) AccumulateQ4K(w, tokens[j][i], acc[j], acc_min[j]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) {
    out[(t + j) * ldy] = HorizontalSum(acc[j]) + HorizontalSum4(acc_min[j]);
  }
}

template <int RN>
void Q5KTile(const BlockQ5_K* row, int64_t nsb, const uint8_t* x,
             int64_t x_row_bytes, int64_t t, float* out, int64_t ldy) {
  __m256 acc[RN];
  __m128 summs[RN];
  const BlockQ8_K* tokens[RN];
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) {
    acc[j] = _mm256_setzero_ps();
    summs[j] = _mm_setzero_ps();
    tokens[j] = reinterpret_cast<const BlockQ8_K*>(x + (t + j) * x_row_bytes);
  }
  for (int64_t i = 0; i < nsb; ++i) {
    const UnpackedQ5K w = UnpackQ5K(row[i]);
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) AccumulateQ5K(w, tokens[j][i], acc[j], summs[j]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) {
    out[(t + j) * ldy] = HorizontalSum(acc[j]) + _mm_cvtss_f32(summs[j]);
  }
}

template <int RN>
void Q6KTile(const BlockQ6_K* row, int64_t nsb, const uint8_t* x,
             int64_t x_row_bytes, int64_t t, float* out, int64_t ldy) {
  __m256 acc[RN];
  const BlockQ8_K* tokens[RN];
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) {
    acc[j] = _mm256_setzero_ps();
    tokens[j] = reinterpret_cast<const BlockQ8_K*>(x + (t + j) * x_row_bytes);
  }
  for (int64_t i = 0; i < nsb; ++i) {
    const UnpackedQ6K w = UnpackQ6K(row[i]);
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) AccumulateQ6K(w, tokens[j][i], acc[j]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) out[(t + j) * ldy] = HorizontalSum(acc[j]);
}

// Blocks of 16 rows (kept in L2 while every token passes over them) against
// token tiles of 4, one row at a time.
template <class Block, template <int> class Tile>
void MatMulK(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
             const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
             int64_t cols, float* y, int64_t ldy) {
  constexpr int64_t kRowBlock = 16;
  const int64_t nsb = cols / kQkK;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = r1 < rb + kRowBlock ? r1 : rb + kRowBlock;
    for (int64_t t = 0; t < n_tokens; t += 4) {
      for (int64_t r = rb; r < re; ++r) {
        const Block* row = reinterpret_cast<const Block*>(w + r * w_row_bytes);
        switch (n_tokens - t < 4 ? n_tokens - t : 4) {
          case 4: Tile<4>::Run(row, nsb, x, x_row_bytes, t, y + r, ldy); break;
          case 3: Tile<3>::Run(row, nsb, x, x_row_bytes, t, y + r, ldy); break;
          case 2: Tile<2>::Run(row, nsb, x, x_row_bytes, t, y + r, ldy); break;
          default: Tile<1>::Run(row, nsb, x, x_row_bytes, t, y + r, ldy); break;
        }
      }
    }
  }
}

template <int RN>
struct Q4K {
  static void Run(const BlockQ4_K* row, int64_t nsb, const uint8_t* x,
                  int64_t x_row_bytes, int64_t t, float* out, int64_t ldy) {
    Q4KTile<RN>(row, nsb, x, x_row_bytes, t, out, ldy);
  }
};

template <int RN>
struct Q5K {
  static void Run(const BlockQ5_K* row, int64_t nsb, const uint8_t* x,
                  int64_t x_row_bytes, int64_t t, float* out, int64_t ldy) {
    Q5KTile<RN>(row, nsb, x, x_row_bytes, t, out, ldy);
  }
};

template <int RN>
struct Q6K {
  static void Run(const BlockQ6_K* row, int64_t nsb, const uint8_t* x,
                  int64_t x_row_bytes, int64_t t, float* out, int64_t ldy) {
    Q6KTile<RN>(row, nsb, x, x_row_bytes, t, out, ldy);
  }
};

}  // namespace

void MatMulQ4_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy) {
  MatMulK<BlockQ4_K, Q4K>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens,
                          cols, y, ldy);
}

void MatMulQ5_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy) {
  MatMulK<BlockQ5_K, Q5K>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens,
                          cols, y, ldy);
}

void MatMulQ6_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy) {
  MatMulK<BlockQ6_K, Q6K>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens,
                          cols, y, ldy);
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
