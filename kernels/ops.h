// The float element-wise and row operations of a llama forward pass, each
// computed the way llama.cpp's CPU backend computes it (ggml-cpu, early 2025)
// so that our activations track its activations to float rounding:
//
//   RmsNorm   ggml_rms_norm followed by ggml_mul with the norm weight
//   Rope      ggml_rope_ext, modes "normal" (llama) and "neox", no YaRN
//   Softmax   ggml_soft_max_ext with scale and an additive (causal) mask
//   Silu      ggml_silu; SwiGlu = silu(gate) * up as llama's FFN does it
//   Gelu      ggml_gelu (tanh form, through its f16 table); GeGlu for Gemma
//   SoftCap   Gemma 2's logit soft-capping (ggml_scale, ggml_tanh, ggml_scale)
//   Add       ggml_add (residual connections)
//
// All functions are plain, single-threaded loops over caller-owned memory
// (callers parallelise over tokens or heads); they allocate nothing and are
// safe to call from any number of threads on disjoint data. Output may alias
// input where a comment says so. Standard library only.
#ifndef LAYERPOOL_KERNELS_OPS_H_
#define LAYERPOOL_KERNELS_OPS_H_

#include <cstdint>

namespace layerpool::kernels {

// out[i] = x[i] * (1 / sqrt(mean(x^2) + eps)) * weight[i], i < n. The mean of
// squares is summed in double as ggml does; the scaling is in float, first
// by the norm and then by the weight. out may be x. weight may be nullptr
// (plain normalisation, ggml_rms_norm alone).
void RmsNorm(const float* x, const float* weight, float eps, int64_t n,
             float* out);

// How RoPE pairs up the dimensions of a head.
enum class RopeMode {
  kNormal,  // pairs (2i, 2i + 1): llama, mistral (ggml mode 0)
  kNeox,    // pairs (i, i + n_rot / 2): qwen2, phi3, gpt-neox (mode 2)
};

// Rotates, in place, the first n_rot dimensions of each of n_head heads of
// head_dim floats at x (head h at x + h * head_dim) for position `pos`:
// pair i turns by theta_i = freq_scale * pos * freq_base^(-2i / n_rot) /
// freq_factors[i] (freq_factors may be nullptr: all ones; llama 3.1 stores
// them as rope_freqs). Dimensions from n_rot to head_dim are left alone.
// theta_i is formed as ggml does, by repeated multiplication by
// freq_base^(-2 / n_rot) rather than by a power per pair, cos/sin come
// from the C library, and the rotation is fused as GCC compiles ggml's
// scalar loop (x0' = fma(x0, cos, -(x1 sin)), x1' = fma(x0, sin, x1 cos)),
// so results match llama.cpp's x86 build bit for bit. n_rot must be even,
// at most head_dim and at most 1024.
//
// With `yarn` (YaRN, ggml's rope_yarn): pair i's angle blends the
// interpolated freq_scale * theta with the extrapolated theta by a ramp
// that is 1 below corr_low and 0 above corr_high (times ext_factor), and
// cos and sin are scaled by attn_factor * (1 + 0.1 ln(1 / freq_scale)).
struct RopeYarn {
  float ext_factor = 0;  // 0: no blending (cos and sin still * attn_factor)
  float corr_low = 0, corr_high = 0;
  float attn_factor = 1;
};
// ggml_rope_yarn_corr_dims: the pairs YaRN blends, for a model trained on
// n_ctx_orig positions (beta_fast 32 and beta_slow 1 in llama.cpp).
void RopeYarnCorrDims(int64_t n_rot, int64_t n_ctx_orig, float freq_base, float beta_fast,
                      float beta_slow, float* low, float* high);

void Rope(float* x, int64_t n_head, int64_t head_dim, int64_t n_rot,
          int32_t pos, float freq_base, float freq_scale,
          RopeMode mode = RopeMode::kNormal,
          const float* freq_factors = nullptr, const RopeYarn* yarn = nullptr);

// y = softmax(x * scale + mask) over n elements; mask may be nullptr (no
// mask) and holds -INFINITY where attention is not allowed. Exponentials
// are summed in double and the result is scaled by the float of 1 / sum, as
// in ggml. At least one element must be unmasked. y may be x.
void Softmax(const float* x, int64_t n, float scale, const float* mask,
             float* y);

// Softmax with a causal mask: the first n_visible elements take part and the
// rest come out 0, exactly what Softmax with a mask of 0 / -INFINITY gives.
// 1 <= n_visible <= n. y may be x.
void SoftmaxCausal(const float* x, int64_t n, int64_t n_visible, float scale,
                   float* y);

// y[i] = x[i] / (1 + exp(-x[i])) over one row of n, with ggml's exp (its
// polynomial for whole groups of 16, expf for the rest). y may be x.
void Silu(const float* x, int64_t n, float* y);

// out[i] = silu(gate[i]) * up[i] over n_rows rows of `row` elements, Silu
// applied row by row. out may be gate, not up.
void SwiGlu(const float* gate, const float* up, int64_t n_rows, int64_t row,
            float* out);

// ggml_gelu: 0.5x(1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))) looked up for
// x rounded to f16, in an f16 table (ggml's GGML_GELU_FP16), and 0 below -10,
// x above 10. y may be x.
void Gelu(const float* x, int64_t n, float* y);

// out[i] = gelu(gate[i]) * up[i], as SwiGlu. out may be gate, not up.
void GeGlu(const float* gate, const float* up, int64_t n_rows, int64_t row,
           float* out);

// x[i] = tanh(x[i] * (1 / cap)) * cap, in place.
void SoftCap(float* x, int64_t n, float cap);

// x[i] += y[i].
void Add(float* x, const float* y, int64_t n);

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_OPS_H_
