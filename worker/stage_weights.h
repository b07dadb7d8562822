// The weights of one pipeline stage: a contiguous range of transformer
// layers [first, last) of a llama-family GGUF model, plus the token
// embedding when the stage is first and the final norm and output head when
// it is last.
//
// Only the stage's own tensors are mapped (gguf::TensorMap), so a worker
// holding 10 of 80 layers keeps about an eighth of the file resident. Every
// tensor is checked when loading: present, of a type the kernels compute
// with, and of the shape the hyper-parameters imply; errors name the tensor
// ("blk.7.attn_q.weight: shape [4096, 1024], expected [4096, 4096]").
//
// Immutable after Load; safe to read from any number of threads.
#ifndef LAYERPOOL_WORKER_STAGE_WEIGHTS_H_
#define LAYERPOOL_WORKER_STAGE_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"

namespace layerpool {

// A weight matrix as the kernels see it: `rows` rows of `cols` elements in
// `type`, row-major (GGUF shape [cols, rows]).
struct Matrix {
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

struct LayerWeights {
  std::vector<float> attn_norm;
  Matrix wq, wk, wv, wo;
  // Projection biases (ArchSpec::qkv_bias), empty otherwise.
  std::vector<float> bq, bk, bv;
  std::vector<float> ffn_norm;
  Matrix gate, up, down;
  // Norms of the attention and feed-forward outputs (ArchSpec::post_norms),
  // empty otherwise.
  std::vector<float> attn_post_norm, ffn_post_norm;
  // Mixture of experts (hp.n_expert > 0; gate, up and down are then
  // unset): the router, n_expert rows, and each kind of expert matrix for
  // all experts stacked, expert e's rows first at e x its row count
  // (ExpertRows).
  Matrix gate_inp, gate_exps, up_exps, down_exps;
};

// Expert e's matrix out of stacked experts `m` of n_expert experts.
Matrix ExpertRows(const Matrix& m, int64_t n_expert, int64_t e);

class StageWeights {
 public:
  // Maps and checks the tensors of layers [first, last) of `file`, plus the
  // embedding if first == 0 and the output if last == hp.n_layer.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StageWeights>> Load(
      const gguf::GgufFile& file, const HParams& hp, int64_t first,
      int64_t last);

  int64_t first_layer() const { return first_; }
  int64_t last_layer() const { return last_; }
  bool is_first() const { return has_embedding_; }
  bool is_last() const { return has_output_; }

  const Matrix& token_embd() const { return token_embd_; }  // first stage
  const std::vector<float>& output_norm() const { return output_norm_; }
  const Matrix& output() const { return output_; }           // last stage
  // Llama 3.1's per-pair RoPE factors (rope_freqs.weight, n_rot / 2 floats,
  // held by every stage); empty when the model has none.
  const std::vector<float>& rope_freqs() const { return rope_freqs_; }
  // Phi-3's LongRoPE factors (rope_factors_long/short.weight, n_rot / 2
  // floats each, held by every stage); empty when the model has none.
  const std::vector<float>& rope_factors_long() const { return rope_factors_long_; }
  const std::vector<float>& rope_factors_short() const { return rope_factors_short_; }
  const LayerWeights& layer(int64_t i) const { return layers_[i - first_]; }

  // Bytes of weights this stage reads per token (for bandwidth figures):
  // every matrix and norm, but of the embedding table only what the output
  // head reads when it is tied, and of the experts only the ones a token
  // uses (expert_used_count of expert_count).
  uint64_t weight_bytes() const { return weight_bytes_; }
  uint64_t mapped_bytes() const { return map_.mapped_bytes(); }

 private:
  StageWeights() = default;

  int64_t first_ = 0;
  int64_t last_ = 0;
  bool has_embedding_ = false;
  bool has_output_ = false;
  Matrix token_embd_;
  std::vector<float> output_norm_;
  std::vector<float> rope_freqs_, rope_factors_long_, rope_factors_short_;
  Matrix output_;
  std::vector<LayerWeights> layers_;
  uint64_t weight_bytes_ = 0;
  gguf::TensorMap map_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_STAGE_WEIGHTS_H_
