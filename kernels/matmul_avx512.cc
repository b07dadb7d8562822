// AVX-512 VNNI kernels for Q8_0 weights, and for Q4_0 matrices that
// llama.cpp does not repack (rows % 8 != 0; the others are in
// matmul_repack_avx512.cc): llama.cpp's float arithmetic (matmul_internal.h)
// in a register-tiled prefill loop, and a one-token Q8_0 kernel
// (MatVecQ8_0, at the end) that runs four rows at once.
//
// Layout: an output's eight float lanes fill half a zmm, so one zmm holds one
// weight row against a pair of tokens: the row's 32-weight block in both
// 256-bit halves, the two tokens' blocks side by side (the Q8Batch layout).
// Per block that is one vpdpbusd for the 64 products, one conversion, one
// multiply for the scales dw * dx and one FMA, with the pair's operands as
// plain 64-byte loads: its quants, its lane biases and its scales.
//
// vpdpbusd multiplies unsigned by signed bytes. The activations stay signed;
// the weights become unsigned as w + 128 (Q8_0: w xor 0x80; Q4_0: its level
// q - 8, plus 128), and each lane starts at -128 times the sum of its four
// activations (Q8Batch::bias), which cancels the offset exactly.
//
// Tiles are 4 rows x 4 pairs: 16 accumulators, the 4 rows' weights and
// scales, and the pair's three operands in 29 of the 32 registers; each
// weight register serves 4 pairs and each activation load 4 rows. Around
// the tile: 32 rows are unpacked (biased quants, float scales: 36 bytes per
// block) into the thread's scratch, where they stay in L2 while every token
// tile of the batch runs over them; columns go in chunks of 16 blocks, so a
// chunk's weights (18 KB) and its token tile's activations (12 KB) are
// reused from L1; between chunks the accumulators wait in memory, which
// float stores keep exact. The next 32 rows are prefetched meanwhile, since
// weights come from DRAM.
//
// Speed (Zen 5 development machine, one core): about 235 GFLOP/s, where the
// element's four vector operations cap it near 320; a VecDot loop manages
// 65. Summing whole blocks in integers first would be faster, but not with
// these outputs' roundings (it is what the repacked Q4_0 order allows:
// about 300 GFLOP/s in matmul_repack_avx512.cc).
//
// Every output is computed by the same instruction sequence whatever its
// tile, so results do not depend on the tiling or on the rows a thread was
// given.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"
#include "kernels/target.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx2.h"    // inside the target region, on purpose
#include "kernels/simd_avx512.h"  // likewise

namespace layerpool::kernels::avx512 {
namespace {

constexpr int kTileRows = 4;
constexpr int kTilePairs = 4;
constexpr int64_t kBlockRows = kTiledBlockRows;  // unpacked at a time
constexpr int64_t kChunk = 16;                   // blocks per column chunk

// Block b of a weight row as unsigned bytes w + 128.
struct Q8_0Rows {
  using Block = BlockQ8_0;
  static __m256i Biased(const Block& block) {
    return _mm256_xor_si256(Load256(block.qs), _mm256_set1_epi8(-128));
  }
};

struct Q4_0Rows {
  using Block = BlockQ4_0;
  static __m256i Biased(const Block& block) {
    return _mm256_add_epi8(Nibbles32(block.qs), _mm256_set1_epi8(120));
  }
};

// Rows [0, n) of w, unpacked for the tiles: block b of row r as biased
// quants at quants + (r * nb + b) * 32 and its scale at scales[r * nb + b].
template <typename Format>
void PackRows(const uint8_t* w, int64_t row_bytes, int64_t n, int64_t nb,
              uint8_t* quants, float* scales) {
  using Block = typename Format::Block;
  for (int64_t r = 0; r < n; ++r) {
    const Block* row = reinterpret_cast<const Block*>(w + r * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(quants + (r * nb + b) * 32),
                         Format::Biased(row[b]));
      scales[r * nb + b] = HalfToFloat(row[b].d);
    }
  }
}

// nb blocks of R packed rows (the first row's first block at quants and
// scales, rows `stride` blocks apart) against C pairs (the first at
// `pairs`, pointing at the same block), continuing the accumulators in
// acc[R][C] unless `first`.
template <int R, int C>
void Tile(const uint8_t* quants, const float* scales, int64_t stride,
          const uint8_t* pairs, int64_t pair_bytes, int64_t nb, bool first,
          __m512* acc_out) {
  __m512 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      acc[r][c] = first ? _mm512_setzero_ps() : acc_out[r * C + c];
    }
  }
  for (int64_t b = 0; b < nb; ++b, pairs += kQ8PairBlockBytes) {
    __m512i wq[R];
    __m512 dw[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      wq[r] = _mm512_broadcast_i64x4(Load256(quants + (r * stride + b) * 32));
      dw[r] = _mm512_set1_ps(scales[r * stride + b]);
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const uint8_t* p = pairs + c * pair_bytes;
      const __m512i xq = _mm512_load_si512(p);
      const __m512i bias = _mm512_load_si512(p + 64);
      const __m512 dx = _mm512_load_ps(p + 128);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512i sum = _mm512_dpbusd_epi32(bias, wq[r], xq);
        acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx),
                                    _mm512_cvtepi32_ps(sum), acc[r][c]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc_out[r * C + c] = acc[r][c];
  }
}

using TileFn = void (*)(const uint8_t*, const float*, int64_t, const uint8_t*,
                        int64_t, int64_t, bool, __m512*);

// [R - 1][C - 1]
constexpr TileFn kTiles[kTileRows][kTilePairs] = {
    {&Tile<1, 1>, &Tile<1, 2>, &Tile<1, 3>, &Tile<1, 4>},
    {&Tile<2, 1>, &Tile<2, 2>, &Tile<2, 3>, &Tile<2, 4>},
    {&Tile<3, 1>, &Tile<3, 2>, &Tile<3, 3>, &Tile<3, 4>},
    {&Tile<4, 1>, &Tile<4, 2>, &Tile<4, 3>, &Tile<4, 4>}};

template <typename Format>
void MatMulRows(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack) {
  const int64_t nb = x.nb;
  const int64_t n_pairs = (x.n_tokens + 1) / 2;
  const int64_t pair_bytes = nb * kQ8PairBlockBytes;
  const int64_t token_tiles = (n_pairs + kTilePairs - 1) / kTilePairs;
  uint8_t* quants = static_cast<uint8_t*>(pack);
  float* scales = reinterpret_cast<float*>(quants + kBlockRows * nb * 32);
  // The accumulators of one token tile across a block of rows.
  alignas(64) __m512 acc[kBlockRows * kTilePairs];
  for (int64_t rb = r0; rb < r1; rb += kBlockRows) {
    const int64_t re = r1 - rb < kBlockRows ? r1 : rb + kBlockRows;
    PackRows<Format>(w + rb * w_row_bytes, w_row_bytes, re - rb, nb, quants,
                     scales);
    NextBlockPrefetch prefetch(w, w_row_bytes, re, r1, kBlockRows, token_tiles);
    for (int64_t tp = 0; tp < n_pairs; tp += kTilePairs) {
      prefetch.Step();
      const int c = static_cast<int>(n_pairs - tp < kTilePairs ? n_pairs - tp
                                                               : kTilePairs);
      for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
        const int64_t cb = nb - b0 < kChunk ? nb - b0 : kChunk;
        for (int64_t r = rb; r < re; r += kTileRows) {
          const int rr =
              static_cast<int>(re - r < kTileRows ? re - r : kTileRows);
          const int64_t first_block = (r - rb) * nb + b0;
          kTiles[rr - 1][c - 1](
              quants + first_block * 32, scales + first_block, nb,
              x.pairs + tp * pair_bytes + b0 * kQ8PairBlockBytes, pair_bytes,
              cb, b0 == 0, acc + (r - rb) * kTilePairs);
        }
      }
      // Each half of an accumulator is one output's eight lanes.
      for (int64_t r = rb; r < re; ++r) {
        const int64_t tile_row = (r - rb) / kTileRows * kTileRows;
        for (int i = 0; i < c; ++i) {
          const __m512 v =
              acc[tile_row * kTilePairs + (r - rb - tile_row) * c + i];
          const int64_t t = 2 * (tp + i);
          y[t * ldy + r] = HorizontalSum(_mm512_castps512_ps256(v));
          if (t + 1 < x.n_tokens) {
            y[(t + 1) * ldy + r] = HorizontalSum(_mm512_extractf32x8_ps(v, 1));
          }
        }
      }
    }
  }
}

}  // namespace

// QuantizeActivations' Q8_0 (quantize_activations.cc) in 16 lanes: the same
// amax, the same scalar d and 1/d, one rounded multiply per quant and a
// round-to-nearest-even conversion, so the same bits.
void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half) {
  const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
  const int round = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b, x += kQk32, pair += kQ8PairBlockBytes) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_min_epi32(
        _mm512_max_epi32(
            _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, vid), round), lo),
        hi);
    const __m512i q1 = _mm512_min_epi32(
        _mm512_max_epi32(
            _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, vid), round), lo),
        hi);
    const __m256i qs = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)),
        _mm512_cvtepi32_epi8(q1), 1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(pair + 32 * half), qs);
    // The sums of each 4 quants: vpdpbusd of ones with the quants.
    const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, qs);
    _mm256_store_si256(reinterpret_cast<__m256i*>(pair + 64 + 32 * half),
                       _mm256_mullo_epi32(sums, _mm256_set1_epi32(-128)));
    _mm256_store_ps(reinterpret_cast<float*>(pair + 128 + 32 * half),
                    _mm256_set1_ps(Fp16ToFp32(Fp32ToFp16(amax / 127.f))));
  }
}

// One token against rows [r0, r1), in VecDot's order (vec_dot_avx2.cc):
// per row eight lanes, one FMA per block in block order, hsum_float_8. A
// row's FMAs form one dependency chain of four cycles a block, too slow to
// keep up with the memory (decode reads every weight once, from DRAM)
// whenever a load stalls. So the rows are cut into kStreams contiguous
// stretches, and row j of every stretch is computed together: independent
// chains, each stretch still read as one long sequential stream (which the
// hardware prefetcher follows; interleaving adjacent rows instead made
// many short streams and lost a fifth of the bandwidth).
//
// The weights go to vpdpbusd as w + 128 (xor 0x80), with lanes starting at
// -128 times their four activations' sum, which cancels the offset exactly
// (as in the tiled kernels) and saves the sign trick per row.
template <int kStreams>
void MatVecQ8_0Streams(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                       int64_t r1, const BlockQ8_0* x, int64_t nb,
                       const int32_t* bias, const float* dx, float* y) {
  const __m512i flip = _mm512_set1_epi8(-128);
  const int64_t len = (r1 - r0) / kStreams;
  for (int64_t j = 0; j < len; ++j) {
    const BlockQ8_0* rows[kStreams];
    __m256 acc[kStreams];
    for (int k = 0; k < kStreams; ++k) {
      rows[k] = reinterpret_cast<const BlockQ8_0*>(
          w + (r0 + k * len + j) * w_row_bytes);
      acc[k] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
      const __m512i xp = Join(Load256(x[i].qs), Load256(x[i + 1].qs));
      const __m512i bp = _mm512_loadu_si512(bias + 8 * i);
#pragma GCC unroll 8
      for (int k = 0; k < kStreams; ++k) {
        const __m512i wp = _mm512_xor_si512(
            Join(Load256(rows[k][i].qs), Load256(rows[k][i + 1].qs)), flip);
        const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(bp, wp, xp));
        acc[k] = _mm256_fmadd_ps(
            _mm256_set1_ps(HalfToFloat(rows[k][i].d) * dx[i]),
            _mm512_castps512_ps256(p), acc[k]);
        acc[k] = _mm256_fmadd_ps(
            _mm256_set1_ps(HalfToFloat(rows[k][i + 1].d) * dx[i + 1]),
            _mm512_extractf32x8_ps(p, 1), acc[k]);
      }
    }
    if (i < nb) {  // an odd last block
      const __m256i xb = Load256(x[i].qs);
      const __m256i bb =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + 8 * i));
#pragma GCC unroll 8
      for (int k = 0; k < kStreams; ++k) {
        const __m256i wb = _mm256_xor_si256(Load256(rows[k][i].qs),
                                            _mm512_castsi512_si256(flip));
        const __m256 p = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(bb, wb, xb));
        acc[k] = _mm256_fmadd_ps(
            _mm256_set1_ps(HalfToFloat(rows[k][i].d) * dx[i]), p, acc[k]);
      }
    }
    for (int k = 0; k < kStreams; ++k) {
      y[r0 + k * len + j] = HorizontalSum(acc[k]);
    }
  }
}

void MatVecQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const void* xq, int64_t cols, float* y, void* scratch) {
  const int64_t nb = cols / kQk32;
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(xq);
  // Per block: the lanes' biases and the activations' scale.
  int32_t* bias = static_cast<int32_t*>(scratch);
  float* dx = reinterpret_cast<float*>(bias + 8 * nb);
  const __m256i all_128 = _mm256_set1_epi8(-128);
  for (int64_t i = 0; i < nb; ++i) {
    const __m256i sums =
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), all_128, Load256(x[i].qs));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(bias + 8 * i),
                        _mm256_sub_epi32(_mm256_setzero_si256(), sums));
    dx[i] = HalfToFloat(x[i].d);
  }
  constexpr int kStreams = 4;
  MatVecQ8_0Streams<kStreams>(w, w_row_bytes, r0, r1, x, nb, bias, dx, y);
  const int64_t done = r0 + (r1 - r0) / kStreams * kStreams;
  // The rows left over, one at a time (same order, same bits).
  for (int64_t r = done; r < r1; ++r) {
    y[r] = DotQ8_0(w + r * w_row_bytes, xq, nb * kQk32);
  }
}

void MatMulQ8_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack) {
  MatMulRows<Q8_0Rows>(w, w_row_bytes, r0, r1, x, y, ldy, pack);
}

void MatMulQ4_0(const uint8_t* w, int64_t w_row_bytes, int64_t r0, int64_t r1,
                const Q8Batch& x, float* y, int64_t ldy, void* pack) {
  MatMulRows<Q4_0Rows>(w, w_row_bytes, r0, r1, x, y, ldy, pack);
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
