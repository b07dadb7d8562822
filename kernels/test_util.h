// Test helpers shared by the kernels tests: seeded random weight rows of
// every supported type and the double-precision oracle built from the
// reference dequantizer.
#ifndef LAYERPOOL_KERNELS_TEST_UTIL_H_
#define LAYERPOOL_KERNELS_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/activation_blocks.h"
#include "kernels/vec_dot.h"
#include "model/quant/blocks.h"
#include "model/quant/dequantize.h"
#include "model/quant/quantize.h"
#include "model/quant/types.h"

namespace layerpool::kernels::testing {

// Every weight type VecDot supports.
inline const std::vector<GgmlType>& AllWeightTypes() {
  static const std::vector<GgmlType> types = {
      GgmlType::kF32,  GgmlType::kF16,    GgmlType::kBF16,  GgmlType::kQ4_0,
      GgmlType::kQ4_1, GgmlType::kQ5_0,   GgmlType::kQ5_1,  GgmlType::kQ8_0,
      GgmlType::kQ2_K, GgmlType::kQ3_K,   GgmlType::kQ4_K,  GgmlType::kQ5_K,
      GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};
  return types;
}

// The instruction sets this machine can run, scalar first.
inline std::vector<CpuIsa> AvailableIsas() {
  std::vector<CpuIsa> isas;
  for (int i = 0; i <= static_cast<int>(DetectedIsa()); ++i) {
    isas.push_back(static_cast<CpuIsa>(i));
  }
  return isas;
}

inline int64_t BlockSize(GgmlType type) {
  return GetTypeTraits(type)->block_size;
}

inline size_t Bytes(GgmlType type, int64_t n) {
  return static_cast<size_t>(*RowBytes(type, n));
}

// n floats, normally distributed with a few larger outliers, like real
// activations and weights.
inline std::vector<float> RandomFloats(std::mt19937& rng, int64_t n,
                                       float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = normal(rng) * (unit(rng) < 0.02f ? 8.0f : 1.0f);
  return v;
}

// A weight row of n elements of `type` holding random values. Types
// QuantizeRow can produce are quantized from random floats; the IQ4 types
// get random quants and sane random scales.
inline std::vector<uint8_t> RandomRow(std::mt19937& rng, GgmlType type,
                                      int64_t n) {
  std::vector<uint8_t> row(Bytes(type, n));
  if (IsQuantizable(type)) {
    const std::vector<float> f = RandomFloats(rng, n, 0.05f);
    EXPECT_TRUE(QuantizeRow(type, f.data(), row.data(), n));
    return row;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : row) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.0005f, 0.01f);
  if (type == GgmlType::kIQ4_NL) {
    auto* blocks = reinterpret_cast<BlockIQ4_NL*>(row.data());
    for (int64_t i = 0; i < n / kQk32; ++i)
      blocks[i].d = Fp32ToFp16(scale(rng));
  } else if (type == GgmlType::kIQ4_XS) {
    auto* blocks = reinterpret_cast<BlockIQ4_XS*>(row.data());
    for (int64_t i = 0; i < n / kQkK; ++i) {
      blocks[i].d = Fp32ToFp16(scale(rng) / 16);
    }
  } else {
    ADD_FAILURE() << "no random generator for type " << static_cast<int>(type);
  }
  return row;
}

inline std::vector<float> Dequantized(GgmlType type, const void* data,
                                      int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  EXPECT_TRUE(DequantizeRow(type, data, out.data(), n));
  return out;
}

// The float values quantized activations stand for (x = d * q), any vec_dot
// type.
inline std::vector<float> DequantizedActivations(GgmlType type,
                                                 const void* data, int64_t n) {
  if (type == GgmlType::kQ8_1) {
    std::vector<float> out(static_cast<size_t>(n));
    const auto* b = static_cast<const BlockQ8_1*>(data);
    for (int64_t i = 0; i < n; ++i) {
      out[i] = Fp16ToFp32(b[i / kQk32].d) * b[i / kQk32].qs[i % kQk32];
    }
    return out;
  }
  if (type == GgmlType::kQ8_K) {
    std::vector<float> out(static_cast<size_t>(n));
    const auto* b = static_cast<const BlockQ8_K*>(data);
    for (int64_t i = 0; i < n; ++i) {
      out[i] = b[i / kQkK].d * b[i / kQkK].qs[i % kQkK];
    }
    return out;
  }
  return Dequantized(type, data, n);
}

// Activations quantized to the vec_dot type of `weight_type`.
inline std::vector<uint8_t> Quantized(GgmlType weight_type,
                                      const std::vector<float>& x) {
  const GgmlType act = VecDotType(weight_type);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> out(Bytes(act, n));
  QuantizeActivations(act, x.data(), out.data(), n);
  return out;
}

// sum of w[i] * x[i] and of |w[i] * x[i]| in double, over the values the
// stored data stand for.
struct Oracle {
  double dot = 0;
  double abs_sum = 0;
};

inline Oracle DoubleDot(GgmlType weight_type, const void* w, const void* xq,
                        int64_t n) {
  const std::vector<float> wf = Dequantized(weight_type, w, n);
  const std::vector<float> xf =
      DequantizedActivations(VecDotType(weight_type), xq, n);
  Oracle o;
  for (int64_t i = 0; i < n; ++i) {
    const double p = static_cast<double>(wf[i]) * xf[i];
    o.dot += p;
    o.abs_sum += std::fabs(p);
  }
  return o;
}

inline std::string TypeName(GgmlType type) {
  return std::string(GetTypeTraits(type)->name);
}

}  // namespace layerpool::kernels::testing

#endif  // LAYERPOOL_KERNELS_TEST_UTIL_H_
