// The super-block dot products (K-quants, IQ4_XS) follow ggml's float order
// in every implementation, so they must agree bit for bit, not just within a
// rounding bound (vec_dot_test.cc checks the bound for every type).

#include <cstdint>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/test_util.h"
#include "kernels/vec_dot.h"

namespace layerpool::kernels {
namespace {

using testing::AvailableIsas;
using testing::Quantized;
using testing::RandomFloats;
using testing::RandomRow;
using testing::TypeName;

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

// Activations of +-1 quantize to +-127 everywhere: the largest pair sums the
// 16-bit multiply-adds see.
std::vector<float> ExtremeFloats(std::mt19937& rng, int64_t n) {
  std::bernoulli_distribution sign(0.5);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = sign(rng) ? 1.0f : -1.0f;
  return v;
}

class SuperBlockOrderTest
    : public ::testing::TestWithParam<std::tuple<GgmlType, CpuIsa>> {};

TEST_P(SuperBlockOrderTest, BitIdenticalToScalarReference) {
  const auto [type, isa] = GetParam();
  std::mt19937 rng(4321 + static_cast<int>(type));
  const VecDotFn ref = GetVecDotFn(type, CpuIsa::kScalar);
  const VecDotFn simd = GetVecDotFn(type, isa);
  for (int64_t n : {kQkK, 3 * kQkK, 16 * kQkK}) {
    for (int trial = 0; trial < 40; ++trial) {
      const std::vector<uint8_t> w = RandomRow(rng, type, n);
      const std::vector<float> x =
          trial % 8 == 7 ? ExtremeFloats(rng, n) : RandomFloats(rng, n);
      const std::vector<uint8_t> xq = Quantized(type, x);
      const float want = ref(w.data(), xq.data(), n);
      const float got = simd(w.data(), xq.data(), n);
      ASSERT_EQ(Bits(got), Bits(want))
          << TypeName(type) << " " << IsaName(isa) << " n=" << n
          << " trial=" << trial << ": " << got << " vs " << want;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    SuperBlockTypes, SuperBlockOrderTest,
    ::testing::Combine(::testing::Values(GgmlType::kQ2_K, GgmlType::kQ3_K,
                                         GgmlType::kQ4_K, GgmlType::kQ5_K,
                                         GgmlType::kQ6_K, GgmlType::kIQ4_XS),
                       ::testing::ValuesIn(AvailableIsas())),
    [](const auto& info) {
      return TypeName(std::get<0>(info.param)) + "_" +
             IsaName(std::get<1>(info.param));
    });

}  // namespace
}  // namespace layerpool::kernels
