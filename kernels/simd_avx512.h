// Small AVX-512 building blocks shared by vec_dot_avx512*.cc.
//
// Include this header only inside a `#pragma GCC target(...)` region that
// enables AVX-512 F/BW/DQ/VL (as simd_avx2.h, and for the same reason: the
// functions take the target of the region they are compiled in, and the
// unnamed namespace keeps each file's copies to itself).
#ifndef LAYERPOOL_KERNELS_SIMD_AVX512_H_
#define LAYERPOOL_KERNELS_SIMD_AVX512_H_

#include <immintrin.h>

namespace layerpool::kernels {
namespace {

inline __m512i Load512(const void* p) { return _mm512_loadu_si512(p); }

// Two 256-bit halves into one register: lo in bits 0..255.
inline __m512i Join(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

}  // namespace
}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_SIMD_AVX512_H_
