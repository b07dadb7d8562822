// Small AVX2 building blocks shared by the SIMD dot products.
//
// Include this header only inside a LAYERPOOL_BEGIN_AVX2 or _AVX512 region
// (target.h): its functions take the target of the region they are
// compiled in. They live in an unnamed namespace, so each file gets its own
// copies and no AVX2 code can leak into a baseline translation unit through
// the linker.
#ifndef LAYERPOOL_KERNELS_SIMD_AVX2_H_
#define LAYERPOOL_KERNELS_SIMD_AVX2_H_

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace layerpool::kernels {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i Load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The 32 nibbles of 16 bytes as 32 bytes in 0..15: low nibbles first (the
// weights j = 0..15 of a 32-block), then high nibbles (j = 16..31).
inline __m256i Nibbles32(const uint8_t* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Signed int8 x signed int8, four adjacent products summed per int32 lane.
// maddubs wants an unsigned left operand, so move x's sign onto y. Exact for
// |x| <= 128 and |y| <= 127 (no int16 saturation), as ggml relies on too.
inline __m256i DotI8(__m256i x, __m256i y) {
  const __m256i ax = _mm256_sign_epi8(x, x);
  const __m256i sy = _mm256_sign_epi8(y, x);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1));
}

// Shuffle masks that broadcast int16 element k (0..7) of a 128-bit lane
// across the lane: bytes 2k, 2k + 1 repeated.
struct Broadcast16Masks {
  alignas(32) uint8_t bytes[8][32];
};

constexpr Broadcast16Masks MakeBroadcast16Masks() {
  Broadcast16Masks masks{};
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i < 32; ++i) {
      masks.bytes[k][i] = static_cast<uint8_t>(2 * k + (i & 1));
    }
  }
  return masks;
}

constexpr Broadcast16Masks kBroadcast16 = MakeBroadcast16Masks();

inline __m256i BroadcastInt16(__m256i v, int k) {
  return _mm256_shuffle_epi8(v, Load256(kBroadcast16.bytes[k]));
}

// Broadcasts int16 element 2k of a 128-bit lane over the low lane and
// element 2k + 1 over the high lane (k = 0..3), for a vector whose two lanes
// are equal.
inline __m256i BroadcastPairInt16(__m256i v, int k) {
  const __m256i mask = _mm256_set_m128i(
      _mm256_castsi256_si128(Load256(kBroadcast16.bytes[2 * k + 1])),
      _mm256_castsi256_si128(Load256(kBroadcast16.bytes[2 * k])));
  return _mm256_shuffle_epi8(v, mask);
}

// Q4_K/Q5_K scales: the 12 packed bytes to sc[0..7] (bytes 0..7) and
// min[0..7] (bytes 8..15). ggml does this on 32-bit words in scalar code
// (its kmask shuffle); here the same word operations run in one register,
// which avoids moving four words into a vector one by one:
//   w0 = u0 & 0x3f.., w1 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..),
//   w2 = u1 & 0x3f.., w3 = ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..).
// The 16-byte load reads 4 bytes past the scales, inside the block.
inline __m128i UnpackScalesMinsK4(const uint8_t* packed) {
  const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  const __m128i low = _mm_and_si128(
      _mm_srlv_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0)),
                     _mm_setr_epi32(0, 0, 0, 4)),
      _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i high = _mm_and_si128(
      _mm_srli_epi32(_mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0)), 2),
      _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(low, high);
}

// Bit k of each byte of `hbits`, moved to bit 4 (0 or 16 per byte). The
// 16-bit shift carries bits across bytes, but the mask keeps only each
// byte's own bit k.
inline __m256i FifthBit(__m256i hbits, int k, __m256i one) {
  return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hbits, k), one),
                           4);
}

}  // namespace
}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_SIMD_AVX2_H_
