// AVX-512 (F, BW, DQ, VL, VNNI) dot products of the super-block formats
// Q4_K, Q5_K and Q6_K with Q8_K activations, in ggml's float order like
// vec_dot_avx2_k.cc (and so equal to the scalar references bit for bit).
//
// What the wider registers buy: a super-block is processed in half the
// instructions (a pair of 32-weight sub-blocks, or 64 Q6_K weights, per
// register). The order stays ggml's because each 256-bit half of a 512-bit
// register holds one 32-weight load, with lane l of the half collecting the
// products of weights (i % 32) / 4 == l just as ggml's 256-bit lanes do; the
// two halves are added in integers (exact) before the one fma per
// super-block, which is therefore ggml's 8-lane fma. Q6_K's -32 offset is
// applied per weight, as in vec_dot_avx2_k.cc; VNNI's vpdpwssd multiplies
// the int16 pair sums by their scales and accumulates in one instruction,
// which wins back most of what that costs.

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/target.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

LAYERPOOL_BEGIN_AVX512

#include "kernels/simd_avx2.h"    // inside the target region, on purpose
#include "kernels/simd_avx512.h"  // likewise
#include "kernels/simd_k.h"       // likewise
#include "kernels/simd_avx512_k.h"  // likewise

namespace layerpool::kernels::avx512 {
namespace {

template <class Format>
float Dot(const void* w, const void* x, int64_t n) {
  const auto* wb = static_cast<const typename Format::Block*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  __m128 mins = _mm_setzero_ps();
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const __m128i sums = Format::kHasMins ? SubBlockSumsK(xb[i].bsums)
                                          : _mm_setzero_si128();
    Format::Accumulate(Format::Unpack(wb[i]), xb[i], sums, acc, mins);
  }
  return Format::Result(acc, mins);
}

}  // namespace

float DotQ4_K(const void* w, const void* x, int64_t n) {
  return Dot<Q4KFormat>(w, x, n);
}

float DotQ5_K(const void* w, const void* x, int64_t n) {
  return Dot<Q5KFormat>(w, x, n);
}

float DotQ6_K(const void* w, const void* x, int64_t n) {
  return Dot<Q6KFormat>(w, x, n);
}

}  // namespace layerpool::kernels::avx512

LAYERPOOL_END_AVX512
