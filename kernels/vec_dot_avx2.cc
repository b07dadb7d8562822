// AVX2 (+FMA, F16C) dot products. They compute the same per-block integer
// sums as the scalar references and as ggml's AVX2 kernels (maddubs/madd
// with the sign trick for int8 x int8), then accumulate the scaled sums in
// float vector lanes, so they differ from the references only in the order
// of float additions.
//
// This file is compiled for baseline x86-64; the pragma below gives every
// function in it the AVX2 target, and vec_dot.cc calls them only on CPUs that
// have it. No standard-library template is used inside the region: an inline
// function instantiated here would be AVX2 code that the linker might pick
// for baseline callers elsewhere.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "kernels/simd_avx2.h"  // inside the target region, on purpose

namespace layerpool::kernels::avx2 {
namespace {

// Eight halves to floats.
inline __m256 LoadHalf8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Eight bfloat16 to floats: bfloat16 is the top half of a float.
inline __m256 LoadBf16x8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
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

// Unsigned levels (Q4_1, Q5_1) times the block's int8 activations, summed
// in int32 lanes; no sign trick needed.
inline __m256i DotU8I8(__m256i q, __m256i y) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), _mm256_set1_epi16(1));
}

}  // namespace

float DotF32(const void* w, const void* x, int64_t n) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * k),
                               _mm256_loadu_ps(b + i + 8 * k), acc[k]);
    }
  }
  double sum = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                           _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += a[i] * b[i];
  return static_cast<float>(sum);
}

float DotF16(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(LoadHalf8(a + i + 8 * k),
                               LoadHalf8(b + i + 8 * k), acc[k]);
    }
  }
  double sum = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                           _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += HalfToFloat(a[i]) * HalfToFloat(b[i]);
  return static_cast<float>(sum);
}

float DotBF16(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      acc[k] = _mm256_fmadd_ps(LoadBf16x8(a + i + 8 * k),
                               LoadBf16x8(b + i + 8 * k), acc[k]);
    }
  }
  double sum = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]),
                                           _mm256_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) sum += Bf16ToFp32(a[i]) * Bf16ToFp32(b[i]);
  return static_cast<float>(sum);
}

float DotQ4_0(const void* w, const void* x, int64_t n) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  const __m256i eight = _mm256_set1_epi8(8);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQk32;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = Block32(acc0, _mm256_sub_epi8(Nibbles32(wb[i].qs), eight),
                   HalfToFloat(wb[i].d), xb[i]);
    acc1 = Block32(acc1, _mm256_sub_epi8(Nibbles32(wb[i + 1].qs), eight),
                   HalfToFloat(wb[i + 1].d), xb[i + 1]);
  }
  for (; i < nb; ++i) {
    acc0 = Block32(acc0, _mm256_sub_epi8(Nibbles32(wb[i].qs), eight),
                   HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(_mm256_add_ps(acc0, acc1));
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
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t nb = n / kQk32;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    acc0 = Block32(acc0, Load256(wb[i].qs), HalfToFloat(wb[i].d), xb[i]);
    acc1 = Block32(acc1, Load256(wb[i + 1].qs), HalfToFloat(wb[i + 1].d),
                   xb[i + 1]);
  }
  for (; i < nb; ++i) {
    acc0 = Block32(acc0, Load256(wb[i].qs), HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(_mm256_add_ps(acc0, acc1));
}

float DotIQ4_NL(const void* w, const void* x, int64_t n) {
  const BlockIQ4_NL* wb = static_cast<const BlockIQ4_NL*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  // The 16 levels in both 128-bit lanes, looked up with pshufb.
  const __m128i levels =
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4NlValues));
  const __m256i table = _mm256_set_m128i(levels, levels);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const __m256i q = _mm256_shuffle_epi8(table, Nibbles32(wb[i].qs));
    acc = Block32(acc, q, HalfToFloat(wb[i].d), xb[i]);
  }
  return HorizontalSum(acc);
}

}  // namespace layerpool::kernels::avx2

#pragma GCC pop_options
