// Building blocks for the SIMD super-block dot products (vec_dot_avx2_k.cc,
// vec_dot_avx512_k.cc) that pin down ggml's float order: its minimum terms
// and its final sums. See vec_dot_ref_k.cc for the order itself.
//
// Include this header only inside a LAYERPOOL_BEGIN_AVX2 or _AVX512 region
// (target.h), after simd_avx2.h (same reasons as there: the functions take
// the region's target, and the unnamed namespace keeps each file's copies
// to itself).
#ifndef LAYERPOOL_KERNELS_SIMD_K_H_
#define LAYERPOOL_KERNELS_SIMD_K_H_

#include <immintrin.h>

#include <cstdint>

namespace layerpool::kernels {
namespace {

// ggml's Q4_K/Q5_K minimum terms in four int32 lanes: lane m =
// min[2m] * S[2m] + min[2m + 1] * S[2m + 1], S[s] = bsums[2s] + bsums[2s + 1]
// (the activations' sum over 32-weight sub-block s, at most 4064 in
// magnitude, so the 16-bit pairwise add is exact). `scales_mins` is
// UnpackScalesMinsK4's output: the mins are its bytes 8..15.
//
// The S[s] depend on the activations only, so a kernel running many rows
// against one token computes them once (SubBlockSumsK) and passes them in.
inline __m128i SubBlockSumsK(const int16_t* bsums) {
  return _mm_hadd_epi16(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums)),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(bsums + 8)));
}
inline __m128i MinLanesK4(__m128i scales_mins, __m128i sub_block_sums) {
  return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(scales_mins, 8)),
                        sub_block_sums);
}
inline __m128i MinLanesK4(__m128i scales_mins, const int16_t* bsums) {
  return MinLanesK4(scales_mins, SubBlockSumsK(bsums));
}

// (a0 + a2) + (a1 + a3): how Q4_K's minimum accumulator is summed.
inline float HorizontalSum4(__m128 a) {
  a = _mm_add_ps(a, _mm_movehl_ps(a, a));
  a = _mm_add_ss(a, _mm_movehdup_ps(a));
  return _mm_cvtss_f32(a);
}

// summs = fma(d, float(v0 + v1 + v2 + v3), summs) in lane 0, the four
// int32 lanes summed exactly first. Kept in a vector register: moving the
// sum through a general register costs more than the rest of it.
inline __m128i IntSum4(__m128i v) {
  v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
  return _mm_add_epi32(v, _mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 1, 1)));
}
inline __m128 FmaIntSum4(float d, __m128i v, __m128 summs) {
  return _mm_fmadd_ss(_mm_set_ss(d), _mm_cvtepi32_ps(IntSum4(v)), summs);
}

// acc = fma(d, float(sumi), acc) in eight lanes: a super-block's integer
// lanes into ggml's float accumulator.
inline __m256 FmaLanes(float d, __m256i sumi, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
}

}  // namespace
}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_SIMD_K_H_
