// Flags shared by the commands that run the model (run, perplexity, bench):
// model file, threads, context, batch, KV cache type, RoPE overrides, and
// the sampling settings.
#ifndef LAYERPOOL_CLI_ENGINE_FLAGS_H_
#define LAYERPOOL_CLI_ENGINE_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "model/hparams/hparams.h"
#include "model/sampling/sampler.h"
#include "worker/stage.h"

namespace layerpool::cli {

struct EngineFlags {
  std::string model;
  int64_t threads = 0;  // 0: all cores
  int64_t ctx = 0;      // 0: the model's context length, at most 4096
  int64_t batch = 512;
  std::string kv_type = "f16";
  double rope_freq_base = 0;
  double rope_freq_scale = 0;
  double ntk_alpha = 1;

  void Register(FlagSet& flags);
  // InvalidArgument naming the flag for out-of-range values.
  [[nodiscard]] absl::Status Validate() const;
  [[nodiscard]] absl::StatusOr<StageOptions> ToStageOptions() const;
  int64_t ContextFor(const HParams& hp) const;
};

// Defaults are llama.cpp's.
struct SamplingFlags {
  double temp = 0.8, top_p = 0.95, min_p = 0.05, typical_p = 1, tfs = 1;
  double repeat_penalty = 1, frequency_penalty = 0, presence_penalty = 0;
  int64_t top_k = 40;
  int64_t repeat_last_n = 64;
  int64_t seed = -1;  // -1: random

  void Register(FlagSet& flags);
  [[nodiscard]] absl::StatusOr<SamplingParams> ToParams() const;
};

}  // namespace layerpool::cli

#endif  // LAYERPOOL_CLI_ENGINE_FLAGS_H_
