#include "worker/served_stage.h"

#include <cmath>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "model/layout/stage_layout.h"
#include "worker/step_costs.h"

namespace layerpool {
namespace {

// Bounds on what a request may ask for, far above any real deployment, so
// that a malformed request fails on its field rather than in an allocation.
constexpr uint32_t kMaxSequences = 1 << 16;
constexpr uint32_t kMaxThreads = 1024;
// LoadStageRequest.measure_step_rows: the largest step timed, and how long
// the timing may take in all (beyond one unmeasured step).
constexpr uint32_t kMaxMeasuredRows = 64;
constexpr double kStepCostBudgetMs = 2000;

uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max()
                                          : r;
}

uint64_t SatMul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max()
                                          : r;
}

absl::StatusOr<GgmlType> KvTypeFromProto(v1::KvCacheType type) {
  switch (type) {
    case v1::KV_CACHE_TYPE_F32:
      return GgmlType::kF32;
    case v1::KV_CACHE_TYPE_F16:
      return GgmlType::kF16;
    case v1::KV_CACHE_TYPE_Q8_0:
      return GgmlType::kQ8_0;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "kv_type ", v1::KvCacheType_Name(type), " is not F32, F16 or Q8_0"));
  }
}

absl::Status CheckRequest(const v1::LoadStageRequest& r) {
  auto invalid = [](auto&&... what) {
    return absl::InvalidArgumentError(absl::StrCat(what...));
  };
  if (r.model_path().empty()) return invalid("model_path is empty");
  if (!r.has_layers()) return invalid("layers is not set");
  if (r.layers().first() > r.layers().last()) {
    return invalid("layers [", r.layers().first(), ", ", r.layers().last(),
                   "] is empty (first > last)");
  }
  if (r.n_ctx() == 0 ||
      r.n_ctx() > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
    return invalid("n_ctx must be in [1, 2^31), got ", r.n_ctx());
  }
  if (r.max_sequences() == 0 || r.max_sequences() > kMaxSequences) {
    return invalid("max_sequences must be in [1, ", kMaxSequences, "], got ",
                   r.max_sequences());
  }
  for (const auto& [name, value] : {std::pair{"rope_freq_base", r.rope_freq_base()},
                                    std::pair{"rope_freq_scale", r.rope_freq_scale()},
                                    std::pair{"ntk_alpha", r.ntk_alpha()}}) {
    if (!std::isfinite(value) || value < 0) {
      return invalid(name, " must be a finite number >= 0, got ", value);
    }
  }
  if (r.measure_step_rows() > kMaxMeasuredRows) {
    return invalid("measure_step_rows must be at most ", kMaxMeasuredRows,
                   ", got ", r.measure_step_rows());
  }
  if (r.n_threads() > kMaxThreads) {
    return invalid("n_threads must be at most ", kMaxThreads, ", got ",
                   r.n_threads());
  }
  if (!r.device().empty() && r.device() != "cpu") {
    return invalid("device '", r.device(),
                   "' is not available on this worker (it has: cpu)");
  }
  return KvTypeFromProto(r.kv_type()).status();
}

struct StageMemory {
  uint64_t weights = 0;
  uint64_t kv = 0;
  uint64_t work = 0;
  uint64_t total() const { return SatAdd(SatAdd(weights, kv), work); }
};

StageMemory EstimateMemory(const gguf::GgufFile& file, const HParams& hp,
                           int64_t first, int64_t end, GgmlType kv_type,
                           const v1::LoadStageRequest& r) {
  StageMemory m;
  const bool tied = HasTiedOutput(file);
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (StageHoldsTensor(t.name, first, end, hp.n_layer, tied)) {
      m.weights = SatAdd(m.weights, t.size_bytes);
    }
  }
  const int64_t kv_dim = hp.n_head_kv * hp.head_dim;
  m.kv = SatMul(KvCache::BytesFor(kv_type, end - first, r.n_ctx(), kv_dim),
                r.max_sequences());
  // The coordinator's planner charges the same figure, so that a stage it
  // plans is a stage the worker accepts.
  m.work = StageScratchBytes(hp, kWorkBufferRows);
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServedStage>> ServedStage::Load(
    const v1::LoadStageRequest& r, const LoadBudget& budget) {
  const auto start = std::chrono::steady_clock::now();
  LP_RETURN_IF_ERROR(CheckRequest(r));
  const uint32_t first = r.layers().first(), last = r.layers().last();
  const std::string layers = absl::StrCat("[", first, ", ", last, "]");

  // A FIFO or device would block or mislead the reader; a missing file
  // gets Open's NotFound, which names the path.
  std::error_code error;
  const std::filesystem::file_status file_status =
      std::filesystem::status(r.model_path(), error);
  if (std::filesystem::exists(file_status) &&
      !std::filesystem::is_regular_file(file_status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_path ", r.model_path(), " is not a regular file"));
  }
  std::unique_ptr<ServedStage> s(new ServedStage());
  s->request_ = r;
  gguf::GgufFile::Options open_options;
  open_options.map_data = false;  // the Stage maps its own tensors only
  LP_ASSIGN_OR_RETURN(s->file_,
                      gguf::GgufFile::Open(r.model_path(), open_options),
                      "model file ", r.model_path());
  LP_ASSIGN_OR_RETURN(HParams hp, ReadHParams(*s->file_), r.model_path());
  LP_RETURN_IF_ERROR(ValidateForInference(hp), r.model_path());
  if (last >= hp.n_layer) {
    return absl::InvalidArgumentError(
        absl::StrCat("layers ", layers, " lie outside the ", hp.n_layer,
                     " layers of ", r.model_path()));
  }
  const int64_t end = static_cast<int64_t>(last) + 1;

  LP_ASSIGN_OR_RETURN(std::string fingerprint,
                      StageFingerprint(*s->file_, first, end, hp.n_layer));
  if (!r.expected_content_hash().empty() &&
      r.expected_content_hash() != fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model file ", r.model_path(), " differs from the coordinator's for ",
        "layers ", layers, ": fingerprint ", fingerprint, ", expected ",
        r.expected_content_hash()));
  }

  const GgmlType kv_type = *KvTypeFromProto(r.kv_type());
  const int threads = r.n_threads() > 0 ? static_cast<int>(r.n_threads())
                                        : std::max(1, budget.default_threads);
  const StageMemory memory =
      EstimateMemory(*s->file_, hp, first, end, kv_type, r);
  if (budget.bytes > 0 && memory.total() > budget.bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "stage ", r.stage_index(), " needs ", HumanBytes(memory.total()),
        " for layers ", layers, " (weights ", HumanBytes(memory.weights),
        ", KV cache ", HumanBytes(memory.kv), " for ", r.max_sequences(), " x ",
        r.n_ctx(), " tokens, work buffers ", HumanBytes(memory.work),
        ") but this worker has ", HumanBytes(budget.bytes), " (", budget.source,
        "); short by ", HumanBytes(memory.total() - budget.bytes)));
  }

  StageOptions options;
  options.first_layer = first;
  options.last_layer = end;
  options.threads = threads;
  options.kv_type = kv_type;
  options.rope_freq_base = r.rope_freq_base();
  options.rope_freq_scale = r.rope_freq_scale();
  options.ntk_alpha = r.ntk_alpha() == 0 ? 1 : r.ntk_alpha();
  options.n_ctx = r.n_ctx();
  LP_ASSIGN_OR_RETURN(s->stage_, Stage::Create(*s->file_, options),
                      "loading layers ", layers);
  // A one-token cache proves the KV type suits the model (q8_0 needs a head
  // dimension that is a multiple of 32) before any sequence arrives.
  LP_RETURN_IF_ERROR(s->stage_->NewCache(1).status(), "kv_type");

  s->stage_index_ = r.stage_index();
  s->first_ = first;
  s->last_ = last;
  s->max_sequences_ = r.max_sequences();
  s->cells_total_ = static_cast<uint64_t>(r.max_sequences()) * r.n_ctx();
  const Stage* stage = s->stage_.get();
  const int64_t n_ctx = r.n_ctx();
  {
    absl::MutexLock lock(&s->mu_);
    s->sequences_ = std::make_unique<SequenceTable>(
        n_ctx, s->max_sequences_,
        [stage, n_ctx] { return stage->NewCache(n_ctx); });
  }

  v1::LoadStageResponse& response = s->response_;
  response.set_weight_bytes(memory.weights);
  response.set_kv_cache_bytes(memory.kv);
  response.set_bytes_used(memory.total());
  response.set_free_memory_bytes(
      budget.bytes > memory.total() ? budget.bytes - memory.total() : 0);
  response.set_content_hash(fingerprint);
  response.set_load_ms(std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - start)
                           .count());
  if (r.measure_step_rows() > 0) {
    LP_ASSIGN_OR_RETURN(
        const std::vector<StepTiming> timings,
        MeasureStepCosts(*s->stage_, r.measure_step_rows(), kStepCostBudgetMs),
        "layers ", layers);
    for (const StepTiming& t : timings) {
      v1::StepCost* cost = response.add_step_costs();
      cost->set_rows(static_cast<uint32_t>(t.rows));
      cost->set_ms(t.ms);
    }
  }
  return s;
}

ChunkLimits ServedStage::chunk_limits() const {
  ChunkLimits limits;
  limits.first_stage = is_first();
  limits.last_stage = is_last();
  limits.n_embd = stage_->hparams().n_embd;
  limits.n_vocab = stage_->hparams().n_vocab;
  limits.max_rows = kMaxMicroBatchRows;
  limits.max_samples = max_sequences_;
  return limits;
}

absl::Status ServedStage::Run(const AssembledBatch& batch, Output* out) {
  absl::MutexLock lock(&mu_);
  const auto start = std::chrono::steady_clock::now();
  std::vector<KvCache*> caches;
  LP_RETURN_IF_ERROR(
      sequences_->Advance(batch.seq_ids, batch.positions, &caches));
  std::vector<int64_t> logit_rows, embed_rows;
  if (is_last()) {
    for (const v1::SampleSpec& spec : batch.samples) {
      if (spec.embed() == v1::POOLING_TYPE_UNSPECIFIED) logit_rows.push_back(spec.row());
    }
    // Every row of an embedding request is pooled, so its final-norm state
    // is kept, whichever micro-batch it comes in.
    for (size_t r = 0; !batch.embed_seq_ids.empty() && r < batch.rows(); ++r) {
      if (std::find(batch.embed_seq_ids.begin(), batch.embed_seq_ids.end(), batch.seq_ids[r]) !=
          batch.embed_seq_ids.end()) {
        embed_rows.push_back(static_cast<int64_t>(r));
      }
    }
  }
  StageBatch stage_batch;
  stage_batch.tokens = batch.tokens;
  stage_batch.hidden = batch.hidden;
  stage_batch.positions = batch.positions;
  stage_batch.caches = caches;
  stage_batch.logit_rows = logit_rows;
  stage_batch.embed_rows = embed_rows;
  stage_batch.one_token_rows = batch.one_token_rows;
  absl::Status status = stage_->Forward(stage_batch, is_last() ? &logits_ : &out->hidden,
                                        embed_rows.empty() ? nullptr : &normed_);
  if (status.ok() && !embed_rows.empty()) {
    const int64_t d = stage_->hparams().n_embd;
    for (size_t i = 0; i < embed_rows.size(); ++i) {
      const uint64_t seq = batch.seq_ids[embed_rows[i]];
      auto it = pools_.try_emplace(seq, d).first;
      it->second.Add(std::span<const float>(normed_.data() + i * d, d));
    }
  }
  if (status.ok() && is_last()) {
    out->result.set_micro_batch_id(batch.id);
    status = Sample(batch, &out->result);
  }
  PublishCounters();
  out->compute_us = std::chrono::duration<double, std::micro>(
                        std::chrono::steady_clock::now() - start)
                        .count();
  return status;
}

absl::Status ServedStage::Sample(const AssembledBatch& batch,
                                 v1::StepResult* result) {
  const size_t n = batch.samples.size();
  if (n == 0) return absl::OkStatus();
  size_t n_sampled = 0;
  for (const v1::SampleSpec& spec : batch.samples) {
    n_sampled += spec.embed() == v1::POOLING_TYPE_UNSPECIFIED;
  }
  const size_t n_vocab = n_sampled > 0 ? logits_.size() / n_sampled : 0;
  size_t logit = 0;  // the next sampled spec's logits row
  for (size_t i = 0; i < n; ++i) {
    const v1::SampleSpec& spec = batch.samples[i];
    const uint64_t seq_id = batch.seq_ids[spec.row()];
    if (spec.embed() != v1::POOLING_TYPE_UNSPECIFIED) {
      auto pool = pools_.find(seq_id);
      if (pool == pools_.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "samples[", i, "]: sequence ", seq_id, " asks for its embedding but none of its "
            "rows was listed in embed_seq_ids"));
      }
      const Pooling pooling = spec.embed() == v1::POOLING_TYPE_CLS    ? Pooling::kCls
                              : spec.embed() == v1::POOLING_TYPE_LAST ? Pooling::kLast
                                                                      : Pooling::kMean;
      const std::vector<float> v = pool->second.Result(pooling);
      pools_.erase(pool);
      v1::SampledToken* out = result->add_tokens();
      out->set_seq_id(seq_id);
      out->set_token(0);
      out->mutable_embedding()->Add(v.begin(), v.end());
      continue;
    }
    const size_t row_logits = logit++;
    LP_ASSIGN_OR_RETURN(SequenceTable::SeqSampler * s,
                        sequences_->SamplerFor(seq_id, spec), "samples[", i,
                        "]");
    const int32_t token = s->sampler.Sample(
        std::span<const float>(logits_.data() + row_logits * n_vocab, n_vocab));
    v1::SampledToken* out = result->add_tokens();
    out->set_seq_id(seq_id);
    out->set_token(token);
    if (s->n_probs > 0) {
      const std::span<const TokenLogprob> top = s->sampler.top_logprobs();
      for (const TokenLogprob& entry : top) {
        if (entry.id == token) {
          out->set_logprob(entry.logprob);
          break;
        }
      }
      const size_t k = std::min(top.size(), static_cast<size_t>(s->n_probs));
      for (size_t j = 0; j < k; ++j) {
        v1::TokenLogprob* alt = out->add_top_logprobs();
        alt->set_token(top[j].id);
        alt->set_logprob(top[j].logprob);
      }
    }
    s->sampler.Accept(token);
    out->set_random_used(s->sampler.random_used());
  }
  return absl::OkStatus();
}

uint32_t ServedStage::Free(std::span<const uint64_t> seq_ids) {
  absl::MutexLock lock(&mu_);
  const uint32_t freed = sequences_->Free(seq_ids);
  for (uint64_t id : seq_ids) pools_.erase(id);
  PublishCounters();
  return freed;
}

uint32_t ServedStage::FreeAll() {
  absl::MutexLock lock(&mu_);
  std::vector<uint64_t> ids = sequences_->ids();
  const uint32_t freed = sequences_->Free(ids);
  pools_.clear();
  PublishCounters();
  return freed;
}

void ServedStage::PublishCounters() {
  active_.store(sequences_->active());
  cells_used_.store(sequences_->cells_used());
  kv_bytes_.store(sequences_->kv_bytes());
}

}  // namespace layerpool
