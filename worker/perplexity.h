// Perplexity of a token sequence, by llama-perplexity's method (llama.cpp
// examples/perplexity, as documented in ../shared/golden/README.md):
// the tokens are cut into chunks of n_ctx (leftovers dropped); each chunk
// starts with BOS in place of its first token and is evaluated from
// position 0 in a fresh KV cache; only the second half is scored, each
// position predicting the next token; NLL = log-sum-exp(logits) -
// logit[target], summed in double; ppl = exp(mean NLL).
#ifndef LAYERPOOL_WORKER_PERPLEXITY_H_
#define LAYERPOOL_WORKER_PERPLEXITY_H_

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/stage.h"

namespace layerpool {

struct PerplexityResult {
  double ppl = 0;
  double ppl_stderr = 0;
  int64_t chunks = 0;
  int64_t scored_tokens = 0;
  std::vector<double> running_ppl;  // after each chunk
};

using PerplexityProgress = std::function<void(int64_t chunk, double running_ppl)>;

// `tokens` includes the leading BOS. `stage` must hold the whole model.
// `on_chunk` (optional) is called after each chunk with its running value.
// InvalidArgument when there are fewer than n_ctx tokens or n_ctx < 4.
[[nodiscard]] absl::StatusOr<PerplexityResult> Perplexity(
    Stage& stage, std::span<const int32_t> tokens, int32_t bos, int64_t n_ctx,
    int64_t n_batch, const PerplexityProgress& on_chunk = nullptr);

// The same through a pipeline in this process: `stages` in layer order,
// from the first to the last, each handing its hidden states [rows][n_embd]
// to the next through `between` (when set), which does to them what the
// link would (transport/hidden_wire.h's RoundTripWire).
// FailedPrecondition when the stages do not chain from first to last.
[[nodiscard]] absl::StatusOr<PerplexityResult> Perplexity(
    std::span<Stage* const> stages, std::span<const int32_t> tokens, int32_t bos, int64_t n_ctx,
    int64_t n_batch, const std::function<void(std::span<float>)>& between,
    const PerplexityProgress& on_chunk = nullptr);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_PERPLEXITY_H_
