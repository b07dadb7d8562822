#include "kernels/ops.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/ggml_float.h"
#include "kernels/ops_internal.h"
#include "kernels/test_util.h"

// Each op against a straightforward double-precision formula. Tolerances are
// relative to the size of the values involved and state the float rounding
// the op is allowed.

namespace layerpool::kernels {
namespace {

std::vector<float> Random(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& f : v) f = normal(rng);
  return v;
}

TEST(RmsNormTest, MatchesDoubleFormula) {
  std::mt19937 rng(1);
  for (int64_t n : {1, 7, 64, 4096}) {
    const std::vector<float> x = Random(rng, n, 3.0f);
    const std::vector<float> w = Random(rng, n);
    const float eps = 1e-5f;
    std::vector<float> out(n);
    RmsNorm(x.data(), w.data(), eps, n, out.data());
    double ss = 0;
    for (float v : x) ss += double{v} * v;
    const double scale = 1.0 / std::sqrt(ss / n + eps);
    for (int64_t i = 0; i < n; ++i) {
      const double expected = x[i] * scale * w[i];
      EXPECT_NEAR(out[i], expected, 1e-6 * std::fabs(expected) + 1e-30) << i;
    }
    // In place, and without a weight.
    std::vector<float> y = x;
    RmsNorm(y.data(), nullptr, eps, n, y.data());
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(y[i], x[i] * scale, 1e-6 * std::fabs(x[i] * scale) + 1e-30);
    }
  }
}

// theta_i = freq_scale * pos * base^(-2i/n_rot) / ff_i. ggml forms the powers
// by repeated float multiplication, which drifts by about i ulp, so the
// tolerance grows with the angle.
void ExpectRope(RopeMode mode, int64_t n_head, int64_t head_dim, int64_t n_rot,
                int32_t pos, float base, float freq_scale,
                const std::vector<float>* ff) {
  std::mt19937 rng(static_cast<unsigned>(pos) + 17);
  const std::vector<float> x = Random(rng, n_head * head_dim);
  std::vector<float> y = x;
  Rope(y.data(), n_head, head_dim, n_rot, pos, base, freq_scale, mode,
       ff != nullptr ? ff->data() : nullptr);
  const double angle_tol = 1e-6 * (1.0 + std::fabs(pos) * freq_scale) * n_rot;
  for (int64_t h = 0; h < n_head; ++h) {
    const float* in = x.data() + h * head_dim;
    const float* out = y.data() + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const int64_t a = mode == RopeMode::kNeox ? i : 2 * i;
      const int64_t b = mode == RopeMode::kNeox ? i + n_rot / 2 : 2 * i + 1;
      const double f = ff != nullptr ? (*ff)[i] : 1.0;
      const double theta =
          freq_scale * pos * std::pow(double{base}, -2.0 * i / n_rot) / f;
      const double e0 = in[a] * std::cos(theta) - in[b] * std::sin(theta);
      const double e1 = in[a] * std::sin(theta) + in[b] * std::cos(theta);
      const double tol =
          angle_tol * (std::fabs(in[a]) + std::fabs(in[b])) + 1e-6;
      EXPECT_NEAR(out[a], e0, tol) << "head " << h << " pair " << i;
      EXPECT_NEAR(out[b], e1, tol) << "head " << h << " pair " << i;
    }
    for (int64_t d = n_rot; d < head_dim; ++d) EXPECT_EQ(out[d], in[d]);
  }
}

TEST(RopeTest, NormalModeMatchesDoubleFormula) {
  for (int32_t pos : {0, 1, 2, 17, 100, 1000}) {
    ExpectRope(RopeMode::kNormal, 4, 64, 64, pos, 10000.0f, 1.0f, nullptr);
  }
  ExpectRope(RopeMode::kNormal, 2, 128, 128, 513, 500000.0f, 1.0f, nullptr);
  ExpectRope(RopeMode::kNormal, 3, 64, 32, 42, 10000.0f, 0.25f,
             nullptr);  // partial
}

TEST(RopeTest, NeoxModeMatchesDoubleFormula) {
  for (int32_t pos : {0, 3, 250}) {
    ExpectRope(RopeMode::kNeox, 4, 64, 64, pos, 1000000.0f, 1.0f, nullptr);
  }
  ExpectRope(RopeMode::kNeox, 2, 80, 32, 9, 10000.0f, 1.0f, nullptr);
}

TEST(RopeTest, FreqFactorsDivideTheAngles) {
  std::vector<float> ff(32);
  for (size_t i = 0; i < ff.size(); ++i)
    ff[i] = 1.0f + 0.25f * static_cast<float>(i % 5);
  ExpectRope(RopeMode::kNormal, 2, 64, 64, 77, 500000.0f, 1.0f, &ff);
}

TEST(RopeTest, PositionZeroIsIdentity) {
  std::mt19937 rng(2);
  const std::vector<float> x = Random(rng, 128);
  std::vector<float> y = x;
  Rope(y.data(), 2, 64, 64, 0, 10000.0f, 1.0f);
  EXPECT_EQ(x, y);  // cos 0 = 1, sin 0 = 0 exactly
}

// llama.cpp's own value: TinyStories-656K-Q8_0, layer 0, the first pair of
// Q at position 8 during decode (its graph's Qcur-0 before and after
// ggml_rope_ext). Rounding both products first gives -0.228273764.
TEST(RopeTest, RotationFusedAsLlamaCppsBuild) {
  float x[2] = {-0.287798077f, -0.388052493f};
  Rope(x, 1, 2, 2, 8, 10000.0f, 1.0f);
  EXPECT_EQ(x[1], -0.228273749f);
  EXPECT_EQ(x[0], std::fma(-0.287798077f, std::cos(8.0f), -(-0.388052493f * std::sin(8.0f))));
}

TEST(RopeTest, YarnBlendsInterpolationAndExtrapolationByPair) {
  // 8 pairs, corr dims 2..5: pairs 0-2 keep the extrapolated angle (theta),
  // pairs 5-7 the interpolated one (freq_scale * theta), 3-4 a blend; every
  // value scaled by 1 + 0.1 ln(1 / freq_scale).
  const int64_t n_rot = 16;
  const float base = 10000, scale = 0.25f;
  RopeYarn yarn;
  yarn.ext_factor = 1;
  yarn.corr_low = 2;
  yarn.corr_high = 5;
  std::vector<float> x(n_rot, 0.0f);
  for (int64_t i = 0; i < n_rot; i += 2) x[i] = 1.0f;  // (1, 0) per pair
  Rope(x.data(), 1, n_rot, n_rot, 7, base, scale, RopeMode::kNormal, nullptr, &yarn);
  const double mscale = 1 + 0.1 * std::log(1 / scale);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double theta = 7 * std::pow(base, -2.0 * i / n_rot);
    const double ramp = 1 - std::min(1.0, std::max(0.0, (i - 2.0) / 3.0));
    const double angle = scale * theta * (1 - ramp) + theta * ramp;
    EXPECT_NEAR(x[2 * i], std::cos(angle) * mscale, 1e-5) << i;
    EXPECT_NEAR(x[2 * i + 1], std::sin(angle) * mscale, 1e-5) << i;
  }
}

TEST(RopeTest, YarnCorrDimsAsGgml) {
  float low = 0, high = 0;
  // n_rot 128, 4096 trained positions, base 10000: ggml's formula gives
  // floor(20.94) and ceil(45.03).
  RopeYarnCorrDims(128, 4096, 10000, 32, 1, &low, &high);
  EXPECT_EQ(low, 20);
  EXPECT_EQ(high, 46);
  // Clamped to [0, n_rot - 1].
  RopeYarnCorrDims(16, 64, 10000, 32, 1, &low, &high);
  EXPECT_EQ(low, 0);
  EXPECT_LE(high, 15);
}

TEST(SoftmaxTest, MatchesDoubleFormula) {
  std::mt19937 rng(3);
  for (int64_t n : {1, 5, 100, 2048}) {
    const std::vector<float> x = Random(rng, n, 4.0f);
    const float scale = 0.125f;
    std::vector<float> y(n);
    Softmax(x.data(), n, scale, nullptr, y.data());
    double max = -1e300, sum = 0;
    for (float v : x) max = std::max(max, double{v} * scale);
    for (float v : x) sum += std::exp(double{v} * scale - max);
    for (int64_t i = 0; i < n; ++i) {
      const double expected = std::exp(double{x[i]} * scale - max) / sum;
      EXPECT_NEAR(y[i], expected, 1e-6 * expected + 1e-12) << i;
    }
  }
}

TEST(SoftmaxTest, MaskAndCausalAgree) {
  std::mt19937 rng(4);
  const int64_t n = 37, visible = 20;
  const std::vector<float> x = Random(rng, n);
  std::vector<float> mask(n, 0.0f);
  for (int64_t i = visible; i < n; ++i)
    mask[i] = -std::numeric_limits<float>::infinity();
  std::vector<float> masked(n), causal(n);
  Softmax(x.data(), n, 0.5f, mask.data(), masked.data());
  SoftmaxCausal(x.data(), n, visible, 0.5f, causal.data());
  EXPECT_EQ(masked, causal);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += causal[i];
    if (i >= visible) {
      EXPECT_EQ(causal[i], 0.0f);
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  // In place.
  std::vector<float> y = x;
  SoftmaxCausal(y.data(), n, visible, 0.5f, y.data());
  EXPECT_EQ(y, causal);
}

TEST(ActivationTest, SiluAndSwiGluMatchDoubleFormula) {
  std::mt19937 rng(5);
  const int64_t n = 1000;
  const std::vector<float> g = Random(rng, n, 5.0f);
  const std::vector<float> u = Random(rng, n);
  std::vector<float> s(n), sw(n);
  Silu(g.data(), n, s.data());
  SwiGlu(g.data(), u.data(), 10, n / 10, sw.data());  // rows of 100: 96 + a tail of 4
  for (int64_t i = 0; i < n; ++i) {
    const double silu = g[i] / (1.0 + std::exp(-double{g[i]}));
    EXPECT_NEAR(s[i], silu, 1e-6 * std::fabs(silu) + 1e-30) << i;
    EXPECT_NEAR(sw[i], silu * u[i], 1e-6 * std::fabs(silu * u[i]) + 1e-30) << i;
  }
  std::vector<float> in_place = g;
  SwiGlu(in_place.data(), u.data(), 10, n / 10, in_place.data());
  EXPECT_EQ(in_place, sw);
}

// Gelu is the tanh form to f16 precision (its table holds f16 values of
// f16 inputs), exactly 0 at or below -10 and the identity at or above 10;
// GeGlu multiplies by up; SoftCap is cap * tanh(x / cap).
TEST(ActivationTest, GeluGeGluAndSoftCapMatchDoubleFormula) {
  std::mt19937 rng(9);
  const int64_t n = 1000;
  std::vector<float> g = Random(rng, n, 6.0f);
  g.insert(g.end(), {-10.0f, -10.5f, 10.0f, 12.0f, 0.0f});
  const int64_t m = static_cast<int64_t>(g.size());
  const std::vector<float> u = Random(rng, m);
  std::vector<float> ge(m), geglu(m);
  Gelu(g.data(), m, ge.data());
  GeGlu(g.data(), u.data(), 1, m, geglu.data());
  for (int64_t i = 0; i < m; ++i) {
    const double x = g[i];
    const double want =
        x <= -10 ? 0.0
        : x >= 10 ? x
                  : 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * x * (1 + 0.044715 * x * x)));
    // Two f16 roundings (the input and the entry): 2^-10 of the value, and
    // the input's rounding times the slope (at most ~1.13).
    EXPECT_NEAR(ge[i], want, 2e-3 * std::fabs(x) + 1e-4) << x;
    EXPECT_EQ(geglu[i], ge[i] * u[i]) << i;
  }
  std::vector<float> capped = g;
  SoftCap(capped.data(), m, 5.0f);
  for (int64_t i = 0; i < m; ++i) {
    EXPECT_NEAR(capped[i], 5.0 * std::tanh(g[i] / 5.0), 1e-5) << g[i];
  }
}

// Every instruction set's Silu gives the scalar loop's bits, over the range
// and at ggml_v_expf's flushes (|x| > ~133), zeros and infinities.
TEST(ActivationTest, SiluInstructionSetsAgreeExactly) {
  std::mt19937 rng(8);
  std::vector<float> x = Random(rng, 1000, 30.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (float special : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 150.0f,
                        -150.0f, 1e30f, -1e30f, inf, -inf}) {
    x.push_back(special);
  }
  const int64_t n = static_cast<int64_t>(x.size());  // 1012: a tail of 4
  std::vector<float> want(n);
  SiluWithIsa(CpuIsa::kScalar, x.data(), n, want.data());
  for (CpuIsa isa : testing::AvailableIsas()) {
    std::vector<float> got(n);
    SiluWithIsa(isa, x.data(), n, got.data());
    for (int64_t i = 0; i < n; ++i) {
      // NaN == NaN fails EXPECT_EQ; compare bits.
      EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << IsaName(isa) << " x " << x[i];
    }
  }
}

// ggml's polynomial exp: within 3 ulp (it documents 1.45 ulp plus the
// final rounding) over the range softmax and SiLU use, and its flushes
// outside it.
TEST(GgmlExpfTest, CloseToExpAndFlushesLikeGgml) {
  for (float x = -87.0f; x < 88.0f; x += 0.01171875f) {
    const double want = std::exp(double{x});
    const double ulp = std::ldexp(1.0, std::ilogb(want) - 23);
    EXPECT_LE(std::fabs(GgmlExpf(x) - want), 3.0 * ulp) << x;
  }
  EXPECT_EQ(GgmlExpf(0.0f), 1.0f);
  EXPECT_EQ(GgmlExpf(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(GgmlExpf(-200.0f), 0.0f);
  EXPECT_EQ(GgmlExpf(200.0f), std::numeric_limits<float>::infinity());
}

TEST(ReduceAdd16Test, AddsHalvesPairwise) {
  // 2^24 + 1 is not a float: the order decides which ones survive.
  float v[16] = {};
  v[0] = 16777216.0f;
  v[8] = 1.0f;
  v[4] = 1.0f;
  EXPECT_EQ(ReduceAdd16(v), 16777216.0f);  // ((2^24 + 1) + 1) rounds twice
  v[0] = 0.0f;
  EXPECT_EQ(ReduceAdd16(v), 2.0f);
}

TEST(AddTest, AddsElementwise) {
  std::vector<float> x = {1.0f, -2.0f, 3.5f};
  const std::vector<float> y = {0.5f, 2.0f, -1.0f};
  Add(x.data(), y.data(), 3);
  EXPECT_EQ(x, (std::vector<float>{1.5f, 0.0f, 2.5f}));
}

}  // namespace
}  // namespace layerpool::kernels
