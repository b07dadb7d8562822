// Random-weight llama models written straight into a quantized GGUF.
//
// `layerpool synth` uses this to make files of real model shapes (1B to
// 405B) whose weights cannot be downloaded here, so the engine and the
// cluster can be benchmarked on them. Weights are Gaussian (std 0.02 for
// matrices, 1 +- 0.05 for norms), drawn per row from a seed, so the file is
// identical whatever the thread count; each row is quantized as it is drawn,
// so memory use stays at a few chunks of rows whatever the model size.
//
// Tensor types follow llama-quantize's mix for the chosen file type (e.g.
// Q4_K_M: Q6_K for output.weight and for attn_v / ffn_down of the layers
// llama.cpp's use_more_bits picks, Q5_K for the other attn_v of an 80-layer
// model, Q5_K for a fused attn_qkv, Q6_K for Gemma's tied embedding table,
// Q8_0 attn_k / attn_v and Q5_K attn_output with 8 experts, Q4_K elsewhere),
// and the quantizers are llama.cpp's: synth's Q8_0 and Q4_K_M files of each
// architecture equal, tensor for tensor, what llama-quantize makes of the
// same weights in F32 (tests/shapes/check_quantize.py).
#ifndef LAYERPOOL_MODEL_SYNTH_SYNTH_H_
#define LAYERPOOL_MODEL_SYNTH_SYNTH_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/gguf/gguf.h"
#include "model/gguf/writer.h"
#include "model/hparams/hparams.h"

namespace layerpool {

struct SynthShape {
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t n_ff = 0;
  int64_t n_vocab = 0;
  int64_t n_ctx = 4096;
  double rope_freq_base = 10000.0;
  double rms_eps = 1e-5;
  // Llama 3.1 RoPE scaling: > 0 writes rope_freqs.weight, the per-pair
  // factors convert_hf_to_gguf.py computes from rope_scaling {factor,
  // low_freq_factor, high_freq_factor, original_max_position_embeddings}.
  double llama3_rope_factor = 0;
  double llama3_low_freq_factor = 1;
  double llama3_high_freq_factor = 4;
  int64_t llama3_original_ctx = 8192;
  // Per-head size; 0: n_embd / n_head. Mistral-Nemo's 128 with n_embd 5120
  // and 32 heads is the case the GGUF writes as attention.key_length.
  int64_t head_dim = 0;
  // attention.sliding_window for architectures that have one (phi3,
  // gemma2); 0: the whole context.
  int64_t sliding_window = 0;
  // Mixtral-style experts (llama only): n_expert feed-forward experts per
  // layer, n_expert_used per token; 0: dense.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  // Phi-3's LongRoPE (phi3 only): > 0 writes rope_factors_long/short.weight
  // (made-up factors, long ones growing faster) with this
  // rope.scaling.original_context_length, and the attn_factor Phi-3's
  // converter derives from it and n_ctx.
  int64_t longrope_original_ctx = 0;
};

// The head size of `shape` (its head_dim, else n_embd / n_head).
int64_t SynthHeadDim(const SynthShape& shape);

// The rope_freqs.weight values for `shape` (empty without Llama 3.1 scaling).
std::vector<float> Llama3RopeFactors(const SynthShape& shape);

// Every per-pair RoPE factor tensor `shape` has, by name: rope_freqs.weight
// (Llama 3.1), rope_factors_long/short.weight (LongRoPE).
std::vector<std::pair<std::string, std::vector<float>>> RopeFactorTensors(
    const SynthShape& shape);

// Named shapes: "llama-1b" (the synth-1B shape of ../shared/golden/
// peer-speed.md), "llama-8b", "llama-70b", "llama-405b" (Llama 3.x shapes),
// "synth-12L" (../shared/models/synth-12L). NotFound lists the names.
[[nodiscard]] absl::StatusOr<SynthShape> SynthPreset(absl::string_view name);
std::vector<std::string> SynthPresetNames();

// File types synth can write: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q6_K.
std::vector<std::string> SynthFileTypes();

struct SynthOptions {
  SynthShape shape;
  // general.architecture: llama, or another of model/hparams/arch.h (its
  // variations, e.g. qwen2's QKV biases, are written too).
  std::string arch = "llama";
  std::string file_type = "Q4_K_M";
  std::string name = "synth";
  uint64_t seed = 1234;
  // Copy every tokenizer.* key from this GGUF (its token count becomes the
  // vocabulary size); empty: generate a byte-level BPE vocabulary of
  // shape.n_vocab tokens.
  std::string vocab_from;
  int threads = 0;  // 0: all hardware threads
};

// Checks the shape (positive sizes, heads dividing the embedding, kv heads
// dividing heads) and the file type. InvalidArgument names the field.
[[nodiscard]] absl::Status ValidateSynthOptions(const SynthOptions& options);

// The tensors WriteSynthModel would write (name, type, shape, size; no
// offsets, no data), and the hyper-parameters a reader of that file would
// see: what `layerpool plan --shape` costs without writing gigabytes.
[[nodiscard]] absl::StatusOr<std::vector<gguf::TensorInfo>> SynthTensorTable(
    const SynthOptions& options);
[[nodiscard]] absl::StatusOr<HParams> SynthHParams(const SynthOptions& options);

// Writes the model to `path` (atomically, see GgufWriter).
[[nodiscard]] absl::Status WriteSynthModel(
    const SynthOptions& options, const std::string& path,
    const gguf::GgufWriter::Progress& progress = nullptr);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_SYNTH_SYNTH_H_
