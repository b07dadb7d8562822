// The chain itself. Deliberate differences from llama.cpp c392e509, all in
// cases where its result is unspecified, undefined or empty:
//  - Equal logits rank by lower id first everywhere (llama.cpp leaves them
//    in whatever order std::sort or its bucket sort produced), and typical
//    sampling breaks equal scores by rank.
//  - NaN logits count as -inf (a NaN breaks std::sort's ordering); a +inf
//    top logit or an all -inf row picks the top candidate without drawing.
//  - tfs_z, typical_p and min_p never leave zero candidates (llama.cpp can
//    with min_keep = 0: tail-free cutting at i = 0, min_p on an all -inf
//    row). typical_p with min_keep = 0 cuts as with min_keep = 1, as
//    upstream's later fix does; the `i >= min_keep - 1` form wraps and
//    never cuts.
//  - temperature <= 0 is penalties -> argmax, the greedy chain llama.cpp's
//    common code used to build. Its newer chain keeps running top_k...min_p
//    and lets the temperature stage keep only the maximum of what is left;
//    the two differ only when typical_p removes the most likely token.
//  - top_k <= 0 or >= the row size leaves the row unsorted (older llama.cpp
//    sorted it; later versions do not either). Only the order of candidates
//    that the temperature division makes equal can differ.
//  - repeat_last_n = -1 counts every accepted token rather than the last
//    n_ctx (llama.cpp's common code substitutes the context size).
#include "model/sampling/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

namespace layerpool {
namespace {

using sampling_internal::Candidate;
using sampling_internal::CandidateSet;
using sampling_internal::Ranks;

absl::Status Invalid(const char* field, const auto& value,
                     const char* allowed) {
  return absl::InvalidArgumentError(absl::StrCat(
      "sampling parameter ", field, " = ", value, ": must be ", allowed));
}

absl::Status CheckUnit(const char* field, float value) {
  if (value >= 0.0f && value <= 1.0f) return absl::OkStatus();
  return Invalid(field, value, "in [0, 1]");
}

// llama.cpp's get_rng_seed.
uint32_t ResolveSeed(uint64_t seed) {
  if (seed != kRandomSeed) return static_cast<uint32_t>(seed);
  static const bool random_device_is_prng = std::random_device().entropy() == 0;
  if (random_device_is_prng) {
    return static_cast<uint32_t>(
        std::chrono::system_clock::now().time_since_epoch().count());
  }
  std::random_device device;
  return device();
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature)) {
    return Invalid("temperature", p.temperature,
                   "finite (<= 0 selects greedy)");
  }
  if (absl::Status s = CheckUnit("top_p", p.top_p); !s.ok()) return s;
  if (absl::Status s = CheckUnit("min_p", p.min_p); !s.ok()) return s;
  if (absl::Status s = CheckUnit("typical_p", p.typical_p); !s.ok()) return s;
  if (absl::Status s = CheckUnit("tfs_z", p.tfs_z); !s.ok()) return s;
  if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f)) {
    return Invalid("repeat_penalty", p.repeat_penalty,
                   "finite and > 0 (1 is off)");
  }
  if (p.repeat_last_n < -1) {
    return Invalid("repeat_last_n", p.repeat_last_n,
                   ">= -1 (0 is off, -1 is every accepted token)");
  }
  if (!std::isfinite(p.frequency_penalty)) {
    return Invalid("frequency_penalty", p.frequency_penalty, "finite");
  }
  if (!std::isfinite(p.presence_penalty)) {
    return Invalid("presence_penalty", p.presence_penalty, "finite");
  }
  if (p.seed > 0xFFFFFFFFull) {
    return Invalid("seed", p.seed,
                   "in [0, 4294967295] (4294967295 means random)");
  }
  if (p.n_probs < 0) return Invalid("n_probs", p.n_probs, ">= 0");
  if (p.min_keep < 0) return Invalid("min_keep", p.min_keep, ">= 0");
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& params)
    : params_(params), seed_(0), history_(params.repeat_last_n) {
  if (absl::Status s = ValidateSamplingParams(params); !s.ok()) {
    std::fprintf(stderr, "layerpool::Sampler: %s\n",
                 std::string(s.message()).c_str());
    std::abort();
  }
  seed_ = ResolveSeed(params.seed);
  rng_ = sampling_internal::CountingRng(seed_);
}

void Sampler::Accept(int32_t token) { history_.Accept(token); }

int32_t Sampler::Sample(std::span<const float> logits) {
  if (logits.empty()) {
    std::fprintf(stderr, "layerpool::Sampler::Sample: empty logits\n");
    std::abort();
  }
  const size_t n = logits.size();
  candidates_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float l = logits[i];
    candidates_[i] = {
        static_cast<int32_t>(i),
        std::isnan(l) ? -std::numeric_limits<float>::infinity() : l, 0.0f};
  }
  const SamplingParams& p = params_;
  if (p.repeat_penalty != 1.0f || p.frequency_penalty != 0.0f ||
      p.presence_penalty != 0.0f) {
    history_.Apply(candidates_, p.repeat_penalty, p.frequency_penalty,
                   p.presence_penalty);
  }
  top_logprobs_.clear();

  if (p.temperature <= 0.0f) return SampleGreedy();

  const size_t min_keep = static_cast<size_t>(p.min_keep);
  CandidateSet set{candidates_.data(), n, /*sorted=*/false};
  sampling_internal::TopK(set, p.top_k, scratch_);
  sampling_internal::TailFree(set, p.tfs_z, min_keep, scratch_);
  sampling_internal::Typical(set, p.typical_p, min_keep, scratch_);
  sampling_internal::TopP(set, p.top_p, min_keep);
  sampling_internal::MinP(set, p.min_p, min_keep);
  sampling_internal::Temperature(set, p.temperature);

  // llama_sampler_dist: softmax over the survivors in rank order, then one
  // discrete_distribution draw.
  const bool drawable = sampling_internal::Softmax(set);
  const size_t index =
      drawable ? sampling_internal::DrawIndex(set, rng_, scratch_.cumulative)
               : 0;
  if (p.n_probs > 0) ReportLogprobs(set);
  return set.data[index].id;
}

int32_t Sampler::SampleGreedy() {
  // Strictly greater, scanning by id: the lowest id wins an exact tie. The
  // running maximum lives in a local (reloading candidates_[best] each step
  // is ~6x slower on a 128k row).
  size_t best = 0;
  float best_logit = candidates_[0].logit;
  for (size_t i = 1; i < candidates_.size(); ++i) {
    if (candidates_[i].logit > best_logit) {
      best_logit = candidates_[i].logit;
      best = i;
    }
  }
  const int32_t chosen = static_cast<int32_t>(best);
  if (params_.n_probs > 0) ReportGreedyLogprobs(chosen);
  return chosen;
}

void Sampler::ReportGreedyLogprobs(int32_t chosen) {
  // log softmax at temperature 1: logit - max - log(sum exp(logit - max)).
  const float max_l = candidates_[static_cast<size_t>(chosen)].logit;
  const size_t n = candidates_.size();
  const size_t k = std::min(n, static_cast<size_t>(params_.n_probs));
  float log_sum = 0.0f;
  if (std::isfinite(max_l)) {
    float sum = 0.0f;
    for (const Candidate& c : candidates_) sum += std::exp(c.logit - max_l);
    log_sum = std::log(sum);
  }
  std::partial_sort(candidates_.begin(), candidates_.begin() + k,
                    candidates_.end(), Ranks);
  top_logprobs_.resize(k);
  for (size_t i = 0; i < k; ++i) {
    const Candidate& c = candidates_[i];
    float logprob;
    if (std::isfinite(max_l)) {
      logprob = (c.logit - max_l) - log_sum;
    } else {
      // Degenerate row: all mass on the chosen token, as in Sample().
      logprob = c.id == chosen ? 0.0f : -std::numeric_limits<float>::infinity();
    }
    top_logprobs_[i] = {c.id, logprob};
  }
}

void Sampler::ReportLogprobs(const CandidateSet& set) {
  // Softmax left the set in rank order, which is also probability order.
  const size_t k = std::min(set.size, static_cast<size_t>(params_.n_probs));
  top_logprobs_.resize(k);
  for (size_t i = 0; i < k; ++i) {
    top_logprobs_[i] = {set.data[i].id, std::log(set.data[i].p)};
  }
}

}  // namespace layerpool
