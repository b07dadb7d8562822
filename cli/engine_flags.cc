#include "cli/engine_flags.h"

#include <algorithm>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "worker/kv_cache.h"

namespace layerpool::cli {

void EngineFlags::Register(FlagSet& flags) {
  flags.String("model", "FILE", &model, "GGUF model file");
  flags.Int("threads", "N", &threads, "compute threads (0: all cores)");
  flags.Int("ctx", "N", &ctx,
            "context length in tokens (0: the model's, at most 4096)");
  flags.Int("batch", "N", &batch, "prompt tokens evaluated per forward pass");
  flags.String("kv-type", "TYPE", &kv_type, "KV cache element type: f16, f32 or q8_0");
  flags.Double("rope-freq-base", "F", &rope_freq_base,
               "RoPE frequency base (0: the model's)");
  flags.Double("rope-freq-scale", "F", &rope_freq_scale,
               "linear RoPE scaling, i.e. 1/compress_pos_emb (0: the model's)");
  flags.Double("ntk-alpha", "F", &ntk_alpha, "NTK-aware RoPE scaling alpha (1: off)");
}

absl::Status EngineFlags::Validate() const {
  if (threads < 0 || threads > 1024) {
    return absl::InvalidArgumentError("--threads must be between 0 and 1024");
  }
  if (ctx < 0) return absl::InvalidArgumentError("--ctx must not be negative");
  if (batch < 1) return absl::InvalidArgumentError("--batch must be at least 1");
  if (rope_freq_base < 0 || rope_freq_scale < 0) {
    return absl::InvalidArgumentError("RoPE overrides must not be negative");
  }
  if (ntk_alpha <= 0) return absl::InvalidArgumentError("--ntk-alpha must be positive");
  return ParseKvCacheType(kv_type).status();
}

absl::StatusOr<StageOptions> EngineFlags::ToStageOptions() const {
  StageOptions o;
  o.threads = threads > 0 ? static_cast<int>(threads)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  LP_ASSIGN_OR_RETURN(o.kv_type, ParseKvCacheType(kv_type), "--kv-type");
  o.rope_freq_base = rope_freq_base;
  o.rope_freq_scale = rope_freq_scale;
  o.ntk_alpha = ntk_alpha;
  o.n_ctx = ctx;
  return o;
}

int64_t EngineFlags::ContextFor(const HParams& hp) const {
  return ctx > 0 ? ctx : DefaultContext(hp);
}

void SamplingFlags::Register(FlagSet& flags) {
  flags.Double("temp", "T", &temp, "temperature; 0 means greedy");
  flags.Int("top-k", "N", &top_k, "keep the N most likely tokens (0: off)");
  flags.Double("top-p", "P", &top_p, "nucleus sampling (1: off)");
  flags.Double("min-p", "P", &min_p, "drop tokens below P x the top probability (0: off)");
  flags.Double("typical-p", "P", &typical_p, "locally typical sampling (1: off)");
  flags.Double("tfs", "Z", &tfs, "tail-free sampling (1: off)");
  flags.Double("repeat-penalty", "F", &repeat_penalty, "penalise repeated tokens (1: off)");
  flags.Int("repeat-last-n", "N", &repeat_last_n, "tokens the penalties look back over");
  flags.Double("frequency-penalty", "F", &frequency_penalty, "(0: off)");
  flags.Double("presence-penalty", "F", &presence_penalty, "(0: off)");
  flags.Int("seed", "N", &seed, "random seed (-1: random)");
}

absl::StatusOr<SamplingParams> SamplingFlags::ToParams() const {
  SamplingParams p;
  p.temperature = static_cast<float>(temp);
  p.top_k = static_cast<int32_t>(top_k);
  p.top_p = static_cast<float>(top_p);
  p.min_p = static_cast<float>(min_p);
  p.typical_p = static_cast<float>(typical_p);
  p.tfs_z = static_cast<float>(tfs);
  p.repeat_penalty = static_cast<float>(repeat_penalty);
  p.repeat_last_n = static_cast<int32_t>(repeat_last_n);
  p.frequency_penalty = static_cast<float>(frequency_penalty);
  p.presence_penalty = static_cast<float>(presence_penalty);
  if (seed >= 0) p.seed = static_cast<uint64_t>(seed);
  LP_RETURN_IF_ERROR(ValidateSamplingParams(p));
  return p;
}

}  // namespace layerpool::cli
