// QuantizeActivations: floats to the vec_dot types, matching what ggml's x86
// build computes bit for bit.
//
// Q8_0 and Q8_1 follow the AVX2/AVX-512 branch of ggml's quantize_row_q8_0 /
// quantize_row_q8_1 (ggml-cpu-quants.c), not the scalar *_ref functions:
//   amax = max |x|, d = amax / 127, id = amax != 0 ? 127 / amax : 0,
//   q = round-half-to-even(x * id)        (_mm256_round_ps, _MM_ROUND_NEAREST)
// whereas the _ref versions use id = 1 / d and roundf (half away from zero),
// which give a different quant for a few inputs per thousand. Q8_1 adds
// s = fp16(d * sum(q)). Q8_K follows quantize_row_q8_K_ref, which x86 builds
// use (its only SIMD variant is for WebAssembly): the scale comes from the
// signed value of largest magnitude, iscale = -127 / max, quants are
// nearest_int(iscale * x) clamped to 127 above, d = 1 / iscale, and bsums are
// the sums of each run of 16 quants. F16 and BF16 round to nearest even, as
// ggml's F16C/AVX-512 conversions do.
//
// All of this is exact in scalar code: every step is one correctly rounded
// float operation (the library is built with -ffp-contract=off so that no
// multiply is fused into the rounding add), and max() is order-independent.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels {
namespace {

// ggml's nearest_int: round to nearest, ties to even, for |v| < 2^22, by
// letting the float adder round v + 1.5 * 2^23.
inline int NearestInt(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007fffff) - 0x00400000;
}

// Like _mm256_cvtps_epi32 followed by the saturating packs to int8.
inline int8_t SaturateToInt8(int v) {
  return static_cast<int8_t>(std::clamp(v, -128, 127));
}

// The Q8_0 core shared with Q8_1: scale d and 32 quants; returns sum(q).
int QuantizeBlock32(const float* x, float* d_out, int8_t* qs) {
  float amax = 0.0f;
  for (int j = 0; j < kQk32; ++j) amax = std::max(amax, std::fabs(x[j]));
  *d_out = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  int sum = 0;
  for (int j = 0; j < kQk32; ++j) {
    qs[j] = SaturateToInt8(NearestInt(x[j] * id));
    sum += qs[j];
  }
  return sum;
}

void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    float d;
    QuantizeBlock32(x, &d, y[i].qs);
    y[i].d = Fp32ToFp16(d);
  }
}

void QuantizeQ8_1(const float* x, BlockQ8_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    float d;
    const int sum = QuantizeBlock32(x, &d, y[i].qs);
    y[i].d = Fp32ToFp16(d);
    y[i].s = Fp32ToFp16(d * static_cast<float>(sum));
  }
}

void QuantizeQ8_K(const float* x, BlockQ8_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQkK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      // ggml leaves bsums unwritten here; zero is what they would sum to.
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQkK; ++j) {
      y[i].qs[j] =
          static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    }
    for (int s = 0; s < kQkK / 16; ++s) {
      int sum = 0;
      for (int j = 16 * s; j < 16 * s + 16; ++j) sum += y[i].qs[j];
      y[i].bsums[s] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

[[noreturn]] void Die(const char* what, GgmlType type, int64_t n) {
  std::fprintf(stderr,
               "layerpool kernels: QuantizeActivations: %s (type %u, n %lld)\n",
               what, static_cast<unsigned>(type), static_cast<long long>(n));
  std::abort();
}

}  // namespace

void QuantizeActivations(GgmlType type, const float* x, void* out, int64_t n) {
  const int64_t block = type == GgmlType::kQ8_0 || type == GgmlType::kQ8_1
                            ? kQk32
                        : type == GgmlType::kQ8_K ? kQkK
                                                  : 1;
  if (n < 0 || n % block != 0)
    Die("n is not a multiple of the block size", type, n);
  switch (type) {
    case GgmlType::kQ8_0:
      return QuantizeQ8_0(x, static_cast<BlockQ8_0*>(out), n / kQk32);
    case GgmlType::kQ8_1:
      return QuantizeQ8_1(x, static_cast<BlockQ8_1*>(out), n / kQk32);
    case GgmlType::kQ8_K:
      return QuantizeQ8_K(x, static_cast<BlockQ8_K*>(out), n / kQkK);
    case GgmlType::kF16: {
      uint16_t* y = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToFp16(x[i]);
      return;
    }
    case GgmlType::kBF16: {
      uint16_t* y = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToBf16(x[i]);
      return;
    }
    case GgmlType::kF32:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
      return;
    default:
      Die("not a vec_dot type", type, n);
  }
}

}  // namespace layerpool::kernels
