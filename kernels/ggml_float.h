// Two pieces of ggml's x86 float arithmetic, written out in plain C++ so
// that the scalar code gives their bits exactly (for kernels that must round
// where llama.cpp's CPU build on an AVX-512 machine rounds):
//
//   GgmlExpf      one lane of ggml_v_expf (ggml-cpu/vec.h, AVX-512 branch),
//                 the polynomial exp that ggml's softmax and SiLU use for
//                 every full group of 16 elements (the rest go to expf);
//   ReduceAdd16   _mm512_reduce_add_ps: halves added pairwise, 16 -> 8 ->
//                 4 -> 2 -> 1, as GCC and Clang expand it.
//
// Every step is one IEEE operation; std::fma where ggml fuses. Callers are
// compiled with -ffp-contract=off, so nothing else is fused.
#ifndef LAYERPOOL_KERNELS_GGML_FLOAT_H_
#define LAYERPOOL_KERNELS_GGML_FLOAT_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace layerpool::kernels {

inline float GgmlExpf(float x) {
  const float r = 0x1.8p23f;  // adding it rounds to an integer
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;  // round(x / ln 2)
  const float b =
      std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  if (std::fabs(n) > 192) {
    return n <= 0 ? 0.0f : std::numeric_limits<float>::infinity();
  }
  const float u = b * b;
  const float j = std::fma(
      std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
               std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
      u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  // vscalefps: j * 2^n, rounded once. Multiplying by a normal power of two
  // is the same operation; beyond that range ldexp rounds likewise.
  const int e = static_cast<int>(n);
  if (e >= -126 && e <= 127) {
    return j * std::bit_cast<float>(static_cast<uint32_t>(e + 127) << 23);
  }
  return std::ldexp(j, e);
}

inline float ReduceAdd16(const float* v) {
  float h8[8], h4[4];
  for (int k = 0; k < 8; ++k) h8[k] = v[k + 8] + v[k];
  for (int k = 0; k < 4; ++k) h4[k] = h8[k + 4] + h8[k];
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_GGML_FLOAT_H_
