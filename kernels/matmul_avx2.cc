// AVX2 prefill kernels for Q8_0 weights and for Q4_0 matrices that
// llama.cpp does not repack (rows % 8 != 0), for CPUs without AVX-512 VNNI:
// llama.cpp's float arithmetic (matmul_internal.h) in a register-tiled
// loop, and the same results as matmul_avx512.cc bit for bit. Repacked Q4_0
// matrices (rows % 8 == 0) go through DotQ4_0Repacked, one row at a time,
// with the results of matmul_repack_avx512.cc.
//
// An output's eight float lanes are one ymm: one weight row's block against
// one token's, as in ggml's own AVX2 dot product. AVX2 has no vpdpbusd; the
// lane sums come from the sign trick, |w| (unsigned) times x with w's sign,
// through vpmaddubsw (|w| * |x| <= 128 * 127, so a pair fits int16) and
// vpmaddwd, which give the same exact integers.
//
// With 16 registers, a tile is 2 rows x 3 tokens: 6 accumulators, the rows'
// |w| and scales, and the token's quants. The loops around it are those of
// the AVX-512 file (blocks of 32 rows, chunks of 16 blocks, prefetch of the
// next rows), with 3-token tiles, and the weights are read in place: the
// tile needs them as signed levels, which Q8_0 stores as is. About 95
// GFLOP/s on the development machine (the VecDot loop: 58).

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"
#include "kernels/target.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX2

#include "kernels/simd_avx2.h"  // inside the target region, on purpose

namespace layerpool::kernels::avx2 {
namespace {

constexpr int kTileRows = 2;
constexpr int kTileTokens = 3;
constexpr int64_t kBlockRows = 32;
constexpr int64_t kChunk = 16;

// Block b of a weight row as signed levels.
struct Q8_0Rows {
  using Block = BlockQ8_0;
  static __m256i Levels(const Block& block) { return Load256(block.qs); }
};

struct Q4_0Rows {
  using Block = BlockQ4_0;
  static __m256i Levels(const Block& block) {
    return _mm256_sub_epi8(Nibbles32(block.qs), _mm256_set1_epi8(8));
  }
};

// Blocks [b0, b0 + nb) of R rows (the first at w) against C tokens (token i
// of the tile at tokens[i], pointing at its block b0 in the Q8Batch),
// continuing the accumulators in acc[R][C] unless `first`.
template <typename Format, int R, int C>
void Tile(const uint8_t* w, int64_t row_bytes, const uint8_t* const* tokens,
          int64_t b0, int64_t nb, bool first, __m256* acc_out) {
  using Block = typename Format::Block;
  const Block* rows[R];
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r) {
    rows[r] = reinterpret_cast<const Block*>(w + r * row_bytes) + b0;
  }
  const uint8_t* x[C];
#pragma GCC unroll 3
  for (int c = 0; c < C; ++c) x[c] = tokens[c];
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][C];
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 3
    for (int c = 0; c < C; ++c) {
      acc[r][c] = first ? _mm256_setzero_ps() : acc_out[r * C + c];
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i wq[R], abs_w[R];
    __m256 dw[R];
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      wq[r] = Format::Levels(rows[r][b]);
      abs_w[r] = _mm256_sign_epi8(wq[r], wq[r]);
      dw[r] = _mm256_set1_ps(HalfToFloat(rows[r][b].d));
    }
#pragma GCC unroll 3
    for (int c = 0; c < C; ++c) {
      const uint8_t* p = x[c] + b * kQ8PairBlockBytes;
      const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
      const __m256 dx = _mm256_load_ps(reinterpret_cast<const float*>(p + 128));
#pragma GCC unroll 2
      for (int r = 0; r < R; ++r) {
        const __m256i sum = _mm256_madd_epi16(
            _mm256_maddubs_epi16(abs_w[r], _mm256_sign_epi8(xq, wq[r])), ones);
        acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw[r], dx),
                                    _mm256_cvtepi32_ps(sum), acc[r][c]);
      }
    }
  }
#pragma GCC unroll 2
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 3
    for (int c = 0; c < C; ++c) acc_out[r * C + c] = acc[r][c];
  }
}

using TileFn = void (*)(const uint8_t*, int64_t, const uint8_t* const*, int64_t,
                        int64_t, bool, __m256*);

template <typename Format>
struct Tiles {
  // [R - 1][C - 1]
  static constexpr TileFn kFns[kTileRows][kTileTokens] = {
      {&Tile<Format, 1, 1>, &Tile<Format, 1, 2>, &Tile<Format, 1, 3>},
      {&Tile<Format, 2, 1>, &Tile<Format, 2, 2>, &Tile<Format, 2, 3>}};
};

template <typename Format>
void MatMulRows(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy) {
  const int64_t nb = x.nb;
  const int64_t pair_bytes = nb * kQ8PairBlockBytes;
  const int64_t token_tiles = (x.n_tokens + kTileTokens - 1) / kTileTokens;
  // The accumulators of one token tile across a block of rows.
  __m256 acc[kBlockRows * kTileTokens];
  for (int64_t rb = r0; rb < r1; rb += kBlockRows) {
    const int64_t re = r1 - rb < kBlockRows ? r1 : rb + kBlockRows;
    NextBlockPrefetch prefetch(w, w_row_bytes, re, r1, kBlockRows, token_tiles);
    for (int64_t t0 = 0; t0 < x.n_tokens; t0 += kTileTokens) {
      prefetch.Step();
      const int c = static_cast<int>(
          x.n_tokens - t0 < kTileTokens ? x.n_tokens - t0 : kTileTokens);
      for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
        const int64_t cb = nb - b0 < kChunk ? nb - b0 : kChunk;
        const uint8_t* tokens[kTileTokens];
        for (int i = 0; i < c; ++i) {
          const int64_t t = t0 + i;
          tokens[i] = x.pairs + t / 2 * pair_bytes + 32 * (t % 2) +
                      b0 * kQ8PairBlockBytes;
        }
        for (int64_t r = rb; r < re; r += kTileRows) {
          const int rr =
              static_cast<int>(re - r < kTileRows ? re - r : kTileRows);
          Tiles<Format>::kFns[rr - 1][c - 1](w + r * w_row_bytes, w_row_bytes,
                                             tokens, b0, cb, b0 == 0,
                                             acc + (r - rb) * kTileTokens);
        }
      }
      for (int64_t r = rb; r < re; ++r) {
        const int64_t tile_row = (r - rb) / kTileRows * kTileRows;
        for (int i = 0; i < c; ++i) {
          y[(t0 + i) * ldy + r] = HorizontalSum(
              acc[tile_row * kTileTokens + (r - rb - tile_row) * c + i]);
        }
      }
    }
  }
}

}  // namespace

// QuantizeActivations' Q8_0 in 8 lanes, as ggml's AVX2 quantize_row_q8_0:
// the same amax, scalar d and 1/d, one rounded multiply per quant, rounding
// to nearest even and saturating packs, so the same bits.
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; ++b, x += kQk32, pair += kQ8PairBlockBytes) {
    __m256 v[4];
    __m256 amax8 = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax8),
                          _mm256_extractf128_ps(amax8, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) {
      q[i] = _mm256_cvtps_epi32(
          _mm256_round_ps(_mm256_mul_ps(v[i], vid),
                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // Saturating packs interleave 128-bit lanes; the permute restores order.
    const __m256i qs = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]),
                           _mm256_packs_epi32(q[2], q[3])),
        order);
    _mm256_store_si256(reinterpret_cast<__m256i*>(pair + 32 * half), qs);
    const __m256i sums =
        _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, qs), ones16);
    _mm256_store_si256(reinterpret_cast<__m256i*>(pair + 64 + 32 * half),
                       _mm256_mullo_epi32(sums, _mm256_set1_epi32(-128)));
    _mm256_store_ps(reinterpret_cast<float*>(pair + 128 + 32 * half),
                    _mm256_set1_ps(Fp16ToFp32(Fp32ToFp16(amax / 127.f))));
  }
}

// llama.cpp's repacked Q4_0 (matmul_repack_avx512.cc), one row: each
// block's exact integer sum, then one scalar FMA per block.
float DotQ4_0Repacked(const void* w, const void* x, int64_t n) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const __m256i eight = _mm256_set1_epi8(8);
  __m128 acc = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const __m256i sums =
        DotI8(_mm256_sub_epi8(Nibbles32(wb[i].qs), eight), Load256(xb[i].qs));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sums),
                              _mm256_extracti128_si256(sums, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    const float d = HalfToFloat(wb[i].d) * HalfToFloat(xb[i].d);
    acc = _mm_fmadd_ss(_mm_cvtepi32_ps(s), _mm_set_ss(d), acc);
  }
  return _mm_cvtss_f32(acc);
}

void MatMulQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* /*pack*/) {
  MatMulRows<Q8_0Rows>(w, w_row_bytes, r0, r1, x, y, ldy);
}

void MatMulQ4_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* /*pack*/) {
  MatMulRows<Q4_0Rows>(w, w_row_bytes, r0, r1, x, y, ldy);
}

}  // namespace layerpool::kernels::avx2

LAYERPOOL_END_AVX2
