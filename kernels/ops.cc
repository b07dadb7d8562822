#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ggml_float.h"
#include "kernels/ops_internal.h"
#include "model/quant/blocks.h"

// Each function keeps ggml's order of float operations (ggml-cpu.c,
// ggml_compute_forward_*): float arithmetic is not associative, and the
// point of these functions is to round where ggml rounds. The library is
// built with -ffp-contract=off so that no multiply-add is fused.

namespace layerpool::kernels {
namespace {

// ggml_rope_yarn with ext_factor = 0 and mscale = 1: the cos and sin of the
// angle of each pair, into cos_sin[2i], cos_sin[2i + 1] for i < n_rot / 2.
void RopeAngles(int64_t n_rot, int32_t pos, float freq_base, float freq_scale,
                const float* freq_factors, const RopeYarn* yarn, float* cos_sin) {
  const float theta_scale =
      std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = static_cast<float>(pos);
  float mscale = yarn != nullptr ? yarn->attn_factor : 1.0f;
  const bool blend = yarn != nullptr && yarn->ext_factor != 0.0f;
  if (blend) mscale *= 1.0f + 0.1f * std::log(1.0f / freq_scale);
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const float ff = freq_factors != nullptr ? freq_factors[i] : 1.0f;
    const float extrap = theta / ff;
    float angle = freq_scale * extrap;
    if (blend) {
      // rope_yarn_ramp, with i0 / 2 == i.
      const float y = (static_cast<float>(i) - yarn->corr_low) /
                      std::max(0.001f, yarn->corr_high - yarn->corr_low);
      const float mix = (1 - std::min(1.0f, std::max(0.0f, y))) * yarn->ext_factor;
      angle = angle * (1 - mix) + extrap * mix;
    }
    cos_sin[2 * i] = std::cos(angle) * mscale;
    cos_sin[2 * i + 1] = std::sin(angle) * mscale;
    theta *= theta_scale;
  }
}

}  // namespace

void RmsNorm(const float* x, const float* weight, float eps, int64_t n,
             float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float normed = x[i] * scale;
    out[i] = weight != nullptr ? normed * weight[i] : normed;
  }
}

void RopeYarnCorrDims(int64_t n_rot, int64_t n_ctx_orig, float freq_base, float beta_fast,
                      float beta_slow, float* low, float* high) {
  auto corr_dim = [&](float rotations) {
    return static_cast<float>(n_rot) *
           std::log(static_cast<float>(n_ctx_orig) / (rotations * 2 * static_cast<float>(M_PI))) /
           (2 * std::log(freq_base));
  };
  *low = std::max(0.0f, std::floor(corr_dim(beta_fast)));
  *high = std::min(static_cast<float>(n_rot - 1), std::ceil(corr_dim(beta_slow)));
}

void Rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot,
          int32_t pos, float freq_base, float freq_scale, RopeMode mode,
          const float* freq_factors, const RopeYarn* yarn) {
  // Heads are at most a few hundred wide; n_rot / 2 angle pairs fit here.
  constexpr int64_t kMaxRot = 1024;
  float cos_sin[kMaxRot];
  RopeAngles(n_rot, pos, freq_base, freq_scale, freq_factors, yarn, cos_sin);
  // Pair i is (x[a], x[b]): adjacent for normal mode, half a rotation apart
  // for neox.
  const int64_t stride = mode == RopeMode::kNeox ? n_rot / 2 : 1;
  for (int64_t h = 0; h < n_head; ++h) {
    float* head = x + h * head_dim;
    for (int64_t i = 0; i < n_rot / 2; ++i) {
      const int64_t a = mode == RopeMode::kNeox ? i : 2 * i;
      const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
      const float x0 = head[a], x1 = head[a + stride];
      // As GCC contracts ggml's scalar rotation (x0 c - x1 s, x0 s + x1 c):
      // the first product fused, the second rounded.
      head[a] = std::fma(x0, c, -(x1 * s));
      head[a + stride] = std::fma(x0, s, x1 * c);
    }
  }
}

void Softmax(const float* x, int64_t n, float scale, const float* mask,
             float* y) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    y[i] = x[i] * scale;
    if (mask != nullptr) y[i] += mask[i];
    if (y[i] > max) max = y[i];
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(y[i] - max);
    sum += y[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
}

void SoftmaxCausal(const float* x, int64_t n, int64_t n_visible, float scale,
                   float* y) {
  Softmax(x, n_visible, scale, nullptr, y);
  for (int64_t i = n_visible; i < n; ++i) y[i] = 0.0f;
}

// ggml_vec_silu_f32: ggml_v_silu (GgmlExpf of 0 - x) for every whole group
// of 16, ggml_silu_f32 (expf) for the rest.
// Compiled twice, the FMA build chosen at load time where the CPU has it:
// GgmlExpf's std::fma is then one instruction instead of a call to fmaf.
[[gnu::target_clones("fma", "default")]]
void SiluWithIsa(CpuIsa isa, const float* x, int64_t n, float* y) {
  const int64_t vector_end = n / 16 * 16;
  if (isa >= CpuIsa::kAvx512) {
    avx512::SiluGroups(x, vector_end, y);
  } else {
    for (int64_t i = 0; i < vector_end; ++i) {
      y[i] = x[i] / (1.0f + GgmlExpf(0.0f - x[i]));
    }
  }
  for (int64_t i = vector_end; i < n; ++i) {
    y[i] = x[i] / (1.0f + std::exp(-x[i]));
  }
}

void Silu(const float* x, int64_t n, float* y) {
  SiluWithIsa(ActiveIsa(), x, n, y);
}

namespace {

// out = act(gate) * up, row by row: ggml's unary op, then ggml_mul.
void Gated(void (*act)(const float*, int64_t, float*), const float* gate, const float* up,
           int64_t n_rows, int64_t row, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t base = r * row;
    act(gate + base, row, out + base);
    for (int64_t i = base; i < base + row; ++i) out[i] *= up[i];
  }
}

}  // namespace

void SwiGlu(const float* gate, const float* up, int64_t n_rows, int64_t row,
            float* out) {
  Gated(Silu, gate, up, n_rows, row, out);
}

namespace {

// ggml_cpu_init's table entry: ggml_gelu_f32 of the f16 value h, as GCC
// compiles it there (the one contraction it makes: fma(A x, x, 1)), rounded
// to f16.
uint16_t GeluEntry(uint16_t h) {
  const float x = Fp16ToFp32(h);
  const float inner = std::fma(0.044715f * x, x, 1.0f);
  const float t = std::tanh((0.79788456080286535587989211986876f * x) * inner);
  return Fp32ToFp16((0.5f * x) * (1.0f + t));
}

const uint16_t* GeluTable() {
  static const uint16_t* const table = [] {
    auto* t = new uint16_t[1 << 16];
    for (uint32_t i = 0; i < (1u << 16); ++i) t[i] = GeluEntry(static_cast<uint16_t>(i));
    return t;
  }();
  return table;
}

}  // namespace

void Gelu(const float* x, int64_t n, float* y) {
  const uint16_t* table = GeluTable();
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] <= -10.0f) {
      y[i] = 0.0f;
    } else if (x[i] >= 10.0f) {
      y[i] = x[i];
    } else {
      y[i] = Fp16ToFp32(table[Fp32ToFp16(x[i])]);
    }
  }
}

void GeGlu(const float* gate, const float* up, int64_t n_rows, int64_t row,
           float* out) {
  Gated(Gelu, gate, up, n_rows, row, out);
}

void SoftCap(float* x, int64_t n, float cap) {
  const float inv_cap = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] * inv_cap) * cap;
}

void Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace layerpool::kernels
