// Model hyper-parameters read from GGUF metadata, and the memory formulas
// the planner and `inspect` use.
//
// Keys are "<arch>.<name>" (e.g. llama.block_count) as llama.cpp writes
// them. Only what a llama-family decoder needs is read; a file of another
// architecture still yields the fields it has, and Validate() says what is
// missing for inference.
#ifndef LAYERPOOL_MODEL_HPARAMS_HPARAMS_H_
#define LAYERPOOL_MODEL_HPARAMS_HPARAMS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/gguf/gguf.h"

namespace layerpool {

struct HParams {
  std::string architecture;   // general.architecture
  std::string name;           // general.name, may be empty
  int64_t n_layer = 0;        // block_count
  int64_t n_embd = 0;         // embedding_length
  int64_t n_ff = 0;           // feed_forward_length
  int64_t n_head = 0;         // attention.head_count
  int64_t n_head_kv = 0;      // attention.head_count_kv (default n_head)
  int64_t head_dim = 0;       // attention.key_length (default n_embd/n_head)
  int64_t n_rot = 0;          // rope.dimension_count (default head_dim)
  int64_t n_ctx_train = 0;    // context_length
  int64_t n_vocab = 0;        // vocab_size, else tokenizer token count
  double rope_freq_base = 10000.0;  // rope.freq_base
  double rope_freq_scale = 1.0;     // 1 / rope.scaling.factor (linear, yarn)
  std::string rope_scaling_type;    // rope.scaling.type: "", linear, yarn, none
  int64_t rope_yarn_orig_ctx = 0;   // rope.scaling.original_context_length
  double rope_attn_factor = 1.0;    // rope.scaling.attn_factor
  // attention.sliding_window where the architecture applies it (else 0):
  // see AttentionWindow for which layers.
  int64_t n_swa = 0;
  double rms_eps = 1e-5;            // attention.layer_norm_rms_epsilon
  int64_t file_type = -1;           // general.file_type, -1 when absent
  // pooling_type (llama.cpp's enum: 0 none, 1 mean, 2 cls, 3 last, 4 rank),
  // -1 when absent: how the model's embeddings are pooled.
  int64_t pooling_type = -1;
  // Soft caps of attention scores and output logits (gemma2's
  // attn_logit_softcapping, final_logit_softcapping); 0: none.
  double attn_softcap = 0;
  double final_softcap = 0;
  // Mixture of experts (Mixtral): expert_count feed-forward experts per
  // layer, expert_used_count of them run per token; 0: a dense model.
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
};

// Reads the hyper-parameters of `file`. InvalidArgument when a key has the
// wrong type or a value is out of range (e.g. head_count_kv not dividing
// head_count); missing keys are left at their defaults.
[[nodiscard]] absl::StatusOr<HParams> ReadHParams(const gguf::GgufFile& file);

// FailedPrecondition naming the first key a llama-style forward pass needs
// and `hp` lacks.
[[nodiscard]] absl::Status ValidateForInference(const HParams& hp);

// The sliding window layer `layer` attends within (ArchSpec::window_layers),
// 0 for full attention.
int64_t AttentionWindow(const HParams& hp, int64_t layer);

// The context a sequence gets when none is asked for: the model's training
// context, at most 4096. serve, run and plan all use it.
int64_t DefaultContext(const HParams& hp);

// Bytes of KV cache per token of context, over `n_layers` layers, with
// elements of `bytes_per_element` (2 for f16): 2 (K and V) x layers x
// kv_heads x head_dim x bytes. Sliding-window layers keep every position
// too.
double KvBytesPerToken(const HParams& hp, int64_t n_layers,
                       double bytes_per_element);

// llama.cpp's name of a general.file_type value ("Q4_K - Medium", ...), or
// "unknown".
std::string FileTypeName(int64_t file_type);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_HPARAMS_HPARAMS_H_
