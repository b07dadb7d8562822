#include "worker/perplexity.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace layerpool {
namespace {

// -log p(target) from one row of logits, as llama-perplexity computes it:
// exponentials in float, their sum in double.
double Nll(std::span<const float> logits, int32_t target) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(l - max);
  return std::log(sum) + max - logits[target];
}

}  // namespace

absl::StatusOr<PerplexityResult> Perplexity(Stage& stage, std::span<const int32_t> tokens,
                                            int32_t bos, int64_t n_ctx, int64_t n_batch,
                                            const PerplexityProgress& on_chunk) {
  Stage* stages[] = {&stage};
  return Perplexity(stages, tokens, bos, n_ctx, n_batch, nullptr, on_chunk);
}

absl::StatusOr<PerplexityResult> Perplexity(
    std::span<Stage* const> stages, std::span<const int32_t> tokens, int32_t bos, int64_t n_ctx,
    int64_t n_batch, const std::function<void(std::span<float>)>& between,
    const PerplexityProgress& on_chunk) {
  bool chained = !stages.empty() && stages.front()->is_first() && stages.back()->is_last();
  for (size_t i = 0; chained && i + 1 < stages.size(); ++i) {
    chained = !stages[i]->is_last() && !stages[i + 1]->is_first();
  }
  if (!chained) {
    return absl::FailedPreconditionError(
        "perplexity needs stages that hold the whole model, first to last");
  }
  Stage& last = *stages.back();
  if (n_ctx < 4) return absl::InvalidArgumentError("--ctx must be at least 4");
  const int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (n_chunks == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the text has ", tokens.size(), " tokens, fewer than one chunk of --ctx ",
        n_ctx));
  }
  const int64_t first_scored = n_ctx / 2;
  const int64_t n_vocab = last.hparams().n_vocab;
  PerplexityResult result;
  double nll_sum = 0, nll2_sum = 0;
  std::vector<int32_t> chunk(n_ctx), positions;
  std::vector<KvCache*> caches;
  std::vector<int64_t> rows;
  std::vector<float> logits, hidden;
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
    if (bos >= 0) chunk[0] = bos;
    std::vector<std::unique_ptr<KvCache>> caches_of_stage;
    for (Stage* stage : stages) {
      LP_ASSIGN_OR_RETURN(auto cache, stage->NewCache(n_ctx));
      caches_of_stage.push_back(std::move(cache));
    }
    for (int64_t b = 0; b < n_ctx; b += n_batch) {
      const int64_t len = std::min(n_batch, n_ctx - b);
      positions.resize(len);
      rows.clear();
      for (int64_t i = 0; i < len; ++i) {
        positions[i] = static_cast<int32_t>(b + i);
        // Rows first_scored .. n_ctx-2 predict a token inside the chunk.
        if (b + i >= first_scored && b + i < n_ctx - 1) rows.push_back(i);
      }
      for (size_t s = 0; s < stages.size(); ++s) {
        StageBatch batch;
        if (s == 0) {
          batch.tokens = std::span(chunk).subspan(b, len);
        } else {
          batch.hidden = hidden;
        }
        batch.positions = positions;
        caches.assign(len, caches_of_stage[s].get());
        batch.caches = caches;
        if (s + 1 == stages.size()) {
          batch.logit_rows = rows;
          LP_RETURN_IF_ERROR(stages[s]->Forward(batch, &logits), "chunk ", c);
        } else {
          std::vector<float> out;
          LP_RETURN_IF_ERROR(stages[s]->Forward(batch, &out), "chunk ", c);
          hidden = std::move(out);
          if (between) between(hidden);
        }
      }
      for (size_t r = 0; r < rows.size(); ++r) {
        const int32_t target = chunk[b + rows[r] + 1];
        const double nll = Nll(
            std::span<const float>(logits).subspan(r * n_vocab, n_vocab), target);
        nll_sum += nll;
        nll2_sum += nll * nll;
        ++result.scored_tokens;
      }
    }
    result.running_ppl.push_back(std::exp(nll_sum / result.scored_tokens));
    if (on_chunk) on_chunk(c, result.running_ppl.back());
  }
  const double n = static_cast<double>(result.scored_tokens);
  const double mean = nll_sum / n;
  result.ppl = std::exp(mean);
  if (n > 1) {
    const double var = nll2_sum / n - mean * mean;
    result.ppl_stderr = result.ppl * std::sqrt(std::max(0.0, var) / (n - 1));
  }
  result.chunks = n_chunks;
  return result;
}

}  // namespace layerpool
