// The architectures layerpool runs and how each differs from llama: the
// one place a forward-pass variation is named. A new architecture is a row
// in kArchitectures (arch.cc) plus, where it needs a variation no row has
// yet, a field here and the code that reads it in worker/stage.cc; synth
// learns to write it (model/synth) and tests/shapes holds it to llama.cpp.
//
// Metadata keys are read under the architecture's own prefix ("qwen2.")
// by ReadHParams whatever the row says.
#ifndef LAYERPOOL_MODEL_HPARAMS_ARCH_H_
#define LAYERPOOL_MODEL_HPARAMS_ARCH_H_

#include <string>
#include <string_view>
#include <vector>

namespace layerpool {

// Which layers apply attention.sliding_window.
enum class WindowLayers {
  kNone,  // the key is ignored, as llama.cpp does for llama and qwen2
  kAll,   // every layer (phi3)
  kEven,  // layers 0, 2, 4, ...; the odd ones attend to everything (gemma2)
};

// The feed-forward block's activation: act(gate x) * (up x).
enum class FfnActivation { kSilu, kGelu };

struct ArchSpec {
  std::string_view name;  // general.architecture
  // RoPE pairs dimensions (i, i + n_rot / 2) (GPT-NeoX, ggml mode 2) rather
  // than (2i, 2i + 1).
  bool neox_rope = false;
  // attn_q/k/v carry bias vectors (blk.N.attn_q.bias ...), added after the
  // projections.
  bool qkv_bias = false;
  // One attn_qkv matrix holds the Q, K and V rows, in that order.
  bool fused_qkv = false;
  // ffn_up holds the gate rows, then the up rows (2 x n_ff); no ffn_gate.
  bool fused_gate_up = false;
  // Q is scaled by 1/sqrt(head_dim) after RoPE, and attention scores are
  // not scaled again (phi3's graph): the same maths, other rounding.
  bool scale_q_before_attention = false;
  WindowLayers window_layers = WindowLayers::kNone;
  // The window when the file has no attention.sliding_window; 0: none.
  int64_t default_window = 0;
  FfnActivation ffn_activation = FfnActivation::kSilu;
  // Gemma: the token embeddings are scaled by sqrt(n_embd) on the way in.
  bool scale_embeddings = false;
  // Gemma 2: RMS norms on the attention and feed-forward outputs before
  // each residual add (blk.N.post_attention_norm, blk.N.post_ffw_norm).
  bool post_norms = false;
  // Gemma 2: attention scores and output logits are soft-capped, by
  // attn_logit_softcapping (default 50) and final_logit_softcapping
  // (default 30).
  bool softcap = false;
  // Mixtral-style experts may replace the feed-forward block when the file
  // says expert_count: ffn_gate_inp routes each token to its top
  // expert_used_count experts (softmax, renormalised weights) in
  // ffn_{gate,up,down}_exps.
  bool experts = false;
  // Phi-3's LongRoPE: rope_factors_long/short.weight, picked by context
  // (worker/stage.h, StageOptions::n_ctx).
  bool long_short_rope = false;
};

// The spec of `name`, or nullptr for an architecture layerpool cannot run.
const ArchSpec* FindArch(std::string_view name);
// The names layerpool runs, for messages: "llama, qwen2".
std::string ArchNames();

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_HPARAMS_ARCH_H_
