// Q4_0 as llama.cpp computes it on x86: at load time ggml repacks every
// Q4_0 matrix whose row count is a multiple of 8 into blocks of 8 rows
// interleaved (ggml-cpu-aarch64.cpp, q4_0_8x8, chosen whenever the CPU has
// AVX2), and multiplies it with ggml_gemv_q4_0_8x8_q8_0 for one token and
// ggml_gemm_q4_0_8x8_q8_0 for a batch (the last n_tokens % 4 tokens by the
// gemv). Both compute every output alike:
//   acc = 0; for each block b in order:
//     acc = fma(float(isum_b), fl(dw_b * dx_b), acc)
// where isum_b is the block's exact integer dot product (32 products), and
// the output is acc: no lanes, no horizontal sum. The activations are
// quantized as by quantize_row_q8_0, so MatMul's Q8_0 blocks serve. This
// file computes that order with AVX-512 VNNI (matmul_internal.h).
//
// Integer work: the weights are fed to vpdpbusd as their unsigned nibbles
// q (0..15), and each sum starts at -8 times the block's activation sum,
// which turns sum(q * x) into sum((q - 8) * x) exactly.
//
// Decode (MatVecQ4_0x8): eight rows at once, one per float lane, so that a
// block costs one FMA for eight rows. The rows are row j of eight
// contiguous stretches (see MatVecQ8_0: long sequential streams keep the
// hardware prefetcher useful); each row's eight-lane partial sums are
// folded into its lane by a tree of horizontal adds.
//
// Prefill (MatMulQ4_0x8): 16 rows per zmm. A block of 32 rows is first
// packed so that, for each block b and each group of four weights, the 16
// rows' four nibbles lie in one 64-byte line; one vpdpbusd with the token's
// four activations broadcast then adds four products to each of 16 rows'
// sums, and eight of them give the whole block. Tiles of 2 x 16 rows by 4
// tokens keep 8 such sums and 8 float accumulators in registers.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"
#include "kernels/target.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx2.h"  // inside the target region, on purpose

namespace layerpool::kernels::avx512 {
namespace {

// -8 times each lane's four activations, the start of a lane's sum.
inline __m256i MinusEightQuads(const BlockQ8_0& x) {
  const __m256i quads = _mm256_dpbusd_epi32(
      _mm256_setzero_si256(), _mm256_set1_epi8(1), Load256(x.qs));
  return _mm256_mullo_epi32(quads, _mm256_set1_epi32(-8));
}

// Lane k of the result: the sum of s[k]'s eight lanes (exact).
inline __m256i SumEach(const __m256i (&s)[8]) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]),
                                      _mm256_hadd_epi32(s[2], s[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]),
                                      _mm256_hadd_epi32(s[6], s[7]));
  // a holds s0..s3's low-half sums in its low 128 bits and high-half sums
  // in its high 128 bits; b likewise for s4..s7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                          _mm256_permute2x128_si256(a, b, 0x31));
}

// ---------------------------------------------------------------- decode

void MatVecEightStreams(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                        int64_t len, const BlockQ8_0* x, int64_t nb,
                        const __m256i* bias, float* y) {
  for (int64_t j = 0; j < len; ++j) {
    const BlockQ4_0* rows[8];
    for (int k = 0; k < 8; ++k) {
      rows[k] = reinterpret_cast<const BlockQ4_0*>(
          w + (r0 + k * len + j) * w_row_bytes);
    }
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i xb = Load256(x[b].qs);
      __m256i s[8];
      uint16_t dw[8];
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) {
        s[k] = _mm256_dpbusd_epi32(bias[b], Nibbles32(rows[k][b].qs), xb);
        dw[k] = rows[k][b].d;
      }
      const __m256 d = _mm256_mul_ps(
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<__m128i*>(dw))),
          _mm256_set1_ps(HalfToFloat(x[b].d)));
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(SumEach(s)), d, acc);
    }
    alignas(32) float out[8];
    _mm256_store_ps(out, acc);
    for (int k = 0; k < 8; ++k) y[r0 + k * len + j] = out[k];
  }
}

// ---------------------------------------------------------------- prefill

constexpr int kGroupRows = 16;  // rows per zmm
constexpr int kTileGroups = 2;
constexpr int kTileTokens = 4;
constexpr int64_t kBlockRows = kTiledBlockRows;
constexpr int64_t kChunk = 16;  // blocks per column chunk
static_assert(kBlockRows % kGroupRows == 0);

// Rows [0, n) of w (n <= kBlockRows; missing rows of the last group are
// zero) packed by groups of 16: for group g and block b, eight 64-byte
// lines at quants + ((g * nb + b) * 8 + q) * 64 hold weights 4q..4q+3 of
// the 16 rows (4 bytes per row, rows in order), and the rows' scales are
// at scales + (g * nb + b) * 16.
void PackGroups(const uint8_t* w, int64_t row_bytes, int64_t n, int64_t nb,
                uint8_t* quants, float* scales) {
  const int64_t groups = (n + kGroupRows - 1) / kGroupRows;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      // Unpacked nibbles of the group's rows: row r's 32 weights as 8
      // dwords, which a transpose turns into the lines.
      alignas(64) uint32_t words[kGroupRows][8];
      alignas(64) float d[kGroupRows];
      for (int r = 0; r < kGroupRows; ++r) {
        const int64_t row = g * kGroupRows + r;
        if (row < n) {
          const BlockQ4_0& block =
              reinterpret_cast<const BlockQ4_0*>(w + row * row_bytes)[b];
          _mm256_store_si256(reinterpret_cast<__m256i*>(words[r]),
                             Nibbles32(block.qs));
          d[r] = HalfToFloat(block.d);
        } else {
          std::memset(words[r], 0, sizeof(words[r]));
          d[r] = 0.0f;
        }
      }
      uint32_t* line = reinterpret_cast<uint32_t*>(quants) + (g * nb + b) * 128;
      for (int q = 0; q < 8; ++q) {
        for (int r = 0; r < kGroupRows; ++r) line[q * 16 + r] = words[r][q];
      }
      std::memcpy(scales + (g * nb + b) * kGroupRows, d, sizeof(d));
    }
  }
}

// One token's block b, as the tiles read it.
struct TokenBlock {
  int32_t quads[8];  // the 32 quants, four to a dword
  __m512i start;     // -8 times their sum
  __m512 dx;
};

inline TokenBlock ReadToken(const uint8_t* pair_block, int half) {
  const uint8_t* p = pair_block + 32 * half;
  // Q8Batch stores -128 times each lane's quad sum; their total over the
  // eight lanes, divided by 16, is -8 times the block's sum (exactly).
  const __m256i bias =
      _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64));
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(bias),
                            _mm256_extracti128_si256(bias, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  float dx;
  std::memcpy(&dx, p + 128, sizeof(dx));
  TokenBlock t;
  std::memcpy(t.quads, p, sizeof(t.quads));
  t.start = _mm512_set1_epi32(_mm_cvtsi128_si32(s) / 16);
  t.dx = _mm512_set1_ps(dx);
  return t;
}

// nb blocks of G packed groups (the first group's block at quants/scales,
// groups `stride` blocks apart) against C tokens, continuing acc[G][C]
// unless `first`.
template <int G, int C>
void Tile(const uint8_t* quants, const float* scales, int64_t stride,
          const uint8_t* const* tokens, const int* halves, int64_t nb,
          bool first, __m512* acc_out) {
  __m512 acc[G][C];
#pragma GCC unroll 2
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      acc[g][c] = first ? _mm512_setzero_ps() : acc_out[g * C + c];
    }
  }
  for (int64_t b = 0; b < nb; ++b) {
    TokenBlock t[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      t[c] = ReadToken(tokens[c] + b * kQ8PairBlockBytes, halves[c]);
    }
    __m512i sum[G][C];
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) sum[g][c] = t[c].start;
    }
    for (int q = 0; q < 8; ++q) {
#pragma GCC unroll 2
      for (int g = 0; g < G; ++g) {
        const __m512i wq = _mm512_load_si512(
            quants + ((g * stride + b) * 8 + q) * 64);
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c) {
          sum[g][c] = _mm512_dpbusd_epi32(sum[g][c], wq,
                                          _mm512_set1_epi32(t[c].quads[q]));
        }
      }
    }
#pragma GCC unroll 2
    for (int g = 0; g < G; ++g) {
      const __m512 dw = _mm512_load_ps(scales + (g * stride + b) * kGroupRows);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[g][c]),
                                    _mm512_mul_ps(dw, t[c].dx), acc[g][c]);
      }
    }
  }
#pragma GCC unroll 2
  for (int g = 0; g < G; ++g) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc_out[g * C + c] = acc[g][c];
  }
}

using TileFn = void (*)(const uint8_t*, const float*, int64_t,
                        const uint8_t* const*, const int*, int64_t, bool,
                        __m512*);

// [G - 1][C - 1]
constexpr TileFn kTiles[kTileGroups][kTileTokens] = {
    {&Tile<1, 1>, &Tile<1, 2>, &Tile<1, 3>, &Tile<1, 4>},
    {&Tile<2, 1>, &Tile<2, 2>, &Tile<2, 3>, &Tile<2, 4>}};

}  // namespace

void MatVecQ4_0x8(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                  int64_t r1, const void* xq, int64_t cols, float* y,
                  void* scratch) {
  const int64_t nb = cols / kQk32;
  const BlockQ8_0* x = static_cast<const BlockQ8_0*>(xq);
  __m256i* bias = static_cast<__m256i*>(scratch);  // 64-byte aligned
  for (int64_t b = 0; b < nb; ++b) bias[b] = MinusEightQuads(x[b]);
  const int64_t len = (r1 - r0) / 8;
  MatVecEightStreams(w, w_row_bytes, r0, len, x, nb, bias, y);
  // The last (r1 - r0) % 8 rows, one at a time (same order, same bits).
  for (int64_t r = r0 + 8 * len; r < r1; ++r) {
    y[r] = avx2::DotQ4_0Repacked(w + r * w_row_bytes, xq, nb * kQk32);
  }
}

void MatMulQ4_0x8(const uint8_t* w, int64_t w_row_bytes, int64_t r0,
                  int64_t r1, const Q8Batch& x, float* y, int64_t ldy,
                  void* pack) {
  const int64_t nb = x.nb;
  const int64_t pair_bytes = nb * kQ8PairBlockBytes;
  const int64_t token_tiles = (x.n_tokens + kTileTokens - 1) / kTileTokens;
  uint8_t* quants = static_cast<uint8_t*>(pack);
  float* scales = reinterpret_cast<float*>(quants + kBlockRows * nb * 32);
  constexpr int kGroups = kBlockRows / kGroupRows;
  alignas(64) __m512 acc[kGroups * kTileTokens];
  for (int64_t rb = r0; rb < r1; rb += kBlockRows) {
    const int64_t re = r1 - rb < kBlockRows ? r1 : rb + kBlockRows;
    PackGroups(w + rb * w_row_bytes, w_row_bytes, re - rb, nb, quants, scales);
    const int groups = static_cast<int>((re - rb + kGroupRows - 1) / kGroupRows);
    NextBlockPrefetch prefetch(w, w_row_bytes, re, r1, kBlockRows, token_tiles);
    for (int64_t t0 = 0; t0 < x.n_tokens; t0 += kTileTokens) {
      prefetch.Step();
      const int c = static_cast<int>(
          x.n_tokens - t0 < kTileTokens ? x.n_tokens - t0 : kTileTokens);
      for (int64_t b0 = 0; b0 < nb; b0 += kChunk) {
        const int64_t cb = nb - b0 < kChunk ? nb - b0 : kChunk;
        const uint8_t* tokens[kTileTokens];
        int halves[kTileTokens];
        for (int i = 0; i < c; ++i) {
          const int64_t t = t0 + i;
          tokens[i] = x.pairs + t / 2 * pair_bytes + b0 * kQ8PairBlockBytes;
          halves[i] = static_cast<int>(t % 2);
        }
        for (int g = 0; g < groups; g += kTileGroups) {
          const int gg = groups - g < kTileGroups ? groups - g : kTileGroups;
          kTiles[gg - 1][c - 1](quants + g * nb * 512 + b0 * 512,
                                scales + (g * nb + b0) * kGroupRows, nb,
                                tokens, halves, cb, b0 == 0,
                                acc + g * kTileTokens);
        }
      }
      // Lane l of a group's accumulator is row 16 * group + l's output.
      for (int g = 0; g < groups; ++g) {
        const int64_t row = rb + g * kGroupRows;
        const int n_rows = static_cast<int>(re - row < kGroupRows ? re - row
                                                                  : kGroupRows);
        const __mmask16 keep = static_cast<__mmask16>((1u << n_rows) - 1);
        const int gg = g % kTileGroups;
        const int tile = g - gg;
        for (int i = 0; i < c; ++i) {
          _mm512_mask_storeu_ps(y + (t0 + i) * ldy + row, keep,
                                acc[tile * kTileTokens + gg * c + i]);
        }
      }
    }
  }
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
