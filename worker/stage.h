// A pipeline stage: the forward pass of a llama-family model over a
// contiguous range of layers [first, last).
//
// The first stage turns token ids into embeddings; every stage runs its
// layers (RMSNorm, rotary embeddings, grouped-query attention over each
// sequence's KV cache, SwiGLU feed-forward, residuals); the last stage
// applies the final norm and the output head and returns logits. Where an
// architecture differs (model/hparams/arch.h: biases, fused tensors, sliding
// windows, soft caps, post-norms, GELU, experts) the ArchSpec says so and the code
// here reads it. A single
// process running a whole model is the one-stage case (first = 0, last =
// n_layer).
//
// A batch may mix tokens of several sequences: each token carries its
// position and the KV cache of its sequence, and attends causally to
// positions [0, pos] of that cache. Tokens of one sequence must come in
// increasing position order (prefill chunks, then one token per decode step).
//
// Thread safety: Forward is not reentrant (it reuses activation buffers);
// it uses the stage's own thread pool internally.
#ifndef LAYERPOOL_WORKER_STAGE_H_
#define LAYERPOOL_WORKER_STAGE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "kernels/thread_pool.h"
#include "model/gguf/gguf.h"
#include "model/hparams/arch.h"
#include "model/hparams/hparams.h"
#include "worker/experts.h"
#include "worker/kv_cache.h"
#include "worker/stage_weights.h"

namespace layerpool {

struct StageOptions {
  int64_t first_layer = 0;
  int64_t last_layer = -1;  // one past the stage's last layer; -1: the model's end
  int threads = 1;
  GgmlType kv_type = GgmlType::kF16;
  // RoPE overrides; 0 keeps the model's value. ntk_alpha scales the
  // frequency base NTK-style: base * alpha^(n_rot / (n_rot - 2)).
  double rope_freq_base = 0;
  double rope_freq_scale = 0;
  double ntk_alpha = 1;
  // The context of each sequence this stage serves (0: DefaultContext).
  // Phi-3's LongRoPE rotates with its long factors when it exceeds the
  // original context (rope.scaling.original_context_length), else with its
  // short ones, as llama.cpp picks them from its per-sequence context.
  int64_t n_ctx = 0;
};

struct StageBatch {
  std::span<const int32_t> tokens;    // first stage: one id per token
  std::span<const float> hidden;      // other stages: [n][n_embd]
  std::span<const int32_t> positions; // [n]
  std::span<KvCache* const> caches;   // [n]: each token's sequence
  // Last stage: the rows whose logits are wanted (e.g. each sequence's last
  // token), in output order.
  std::span<const int64_t> logit_rows;
  // Last stage: rows whose hidden state after the final norm is wanted
  // (embedding requests), in output order; see Forward's `normed`.
  std::span<const int64_t> embed_rows;
  // How attention rounds (with an f16 KV cache): a row that is its
  // sequence's only one here (no other row with its cache) takes llama.cpp's
  // one-token order, the others its batched order, except the rows listed
  // here, which take the one-token order too (a replay of tokens that were
  // decoded one at a time). So a sequence's numbers never depend on which
  // other sequences share its micro-batch.
  std::span<const int64_t> one_token_rows;
};

class Stage {
 public:
  // Loads the stage's weights from `file` (which must outlive the Stage).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Stage>> Create(
      const gguf::GgufFile& file, const StageOptions& options);

  // A KV cache for one sequence of up to n_ctx tokens over this stage's
  // layers.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<KvCache>> NewCache(
      int64_t n_ctx) const;

  // Runs the batch. `out` receives hidden states [n][n_embd], or on the
  // last stage logits [logit_rows.size()][n_vocab]. InvalidArgument for a
  // malformed batch (sizes that disagree, a token id outside the
  // vocabulary, a position outside its cache).
  // On the last stage, `normed` (when not null) receives the final-norm
  // hidden states of embed_rows, [embed_rows.size()][n_embd].
  [[nodiscard]] absl::Status Forward(const StageBatch& batch,
                                     std::vector<float>* out,
                                     std::vector<float>* normed = nullptr);

  const HParams& hparams() const { return hp_; }
  const StageWeights& weights() const { return *weights_; }
  bool is_first() const { return weights_->is_first(); }
  bool is_last() const { return weights_->is_last(); }
  double rope_freq_base() const { return rope_base_; }
  double rope_freq_scale() const { return rope_scale_; }

 private:
  Stage() = default;
  absl::Status Validate(const StageBatch& batch) const;
  // Fills one_token_ (see StageBatch::one_token_rows).
  void ChooseAttentionOrder(const StageBatch& batch);
  void Attention(int64_t layer, const StageBatch& batch);
  void Layer(int64_t layer, const StageBatch& batch);
  // proj_ = RmsNorm(proj_) * weight for n rows; nothing when weight is empty.
  void PostNorm(const std::vector<float>& weight, int64_t n);

  HParams hp_;
  double rope_base_ = 10000;
  double rope_scale_ = 1;
  kernels::RopeMode rope_mode_ = kernels::RopeMode::kNormal;
  const ArchSpec* arch_ = nullptr;
  // ArchSpec::scale_q_before_attention: the roped Q is multiplied by q_scale_
  // and the scores are not scaled again. Else 0.
  float q_scale_ = 0;
  // YaRN (or an attention factor other than 1); null: plain RoPE.
  std::unique_ptr<kernels::RopeYarn> yarn_;
  // Per-pair RoPE divisors (Llama 3.1's rope_freqs, or Phi-3's long or
  // short factors), null when the model has none.
  const float* rope_factors_ = nullptr;
  GgmlType kv_type_ = GgmlType::kF16;
  std::unique_ptr<StageWeights> weights_;
  std::unique_ptr<kernels::ThreadPool> pool_;
  // Activations, reused between calls: x is the residual stream.
  std::vector<float> x_, norm_, q_, k_, v_, attn_, proj_, gate_, up_;
  std::vector<uint8_t> one_token_;  // per row: attention in one-token order
  ExpertScratch experts_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_STAGE_H_
