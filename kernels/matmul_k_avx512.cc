// Register-tiled prefill for Q4_K, Q5_K and Q6_K matrices (AVX-512 VNNI):
// each output is the dot product vec_dot_avx512_k.cc computes, by the same
// instruction sequence (simd_avx512_k.h's formats: unpack a super-block,
// then accumulate it against one token), so the same bits; what the tile
// saves is the unpacking, done once per weight super-block for four tokens
// instead of once per token.
//
// A tile is one row x 4 tokens: per super-block the row's unpacked levels
// and scales take 8 registers, and each token's eight-lane and minimum
// accumulators stay in registers across the whole row.
//
// One token (MatVecQ4_K and the others, for decode) is the dot product's
// loop over rows, inline, with the activations' sub-block sums computed
// once rather than once per row.

#include <immintrin.h>

#include <cstdint>
#include <vector>

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

// SubBlockSumsK of every super-block of tokens [0, n_tokens), eight int16
// each, token-major (none for a format without minimum terms).
template <class Format>
void SubBlockSums(const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
                  int64_t nsb, int16_t* sums) {
  if (!Format::kHasMins) return;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const BlockQ8_K* token =
        reinterpret_cast<const BlockQ8_K*>(x + t * x_row_bytes);
    for (int64_t i = 0; i < nsb; ++i) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(sums + 8 * (t * nsb + i)),
                       SubBlockSumsK(token[i].bsums));
    }
  }
}

template <class Format>
__m128i SumsAt(const int16_t* sums, int64_t k) {
  return Format::kHasMins
             ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(sums + 8 * k))
             : _mm_setzero_si128();
}

// Row `row` against tokens [t, t + RN).
template <class Format, int RN>
void Tile(const typename Format::Block* row, int64_t nsb, const uint8_t* x,
          int64_t x_row_bytes, const int16_t* sums, int64_t t, float* out,
          int64_t ldy) {
  __m256 acc[RN];
  __m128 mins[RN];
  const BlockQ8_K* tokens[RN];
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) {
    acc[j] = _mm256_setzero_ps();
    mins[j] = _mm_setzero_ps();
    tokens[j] = reinterpret_cast<const BlockQ8_K*>(x + (t + j) * x_row_bytes);
  }
  for (int64_t i = 0; i < nsb; ++i) {
    const UnpackedK w = Format::Unpack(row[i]);
#pragma GCC unroll 4
    for (int j = 0; j < RN; ++j) {
      const int64_t k = (t + j) * nsb + i;
      Format::Accumulate(w, tokens[j][i], SumsAt<Format>(sums, k), acc[j],
                         mins[j]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < RN; ++j) out[(t + j) * ldy] = Format::Result(acc[j], mins[j]);
}

// Blocks of 16 rows (kept in L2 while every token passes over them) against
// token tiles of 4, one row at a time.
template <class Format>
void MatMulK(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
             const uint8_t* x, int64_t x_row_bytes, int64_t n_tokens,
             int64_t cols, float* y, int64_t ldy) {
  using Block = typename Format::Block;
  constexpr int64_t kRowBlock = 16;
  const int64_t nsb = cols / kQkK;
  thread_local std::vector<int16_t> sums;
  if (Format::kHasMins) sums.resize(static_cast<size_t>(8 * n_tokens * nsb));
  SubBlockSums<Format>(x, x_row_bytes, n_tokens, nsb, sums.data());
  const int16_t* s = sums.data();
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = r1 < rb + kRowBlock ? r1 : rb + kRowBlock;
    for (int64_t t = 0; t < n_tokens; t += 4) {
      for (int64_t r = rb; r < re; ++r) {
        const Block* row = reinterpret_cast<const Block*>(w + r * w_row_bytes);
        float* out = y + r;
        switch (n_tokens - t < 4 ? n_tokens - t : 4) {
          case 4: Tile<Format, 4>(row, nsb, x, x_row_bytes, s, t, out, ldy); break;
          case 3: Tile<Format, 3>(row, nsb, x, x_row_bytes, s, t, out, ldy); break;
          case 2: Tile<Format, 2>(row, nsb, x, x_row_bytes, s, t, out, ldy); break;
          default: Tile<Format, 1>(row, nsb, x, x_row_bytes, s, t, out, ldy); break;
        }
      }
    }
  }
}

// One token against rows [r0, r1): each output the dot product
// vec_dot_avx512_k.cc computes, the sub-block sums taken from `scratch`.
template <class Format>
void MatVecK(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
             const void* xq, int64_t cols, float* y, void* scratch) {
  using Block = typename Format::Block;
  const int64_t nsb = cols / kQkK;
  const BlockQ8_K* x = static_cast<const BlockQ8_K*>(xq);
  int16_t* sums = static_cast<int16_t*>(scratch);
  SubBlockSums<Format>(static_cast<const uint8_t*>(xq), 0, 1, nsb, sums);
  for (int64_t r = r0; r < r1; ++r) {
    const Block* row = reinterpret_cast<const Block*>(w + r * w_row_bytes);
    __m256 acc = _mm256_setzero_ps();
    __m128 mins = _mm_setzero_ps();
    for (int64_t i = 0; i < nsb; ++i) {
      Format::Accumulate(Format::Unpack(row[i]), x[i], SumsAt<Format>(sums, i),
                         acc, mins);
    }
    y[r] = Format::Result(acc, mins);
  }
}

}  // namespace

void MatVecQ4_K(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch) {
  MatVecK<Q4KFormat>(w, w_row_bytes, r0, r1, xq, cols, y, scratch);
}

void MatVecQ5_K(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch) {
  MatVecK<Q5KFormat>(w, w_row_bytes, r0, r1, xq, cols, y, scratch);
}

void MatVecQ6_K(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch) {
  MatVecK<Q6KFormat>(w, w_row_bytes, r0, r1, xq, cols, y, scratch);
}

void MatMulQ4_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy) {
  MatMulK<Q4KFormat>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens, cols,
                     y, ldy);
}

void MatMulQ5_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy) {
  MatMulK<Q5KFormat>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens, cols,
                     y, ldy);
}

void MatMulQ6_KBatch(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                     int64_t r1, const uint8_t* x, int64_t x_row_bytes,
                     int64_t n_tokens, int64_t cols, float* y, int64_t ldy) {
  MatMulK<Q6KFormat>(w, w_row_bytes, r0, r1, x, x_row_bytes, n_tokens, cols,
                     y, ldy);
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
