#include "worker/stage_weights.h"

#include "model/hparams/arch.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/layout/stage_layout.h"
#include "model/quant/dequantize.h"

namespace layerpool {
namespace {

// Rows [first, first + n) of `m`: rows are contiguous, so a view.
Matrix RowRange(const Matrix& m, int64_t first, int64_t n) {
  Matrix r = m;
  r.data = m.data + static_cast<size_t>(first) * static_cast<size_t>(*RowBytes(m.type, m.cols));
  r.rows = n;
  return r;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

class Loader {
 public:
  Loader(const gguf::GgufFile& file, const gguf::TensorMap& map)
      : file_(file), map_(map) {}

  // A matrix, or with n_expert > 0 the stacked matrices of that many
  // experts (GGUF shape [cols, rows, n_expert]).
  absl::StatusOr<Matrix> GetMatrix(const std::string& name, int64_t cols,
                                   int64_t rows, int64_t n_expert = 0) {
    std::vector<int64_t> shape = {cols, rows};
    if (n_expert > 0) shape.push_back(n_expert);
    LP_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, Find(name, shape));
    if (n_expert > 0) rows *= n_expert;
    if (!CanDequantize(t->type)) {
      return absl::UnimplementedError(absl::StrCat(
          "tensor ", name, ": type ", std::string(GetTypeTraits(t->type)->name),
          " is not supported for computation"));
    }
    LP_ASSIGN_OR_RETURN(auto bytes, map_.Data(*t), "tensor ", name);
    bytes_ += t->size_bytes;
    return Matrix{t->type, bytes.data(), rows, cols};
  }

  // Norm weights are tiny; they are kept as floats whatever their type.
  absl::StatusOr<std::vector<float>> GetVector(const std::string& name,
                                               int64_t n) {
    LP_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, Find(name, {n}));
    LP_ASSIGN_OR_RETURN(auto bytes, map_.Data(*t), "tensor ", name);
    std::vector<float> out(static_cast<size_t>(n));
    if (!DequantizeRow(t->type, bytes.data(), out.data(), n)) {
      return absl::UnimplementedError(absl::StrCat(
          "tensor ", name, ": type ", std::string(GetTypeTraits(t->type)->name),
          " is not supported"));
    }
    bytes_ += t->size_bytes;
    return out;
  }

  uint64_t bytes() const { return bytes_; }

 private:
  absl::StatusOr<const gguf::TensorInfo*> Find(
      const std::string& name, const std::vector<int64_t>& shape) {
    const gguf::TensorInfo* t = map_.Find(name);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "tensor ", name, " is missing from ", file_.path()));
    }
    if (t->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", name, ": shape ", ShapeText(t->shape), ", expected ",
          ShapeText(shape)));
    }
    return t;
  }

  const gguf::GgufFile& file_;
  const gguf::TensorMap& map_;
  uint64_t bytes_ = 0;
};

}  // namespace

Matrix ExpertRows(const Matrix& m, int64_t n_expert, int64_t e) {
  const int64_t rows = m.rows / n_expert;
  return RowRange(m, e * rows, rows);
}

absl::StatusOr<std::unique_ptr<StageWeights>> StageWeights::Load(
    const gguf::GgufFile& file, const HParams& hp, int64_t first, int64_t last) {
  LP_RETURN_IF_ERROR(ValidateForInference(hp));
  if (first < 0 || last > hp.n_layer || first >= last) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer range [", first, ", ", last, ") is not within the model's ",
        hp.n_layer, " layers"));
  }
  std::unique_ptr<StageWeights> w(new StageWeights());
  w->first_ = first;
  w->last_ = last;
  w->has_embedding_ = first == 0;
  w->has_output_ = last == hp.n_layer;
  const bool tied = HasTiedOutput(file);
  const bool need_embd = w->has_embedding_ || (w->has_output_ && tied);

  LP_ASSIGN_OR_RETURN(
      w->map_, gguf::TensorMap::Map(file, [&](const gguf::TensorInfo& t) {
        return StageHoldsTensor(t.name, first, last, hp.n_layer, tied);
      }));

  Loader load(file, w->map_);
  const int64_t q_dim = hp.n_head * hp.head_dim;
  const int64_t kv_dim = hp.n_head_kv * hp.head_dim;
  for (auto [name, out] : {std::pair{"rope_freqs.weight", &w->rope_freqs_},
                           std::pair{"rope_factors_long.weight", &w->rope_factors_long_},
                           std::pair{"rope_factors_short.weight", &w->rope_factors_short_}}) {
    if (file.FindTensor(name) != nullptr) {
      LP_ASSIGN_OR_RETURN(*out, load.GetVector(name, hp.n_rot / 2));
    }
  }
  if (need_embd) {
    LP_ASSIGN_OR_RETURN(w->token_embd_,
                        load.GetMatrix("token_embd.weight", hp.n_embd, hp.n_vocab));
  }
  if (w->has_output_) {
    LP_ASSIGN_OR_RETURN(w->output_norm_,
                        load.GetVector("output_norm.weight", hp.n_embd));
    if (tied) {
      w->output_ = w->token_embd_;
    } else {
      LP_ASSIGN_OR_RETURN(w->output_,
                          load.GetMatrix("output.weight", hp.n_embd, hp.n_vocab));
    }
  }
  const ArchSpec* arch = FindArch(hp.architecture);
  for (int64_t i = first; i < last; ++i) {
    const std::string b = absl::StrCat("blk.", i, ".");
    LayerWeights l;
    LP_ASSIGN_OR_RETURN(l.attn_norm, load.GetVector(b + "attn_norm.weight", hp.n_embd));
    if (arch != nullptr && arch->fused_qkv) {
      LP_ASSIGN_OR_RETURN(Matrix qkv,
                          load.GetMatrix(b + "attn_qkv.weight", hp.n_embd, q_dim + 2 * kv_dim));
      l.wq = RowRange(qkv, 0, q_dim);
      l.wk = RowRange(qkv, q_dim, kv_dim);
      l.wv = RowRange(qkv, q_dim + kv_dim, kv_dim);
    } else {
      LP_ASSIGN_OR_RETURN(l.wq, load.GetMatrix(b + "attn_q.weight", hp.n_embd, q_dim));
      LP_ASSIGN_OR_RETURN(l.wk, load.GetMatrix(b + "attn_k.weight", hp.n_embd, kv_dim));
      LP_ASSIGN_OR_RETURN(l.wv, load.GetMatrix(b + "attn_v.weight", hp.n_embd, kv_dim));
    }
    LP_ASSIGN_OR_RETURN(l.wo, load.GetMatrix(b + "attn_output.weight", q_dim, hp.n_embd));
    if (arch != nullptr && arch->qkv_bias) {
      LP_ASSIGN_OR_RETURN(l.bq, load.GetVector(b + "attn_q.bias", q_dim));
      LP_ASSIGN_OR_RETURN(l.bk, load.GetVector(b + "attn_k.bias", kv_dim));
      LP_ASSIGN_OR_RETURN(l.bv, load.GetVector(b + "attn_v.bias", kv_dim));
    }
    LP_ASSIGN_OR_RETURN(l.ffn_norm, load.GetVector(b + "ffn_norm.weight", hp.n_embd));
    if (hp.n_expert > 0) {
      LP_ASSIGN_OR_RETURN(l.gate_inp,
                          load.GetMatrix(b + "ffn_gate_inp.weight", hp.n_embd, hp.n_expert));
      LP_ASSIGN_OR_RETURN(l.gate_exps, load.GetMatrix(b + "ffn_gate_exps.weight", hp.n_embd,
                                                      hp.n_ff, hp.n_expert));
      LP_ASSIGN_OR_RETURN(l.up_exps, load.GetMatrix(b + "ffn_up_exps.weight", hp.n_embd, hp.n_ff,
                                                    hp.n_expert));
      LP_ASSIGN_OR_RETURN(l.down_exps, load.GetMatrix(b + "ffn_down_exps.weight", hp.n_ff,
                                                      hp.n_embd, hp.n_expert));
    } else if (arch != nullptr && arch->fused_gate_up) {
      LP_ASSIGN_OR_RETURN(Matrix gate_up,
                          load.GetMatrix(b + "ffn_up.weight", hp.n_embd, 2 * hp.n_ff));
      l.gate = RowRange(gate_up, 0, hp.n_ff);
      l.up = RowRange(gate_up, hp.n_ff, hp.n_ff);
    } else {
      LP_ASSIGN_OR_RETURN(l.gate, load.GetMatrix(b + "ffn_gate.weight", hp.n_embd, hp.n_ff));
      LP_ASSIGN_OR_RETURN(l.up, load.GetMatrix(b + "ffn_up.weight", hp.n_embd, hp.n_ff));
    }
    if (hp.n_expert == 0) {
      LP_ASSIGN_OR_RETURN(l.down, load.GetMatrix(b + "ffn_down.weight", hp.n_ff, hp.n_embd));
    }
    if (arch != nullptr && arch->post_norms) {
      LP_ASSIGN_OR_RETURN(l.attn_post_norm,
                          load.GetVector(b + "post_attention_norm.weight", hp.n_embd));
      LP_ASSIGN_OR_RETURN(l.ffn_post_norm, load.GetVector(b + "post_ffw_norm.weight", hp.n_embd));
    }
    w->layers_.push_back(std::move(l));
  }
  // A token reads one row of the embedding table, not all of it; the table
  // counts only when it doubles as the output head.
  w->weight_bytes_ = load.bytes();
  if (hp.n_expert > 0) {  // a token reads only its experts' matrices
    for (const LayerWeights& l : w->layers_) {
      for (const Matrix* m : {&l.gate_exps, &l.up_exps, &l.down_exps}) {
        const uint64_t bytes = *RowBytes(m->type, m->cols) * static_cast<uint64_t>(m->rows);
        w->weight_bytes_ -= bytes / hp.n_expert * (hp.n_expert - hp.n_expert_used);
      }
    }
  }
  if (need_embd && !(w->has_output_ && tied)) {
    w->weight_bytes_ -= *RowBytes(w->token_embd_.type, w->token_embd_.cols) *
                        static_cast<uint64_t>(w->token_embd_.rows);
  }
  return w;
}

}  // namespace layerpool
