#include "model/quant/quantize.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <optional>

#include "model/quant/blocks.h"
#include "model/quant/quantize_k.h"

// The 32-weight formats follow ggml's quantize_row_q{4_0,4_1,5_0,5_1,8_0}_ref
// expression by expression. Note the rounding each one uses, since that is
// where byte equality is won or lost: Q8_0 rounds half away from zero
// (roundf); Q4_0/Q5_0 add 8.5/16.5 and truncate; Q4_1/Q5_1 add 0.5 and
// truncate. None of them uses the K-quants' nearest_int.

namespace layerpool {
namespace {

using quant_internal::QuantizeQ2_K;
using quant_internal::QuantizeQ3_K;
using quant_internal::QuantizeQ4_K;
using quant_internal::QuantizeQ5_K;
using quant_internal::QuantizeQ6_K;

// C's float-to-integer conversion (truncation toward zero), made total: the
// out-of-range results, undefined in C and C++, become INT_MIN as on x86.
// Finite in-range values, the only ones ggml's formulas produce from finite
// input, convert exactly as ggml's casts do.
int TruncateToInt(float v) {
  if (!(v > -2147483648.f && v < 2147483648.f)) return INT_MIN;
  return static_cast<int>(v);
}

// Stores the 5-bit levels xi0 (weight j) and xi1 (weight j + 16) of a Q5
// block: low nibbles in qs[j], fifth bits at bits j and j + 16 of qh.
void PutQ5Pair(int j, uint8_t xi0, uint8_t xi1, uint8_t* qs, uint32_t* qh) {
  qs[j] = static_cast<uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
  *qh |= ((xi0 & 0x10u) >> 4) << j;
  *qh |= ((xi1 & 0x10u) >> 4) << (j + kQk32 / 2);
}

// The value of largest magnitude in x[0..n), with its sign (the first one on
// ties). 0 for an all-zero block.
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    // Dividing by -8 maps the extreme value to level 0 exactly, so the
    // positive side gets the spare level 15.
    const float d = SignedAbsMax(x, kQk32) / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQk32 / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kQk32 / 2] * id;
      // ggml: MIN(15, (int8_t)(x0 + 8.5f)).
      const int xi0 = std::min(15, TruncateToInt(x0 + 8.5f));
      const int xi1 = std::min(15, TruncateToInt(x1 + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

// The min and max of x[0..n).
void MinMax(const float* x, int n, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

void QuantizeQ4_1(const float* x, BlockQ4_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    float min, max;
    MinMax(x, kQk32, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    y[i].m = Fp32ToFp16(min);
    for (int j = 0; j < kQk32 / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[j + kQk32 / 2] - min) * id;
      const int xi0 = std::min(15, TruncateToInt(x0 + 0.5f));
      const int xi1 = std::min(15, TruncateToInt(x1 + 0.5f));
      y[i].qs[j] = static_cast<uint8_t>(xi0 | (xi1 << 4));
    }
  }
}

void QuantizeQ5_0(const float* x, BlockQ5_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    const float d = SignedAbsMax(x, kQk32) / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQk32 / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + kQk32 / 2] * id;
      const int xi0 = std::min(31, TruncateToInt(x0 + 16.5f));
      const int xi1 = std::min(31, TruncateToInt(x1 + 16.5f));
      PutQ5Pair(j, static_cast<uint8_t>(xi0), static_cast<uint8_t>(xi1),
                y[i].qs, &qh);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void QuantizeQ5_1(const float* x, BlockQ5_1* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    float min, max;
    MinMax(x, kQk32, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    y[i].m = Fp32ToFp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQk32 / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[j + kQk32 / 2] - min) * id;
      // Unlike Q4_1, ggml does not clamp here: (uint8_t)(x0 + 0.5f).
      const auto xi0 = static_cast<uint8_t>(TruncateToInt(x0 + 0.5f));
      const auto xi1 = static_cast<uint8_t>(TruncateToInt(x1 + 0.5f));
      PutQ5Pair(j, xi0, xi1, y[i].qs, &qh);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQk32) {
    float amax = 0.0f;
    for (int j = 0; j < kQk32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQk32; ++j) {
      y[i].qs[j] = static_cast<int8_t>(TruncateToInt(std::round(x[j] * id)));
    }
  }
}

}  // namespace

bool IsQuantizable(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
      return true;
    default:
      return false;
  }
}

bool QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n) {
  if (!IsQuantizable(type)) return false;
  const std::optional<TypeTraits> traits = GetTypeTraits(type);
  if (!traits || n < 0 || n % traits->block_size != 0) return false;
  const int64_t nb = n / traits->block_size;
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return true;
    case GgmlType::kF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = Fp32ToFp16(src[i]);
      return true;
    }
    case GgmlType::kBF16: {
      auto* out = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) out[i] = Fp32ToBf16(src[i]);
      return true;
    }
    case GgmlType::kQ4_0:
      QuantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), nb);
      return true;
    case GgmlType::kQ4_1:
      QuantizeQ4_1(src, static_cast<BlockQ4_1*>(dst), nb);
      return true;
    case GgmlType::kQ5_0:
      QuantizeQ5_0(src, static_cast<BlockQ5_0*>(dst), nb);
      return true;
    case GgmlType::kQ5_1:
      QuantizeQ5_1(src, static_cast<BlockQ5_1*>(dst), nb);
      return true;
    case GgmlType::kQ8_0:
      QuantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), nb);
      return true;
    case GgmlType::kQ2_K:
      QuantizeQ2_K(src, static_cast<BlockQ2_K*>(dst), nb);
      return true;
    case GgmlType::kQ3_K:
      QuantizeQ3_K(src, static_cast<BlockQ3_K*>(dst), nb);
      return true;
    case GgmlType::kQ4_K:
      QuantizeQ4_K(src, static_cast<BlockQ4_K*>(dst), nb);
      return true;
    case GgmlType::kQ5_K:
      QuantizeQ5_K(src, static_cast<BlockQ5_K*>(dst), nb);
      return true;
    case GgmlType::kQ6_K:
      QuantizeQ6_K(src, static_cast<BlockQ6_K*>(dst), nb);
      return true;
    default:
      return false;
  }
}

}  // namespace layerpool
