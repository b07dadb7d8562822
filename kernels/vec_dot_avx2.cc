// AVX2 (+FMA, F16C) dot products. They compute the same per-block integer
// sums as the scalar references (maddubs/madd with the sign trick for
// int8 x int8), and do the float work exactly as ggml's x86 ggml_vec_dot_*
// do for one token in llama.cpp's AVX-512 build (ggml-cpu-quants.c and
// ggml-cpu.c, early 2025), so that decode reproduces its logits bit for bit:
//  - Q4_0, Q5_0, Q8_0: eight float lanes, lane l holding the products of
//    weights 4l..4l+3 of every block; per block, in block order,
//      acc[l] = fma(fl(dw * dx), p[l], acc[l]),
//    and then ggml's hsum_float_8,
//      ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
//      ((acc[1] + acc[5]) + (acc[3] + acc[7])).
//  - Q4_1, Q5_1: the same lanes, plus the blocks' m * s, summed in a scalar
//    float in block order (each product is exact: two halves) and added
//    last.
//  - IQ4_NL: the same lanes, but even and odd blocks in two accumulators
//    that are added lane by lane before the horizontal sum; an odd last
//    block is added as one fused fl(dw * dx) * isum (ggml's scalar tail,
//    which its C compiler fuses).
//  - F32, F16: 64-element steps into four 16-lane accumulators (an AVX-512
//    register each, here two ymm), reduced (0 + 2) + (1 + 3) and then
//    across lanes as _mm512_reduce_add_ps does; the tail in a float with
//    fused multiply-adds (F32) or in a double (F16).
//  - BF16: vdpbf16ps on 32-element halves of each 64-element step into two
//    16-lane accumulators, each reduced into a double, the tail in it.
// llama.cpp computes a batch of IQ4_NL and (when the shapes allow) of the
// float types with llamafile's tinyBLAS instead, which keeps one
// accumulator per output: the *Batch functions, for MatMul (RowDotFn).
//
// Everything below is in an AVX2 region (target.h); vec_dot.cc calls it only
// on CPUs that have it.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/target.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX2

#include "kernels/simd_avx2.h"  // inside the target region, on purpose

namespace layerpool::kernels::avx2 {
namespace {

// Sixteen floats in two ymm: the lanes of one AVX-512 register, which the
// float dot products of ggml's AVX-512 build (llama.cpp's on the reference
// machine) accumulate in.
struct Vec16 {
  __m256 lo, hi;
};

inline Vec16 Load16(const float* p) {
  return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}

inline Vec16 LoadHalf16(const uint16_t* p) {
  return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
          _mm256_cvtph_ps(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}

// Elements 2j (even) or 2j + 1 (odd) of 16 bfloat16 pairs, j = 0..7, as
// floats: bfloat16 is the top half of a float.
inline __m256 Bf16Even(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(Load256(p), 16));
}
inline __m256 Bf16Odd(const uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_and_si256(Load256(p), _mm256_set1_epi32(-65536)));
}

inline float FusedMultiplyAdd(float a, float b, float c) {
  return _mm_cvtss_f32(
      _mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
}

// A 16-lane float accumulator.
struct Lanes16 {
  // A constructor of our own: an implicit one would not take the file's
  // target attributes.
  Lanes16() : v{_mm256_setzero_ps(), _mm256_setzero_ps()} {}

  Vec16 v;

  void Fma(Vec16 a, Vec16 b) {
    v.lo = _mm256_fmadd_ps(a.lo, b.lo, v.lo);
    v.hi = _mm256_fmadd_ps(a.hi, b.hi, v.hi);
  }

  // AVX512-BF16's vdpbf16ps on 32 bfloat16 of a and b: lane j adds the
  // product of elements 2j + 1, then that of elements 2j, each rounded once
  // (bfloat16 products are exact in float, so an FMA rounds like the
  // instruction). Unlike it, denormals are not flushed to zero.
  void DotBf16Pairs(const uint16_t* a, const uint16_t* b) {
    v.lo = _mm256_fmadd_ps(Bf16Odd(a), Bf16Odd(b), v.lo);
    v.lo = _mm256_fmadd_ps(Bf16Even(a), Bf16Even(b), v.lo);
    v.hi = _mm256_fmadd_ps(Bf16Odd(a + 16), Bf16Odd(b + 16), v.hi);
    v.hi = _mm256_fmadd_ps(Bf16Even(a + 16), Bf16Even(b + 16), v.hi);
  }

  // GCC's _mm512_reduce_add_ps: the halves added lane by lane, then
  // hsum_float_8's order.
  float Reduce() const { return HorizontalSum(_mm256_add_ps(v.hi, v.lo)); }
};

// ggml's GGML_F32_VEC_REDUCE of four accumulators:
// ((a0 + a2) + (a1 + a3)), then reduced as one.
inline float Reduce4x16(const Lanes16 (&acc)[4]) {
  Lanes16 sum;
  sum.v.lo = _mm256_add_ps(_mm256_add_ps(acc[0].v.lo, acc[2].v.lo),
                           _mm256_add_ps(acc[1].v.lo, acc[3].v.lo));
  sum.v.hi = _mm256_add_ps(_mm256_add_ps(acc[0].v.hi, acc[2].v.hi),
                           _mm256_add_ps(acc[1].v.hi, acc[3].v.hi));
  return sum.Reduce();
}

// The per-block body shared by the Q8_0-activation formats: `weights` are the
// block's 32 signed levels.
inline __m256 Block32(__m256 acc, __m256i weights, float dw,
                      const BlockQ8_0& y) {
  const __m256 d = _mm256_set1_ps(dw * HalfToFloat(y.d));
  const __m256i sums = DotI8(weights, Load256(y.qs));
  return _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc);
}

// 32 bytes from the 32 bits of a Q5 block's qh: byte j is 0xFF when bit j
// (the fifth bit of weight j) is set, else 0. Each byte of the word is
// spread over 8 bytes, then each of those keeps "its" bit: OR-ing in every
// other bit and comparing with all-ones.
inline __m256i BytesFromBits32(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(bits)),
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                        0x0101010101010101, 0x0000000000000000));
  const __m256i others = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
  return _mm256_cmpeq_epi8(_mm256_or_si256(spread, others),
                           _mm256_set1_epi64x(-1));
}

// The unsigned levels (0..31) of a Q5 block: nibbles plus the fifth bit.
inline __m256i Q5Levels(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(
      Nibbles32(qs),
      _mm256_and_si256(BytesFromBits32(qh), _mm256_set1_epi8(0x10)));
}

// The 16 IQ4_NL levels in both 128-bit lanes, for pshufb lookups.
inline __m256i Iq4NlTable() {
  const __m128i levels =
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4NlValues));
  return _mm256_set_m128i(levels, levels);
}

// The exact sum of eight int32 lanes.
inline int HorizontalSumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
                            _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Unsigned levels (Q4_1, Q5_1) times the block's int8 activations, summed
// in int32 lanes; no sign trick needed.
inline __m256i DotU8I8(__m256i q, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), _mm256_set1_epi16(1));
}

}  // namespace

float DotF32(const void* w, const void* x, int64_t n) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  const int64_t np = n & ~int64_t{63};
  Lanes16 acc[4];
  for (int64_t i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      acc[j].Fma(Load16(a + i + 16 * j), Load16(b + i + 16 * j));
    }
  }
  float sum = Reduce4x16(acc);
  // ggml sums the tail in a float, and its compiler (C, fp-contract=fast)
  // fuses each multiply into that add.
  for (int64_t i = np; i < n; ++i) sum = FusedMultiplyAdd(a[i], b[i], sum);
  return sum;
}

float DotF16(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  const int64_t np = n & ~int64_t{63};
  Lanes16 acc[4];
  for (int64_t i = 0; i < np; i += 64) {
    for (int j = 0; j < 4; ++j) {
      acc[j].Fma(LoadHalf16(a + i + 16 * j), LoadHalf16(b + i + 16 * j));
    }
  }
  double sum = Reduce4x16(acc);
  // Products of two halves are exact in float.
  for (int64_t i = np; i < n; ++i) sum += HalfToFloat(a[i]) * HalfToFloat(b[i]);
  return static_cast<float>(sum);
}

float DotBF16(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  int64_t i = 0;
  Lanes16 first, second;
  for (; i + 64 <= n; i += 64) {
    first.DotBf16Pairs(a + i, b + i);
    second.DotBf16Pairs(a + i + 32, b + i + 32);
  }
  double sum = 0;
  sum += first.Reduce();
  sum += second.Reduce();
  // Products of two bfloat16 are exact in float.
  for (; i < n; ++i) sum += Bf16ToFp32(a[i]) * Bf16ToFp32(b[i]);
  return static_cast<float>(sum);
}

float DotF32Batch(const void* w, const void* x, int64_t n) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  Lanes16 acc;
  for (int64_t i = 0; i < n; i += 16) acc.Fma(Load16(a + i), Load16(b + i));
  return acc.Reduce();
}

float DotF16Batch(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  Lanes16 acc;
  for (int64_t i = 0; i < n; i += 16) {
    acc.Fma(LoadHalf16(a + i), LoadHalf16(b + i));
  }
  return acc.Reduce();
}

float DotBF16Batch(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  Lanes16 acc;
  for (int64_t i = 0; i < n; i += 32) acc.DotBf16Pairs(a + i, b + i);
  return acc.Reduce();
}

float DotQ4_0(const void* w, const void* x, int64_t n) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQk32; ++i) {
    acc = Block32(acc, _mm256_sub_epi8(Nibbles32(wb[i].qs), eight),
                  HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

float DotQ4_1(const void* w, const void* x, int64_t n) {
  const BlockQ4_1* wb = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* xb = static_cast<const BlockQ8_1*>(x);
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0;  // sum of m * s, as ggml keeps it: in scalar float
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const __m256 d =
        _mm256_set1_ps(HalfToFloat(wb[i].d) * HalfToFloat(xb[i].d));
    const __m256i sums = DotU8I8(Nibbles32(wb[i].qs), Load256(xb[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc);
    offsets += HalfToFloat(wb[i].m) * HalfToFloat(xb[i].s);
  }
  return HorizontalSum(acc) + offsets;
}

float DotQ5_0(const void* w, const void* x, int64_t n) {
  const BlockQ5_0* wb = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const __m256i sixteen = _mm256_set1_epi8(16);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const __m256i q = _mm256_sub_epi8(Q5Levels(wb[i].qs, wb[i].qh), sixteen);
    acc = Block32(acc, q, HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

float DotQ5_1(const void* w, const void* x, int64_t n) {
  const BlockQ5_1* wb = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* xb = static_cast<const BlockQ8_1*>(x);
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const __m256 d =
        _mm256_set1_ps(HalfToFloat(wb[i].d) * HalfToFloat(xb[i].d));
    const __m256i sums =
        DotU8I8(Q5Levels(wb[i].qs, wb[i].qh), Load256(xb[i].qs));
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sums), acc);
    offsets += HalfToFloat(wb[i].m) * HalfToFloat(xb[i].s);
  }
  return HorizontalSum(acc) + offsets;
}

float DotQ8_0(const void* w, const void* x, int64_t n) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQk32; ++i) {
    acc = Block32(acc, Load256(wb[i].qs), HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

float DotIQ4_NL(const void* w, const void* x, int64_t n) {
  const BlockIQ4_NL* wb = static_cast<const BlockIQ4_NL*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const __m256i table = Iq4NlTable();
  const int64_t nb = n / kQk32;
  __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    even = Block32(even, _mm256_shuffle_epi8(table, Nibbles32(wb[i].qs)),
                   HalfToFloat(wb[i].d), xb[i]);
    odd = Block32(odd, _mm256_shuffle_epi8(table, Nibbles32(wb[i + 1].qs)),
                  HalfToFloat(wb[i + 1].d), xb[i + 1]);
  }
  float sum = HorizontalSum(_mm256_add_ps(even, odd));
  if (i < nb) {  // ggml adds an odd last block in scalar code, fused
    const __m256i sums = DotI8(_mm256_shuffle_epi8(table, Nibbles32(wb[i].qs)),
                               Load256(xb[i].qs));
    const float d = HalfToFloat(xb[i].d) * HalfToFloat(wb[i].d);
    sum = _mm_cvtss_f32(_mm_fmadd_ss(
        _mm_set_ss(d), _mm_set_ss(static_cast<float>(HorizontalSumI32(sums))),
        _mm_set_ss(sum)));
  }
  return sum;
}

float DotIQ4_NLBatch(const void* w, const void* x, int64_t n) {
  const BlockIQ4_NL* wb = static_cast<const BlockIQ4_NL*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const __m256i table = Iq4NlTable();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const __m256i q = _mm256_shuffle_epi8(table, Nibbles32(wb[i].qs));
    acc = Block32(acc, q, HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

}  // namespace layerpool::kernels::avx2

LAYERPOOL_END_AVX2
