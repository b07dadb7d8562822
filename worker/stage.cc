#include "worker/stage.h"

#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/hparams/support.h"

namespace layerpool {

absl::StatusOr<std::unique_ptr<Stage>> Stage::Create(
    const gguf::GgufFile& file, const StageOptions& options) {
  std::unique_ptr<Stage> stage(new Stage());
  LP_ASSIGN_OR_RETURN(stage->hp_, ReadHParams(file), file.path());
  const HParams& hp = stage->hp_;
  LP_RETURN_IF_ERROR(ValidateForInference(hp), file.path());
  LP_RETURN_IF_ERROR(CheckSupported(file, hp), file.path());
  stage->arch_ = FindArch(hp.architecture);
  stage->rope_mode_ = stage->arch_->neox_rope ? kernels::RopeMode::kNeox : kernels::RopeMode::kNormal;
  if (stage->arch_->scale_q_before_attention) {
    // 1/sqrt(head_dim), but Gemma 2 27B (46 layers) was trained with
    // 1/sqrt(n_embd / n_head): llama.cpp tells the two apart by layer count.
    const int64_t d = hp.architecture == "gemma2" && hp.n_layer == 46 ? hp.n_embd / hp.n_head
                                                                       : hp.head_dim;
    stage->q_scale_ = 1.0f / std::sqrt(static_cast<float>(d));
  }
  if (options.threads < 1) {
    return absl::InvalidArgumentError("--threads must be at least 1");
  }
  const int64_t last = options.last_layer < 0 ? hp.n_layer : options.last_layer;
  LP_ASSIGN_OR_RETURN(stage->weights_, StageWeights::Load(
                                           file, hp, options.first_layer, last));
  stage->rope_base_ =
      options.rope_freq_base > 0 ? options.rope_freq_base : hp.rope_freq_base;
  stage->rope_scale_ =
      options.rope_freq_scale > 0 ? options.rope_freq_scale : hp.rope_freq_scale;
  if (options.ntk_alpha != 1) {
    if (options.ntk_alpha <= 0) {
      return absl::InvalidArgumentError("NTK alpha must be positive");
    }
    if (hp.n_rot <= 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "NTK scaling needs a rope dimension above 2; this model's is ", hp.n_rot));
    }
    stage->rope_base_ *= std::pow(options.ntk_alpha,
                                  double(hp.n_rot) / double(hp.n_rot - 2));
  }
  if (hp.rope_scaling_type == "yarn" || hp.rope_attn_factor != 1.0) {
    // As llama.cpp: ext_factor 1 for YaRN, beta_fast 32, beta_slow 1, the
    // original context from the metadata (else the training context).
    auto yarn = std::make_unique<kernels::RopeYarn>();
    yarn->attn_factor = static_cast<float>(hp.rope_attn_factor);
    if (hp.rope_scaling_type == "yarn") {
      yarn->ext_factor = 1.0f;
      const int64_t orig = hp.rope_yarn_orig_ctx > 0 ? hp.rope_yarn_orig_ctx : hp.n_ctx_train;
      kernels::RopeYarnCorrDims(hp.n_rot, orig, static_cast<float>(stage->rope_base_), 32.0f,
                                1.0f, &yarn->corr_low, &yarn->corr_high);
    }
    stage->yarn_ = std::move(yarn);
  }
  const StageWeights& w = *stage->weights_;
  const int64_t original_ctx = hp.rope_yarn_orig_ctx > 0 ? hp.rope_yarn_orig_ctx : hp.n_ctx_train;
  const int64_t n_ctx = options.n_ctx > 0 ? options.n_ctx : DefaultContext(hp);
  const std::vector<float>& factors = !w.rope_freqs().empty() ? w.rope_freqs()
                                      : n_ctx > original_ctx  ? w.rope_factors_long()
                                                              : w.rope_factors_short();
  stage->rope_factors_ = factors.empty() ? nullptr : factors.data();
  stage->pool_ = std::make_unique<kernels::ThreadPool>(options.threads);
  stage->kv_type_ = options.kv_type;
  return stage;
}

absl::StatusOr<std::unique_ptr<KvCache>> Stage::NewCache(int64_t n_ctx) const {
  return KvCache::Create(kv_type_, weights_->last_layer() - weights_->first_layer(),
                         n_ctx, hp_.n_head_kv, hp_.head_dim);
}

absl::Status Stage::Validate(const StageBatch& b) const {
  const size_t n = b.positions.size();
  if (n == 0) return absl::InvalidArgumentError("empty batch");
  if (b.caches.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch has ", n, " positions but ", b.caches.size(), " caches"));
  }
  if (is_first()) {
    if (b.tokens.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch has ", n, " positions but ", b.tokens.size(), " tokens"));
    }
    for (int32_t t : b.tokens) {
      if (t < 0 || t >= hp_.n_vocab) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token id ", t, " is outside the vocabulary [0, ", hp_.n_vocab, ")"));
      }
    }
  } else if (b.hidden.size() != n * static_cast<size_t>(hp_.n_embd)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hidden states hold ", b.hidden.size(), " floats, expected ", n, " x ",
        hp_.n_embd));
  }
  for (size_t i = 0; i < n; ++i) {
    if (b.caches[i] == nullptr || b.positions[i] < 0 ||
        b.positions[i] >= b.caches[i]->n_ctx()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "position ", b.positions[i], " of batch row ", i,
          " is outside its sequence's context"));
    }
  }
  for (int64_t r : b.logit_rows) {
    if (r < 0 || r >= static_cast<int64_t>(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("logit row ", r, " is outside the batch"));
    }
  }
  for (int64_t r : b.embed_rows) {
    if (r < 0 || r >= static_cast<int64_t>(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("embedding row ", r, " is outside the batch"));
    }
  }
  for (int64_t r : b.one_token_rows) {
    if (r < 0 || r >= static_cast<int64_t>(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("one-token row ", r, " is outside the batch"));
    }
  }
  return absl::OkStatus();
}

void Stage::ChooseAttentionOrder(const StageBatch& b) {
  const size_t n = b.positions.size();
  absl::flat_hash_map<const KvCache*, int64_t> rows_of;
  for (KvCache* cache : b.caches) ++rows_of[cache];
  one_token_.assign(n, 0);
  for (size_t t = 0; t < n; ++t) one_token_[t] = rows_of[b.caches[t]] == 1;
  for (int64_t r : b.one_token_rows) one_token_[r] = 1;
}

void Stage::Attention(int64_t layer, const StageBatch& b) {
  const int64_t n = static_cast<int64_t>(b.positions.size());
  const kernels::AttentionShape shape{
      .n_head = static_cast<int>(hp_.n_head),
      .n_head_kv = static_cast<int>(hp_.n_head_kv),
      .head_dim = static_cast<int>(hp_.head_dim),
      .scale = q_scale_ > 0 ? 1.0f : 1.0f / std::sqrt(static_cast<float>(hp_.head_dim)),
      .softcap = static_cast<float>(hp_.attn_softcap),
      .window = AttentionWindow(hp_, layer)};
  const int64_t q_dim = hp_.n_head * hp_.head_dim;
  const int64_t local = layer - weights_->first_layer();
  // Work items are (token, head) pairs, so a single decode token still
  // spreads its heads over the threads.
  pool_->ParallelFor(n * hp_.n_head, [&](int64_t begin, int64_t end) {
    thread_local kernels::AttentionScratch scratch;
    for (int64_t item = begin; item < end;) {
      const int64_t t = item / hp_.n_head;
      const int h0 = static_cast<int>(item % hp_.n_head);
      const int h1 = static_cast<int>(std::min<int64_t>(hp_.n_head, h0 + end - item));
      kernels::AttendOneToken(shape, &q_[t * q_dim], b.caches[t]->Layer(local),
                              b.positions[t] + 1, /*in_batch=*/one_token_[t] == 0, h0, h1,
                              &attn_[t * q_dim],
                              scratch);
      item += h1 - h0;
    }
  });
}

void Stage::Layer(int64_t layer, const StageBatch& b) {
  const LayerWeights& w = weights_->layer(layer);
  const int64_t n = static_cast<int64_t>(b.positions.size());
  const int64_t d = hp_.n_embd;
  const int64_t q_dim = hp_.n_head * hp_.head_dim;
  const int64_t kv_dim = hp_.n_head_kv * hp_.head_dim;
  kernels::ThreadPool* pool = pool_.get();
  auto matmul = [&](const Matrix& m, const std::vector<float>& in,
                    std::vector<float>& out) {
    out.resize(static_cast<size_t>(n * m.rows));
    kernels::MatMul(m.type, m.data, m.rows, m.cols, in.data(), n, out.data(), pool);
  };

  // Attention block.
  norm_.resize(x_.size());
  for (int64_t t = 0; t < n; ++t) {
    kernels::RmsNorm(&x_[t * d], w.attn_norm.data(), static_cast<float>(hp_.rms_eps),
                     d, &norm_[t * d]);
  }
  matmul(w.wq, norm_, q_);
  matmul(w.wk, norm_, k_);
  matmul(w.wv, norm_, v_);
  if (!w.bq.empty()) {  // ggml_add after the projection, element by element
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t i = 0; i < q_dim; ++i) q_[t * q_dim + i] += w.bq[i];
      for (int64_t i = 0; i < kv_dim; ++i) k_[t * kv_dim + i] += w.bk[i];
      for (int64_t i = 0; i < kv_dim; ++i) v_[t * kv_dim + i] += w.bv[i];
    }
  }
  const int64_t local = layer - weights_->first_layer();
  const float* rope_freqs = rope_factors_;
  for (int64_t t = 0; t < n; ++t) {
    kernels::Rope(&q_[t * q_dim], hp_.n_head, hp_.head_dim, hp_.n_rot, b.positions[t],
                  static_cast<float>(rope_base_), static_cast<float>(rope_scale_), rope_mode_,
                  rope_freqs, yarn_.get());
    kernels::Rope(&k_[t * kv_dim], hp_.n_head_kv, hp_.head_dim, hp_.n_rot,
                  b.positions[t], static_cast<float>(rope_base_),
                  static_cast<float>(rope_scale_), rope_mode_, rope_freqs, yarn_.get());
    b.caches[t]->Store(local, b.positions[t], &k_[t * kv_dim], &v_[t * kv_dim]);
  }
  if (q_scale_ > 0) {  // ggml_scale of the roped Q, as phi3's and gemma2's graphs do
    for (float& v : q_) v *= q_scale_;
  }
  attn_.resize(static_cast<size_t>(n * q_dim));
  Attention(layer, b);
  matmul(w.wo, attn_, proj_);
  PostNorm(w.attn_post_norm, n);
  kernels::Add(x_.data(), proj_.data(), static_cast<int64_t>(x_.size()));

  // Feed-forward block.
  for (int64_t t = 0; t < n; ++t) {
    kernels::RmsNorm(&x_[t * d], w.ffn_norm.data(), static_cast<float>(hp_.rms_eps),
                     d, &norm_[t * d]);
  }
  if (hp_.n_expert > 0) {
    proj_.resize(x_.size());
    ExpertsForward(w, d, hp_.n_ff, hp_.n_expert, hp_.n_expert_used, norm_.data(), n,
                   proj_.data(), experts_, pool);
    kernels::Add(x_.data(), proj_.data(), static_cast<int64_t>(x_.size()));
    return;
  }
  matmul(w.gate, norm_, gate_);
  matmul(w.up, norm_, up_);
  if (arch_->ffn_activation == FfnActivation::kGelu) {
    kernels::GeGlu(gate_.data(), up_.data(), n, hp_.n_ff, gate_.data());
  } else {
    kernels::SwiGlu(gate_.data(), up_.data(), n, hp_.n_ff, gate_.data());
  }
  matmul(w.down, gate_, proj_);
  PostNorm(w.ffn_post_norm, n);
  kernels::Add(x_.data(), proj_.data(), static_cast<int64_t>(x_.size()));
}

void Stage::PostNorm(const std::vector<float>& weight, int64_t n) {
  if (weight.empty()) return;
  const int64_t d = hp_.n_embd;
  for (int64_t t = 0; t < n; ++t) {
    kernels::RmsNorm(&proj_[t * d], weight.data(), static_cast<float>(hp_.rms_eps), d,
                     &proj_[t * d]);
  }
}

absl::Status Stage::Forward(const StageBatch& b, std::vector<float>* out,
                            std::vector<float>* normed) {
  LP_RETURN_IF_ERROR(Validate(b));
  ChooseAttentionOrder(b);
  const int64_t n = static_cast<int64_t>(b.positions.size());
  const int64_t d = hp_.n_embd;
  x_.resize(static_cast<size_t>(n * d));
  if (is_first()) {
    const Matrix& e = weights_->token_embd();
    kernels::GetRows(e.type, e.data, e.cols, b.tokens.data(), n, x_.data());
    if (arch_->scale_embeddings) {  // ggml_scale by sqrtf(n_embd)
      const float scale = std::sqrt(static_cast<float>(d));
      for (float& v : x_) v *= scale;
    }
  } else {
    std::copy(b.hidden.begin(), b.hidden.end(), x_.begin());
  }
  for (int64_t l = weights_->first_layer(); l < weights_->last_layer(); ++l) {
    Layer(l, b);
  }
  if (!is_last()) {
    out->assign(x_.begin(), x_.end());
    return absl::OkStatus();
  }
  if (normed != nullptr) {
    normed->resize(b.embed_rows.size() * static_cast<size_t>(d));
    for (size_t i = 0; i < b.embed_rows.size(); ++i) {
      kernels::RmsNorm(&x_[b.embed_rows[i] * d], weights_->output_norm().data(),
                       static_cast<float>(hp_.rms_eps), d, &(*normed)[i * d]);
    }
  }
  const int64_t rows = static_cast<int64_t>(b.logit_rows.size());
  norm_.resize(static_cast<size_t>(rows * d));
  for (int64_t i = 0; i < rows; ++i) {
    kernels::RmsNorm(&x_[b.logit_rows[i] * d], weights_->output_norm().data(),
                     static_cast<float>(hp_.rms_eps), d, &norm_[i * d]);
  }
  const Matrix& o = weights_->output();
  out->resize(static_cast<size_t>(rows * o.rows));
  if (rows > 0) {
    kernels::MatMul(o.type, o.data, o.rows, o.cols, norm_.data(), rows,
                    out->data(), pool_.get());
  }
  if (hp_.final_softcap > 0) {
    kernels::SoftCap(out->data(), static_cast<int64_t>(out->size()),
                     static_cast<float>(hp_.final_softcap));
  }
  return absl::OkStatus();
}

}  // namespace layerpool
