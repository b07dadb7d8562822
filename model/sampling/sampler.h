// Token sampling: the last pipeline stage, turning one row of logits
// (float[n_vocab]) into a token id.
//
// The samplers and their order follow llama.cpp's default chain (commit
// c392e509, Feb 2025: common/sampling.cpp and src/llama-sampling.cpp):
//
//   penalties -> top_k -> tail-free -> typical -> top_p -> min_p
//             -> temperature -> dist
//
// (llama.cpp's DRY and XTC stages sit between these and are not
// implemented; tail-free sampling was removed from llama.cpp in late 2024
// and sits where the versions that had it placed it.) With temperature <= 0
// the chain is penalties -> argmax.
//
// Reproducibility: a Sampler seeds a std::mt19937 with `seed` and draws the
// final token the way std::discrete_distribution<int> does over the final
// probabilities in llama.cpp's candidate order (highest logit first), so a
// given seed and identical logits pick the same token as llama.cpp built
// against the same C++ library and libm. Where llama.cpp's result depends
// on the unspecified order std::sort leaves equal logits in, layerpool
// ranks equal logits by lower token id first; see sampler.cc for the few
// other deliberate differences (all in edge cases where llama.cpp is
// undefined or drops every candidate).
//
// Typical use, one Sampler per sequence:
//
//   LP_RETURN_IF_ERROR(ValidateSamplingParams(params));
//   Sampler sampler(params);
//   for (int32_t t : prompt) sampler.Accept(t);
//   while (...) {
//     int32_t token = sampler.Sample(logits_row);
//     sampler.Accept(token);   // Sample does not record the token itself
//   }
//
// Thread safety: a Sampler is not thread-safe; give each sequence its own.
// Copies are independent and carry the RNG state and penalty history, so a
// copy continues exactly as the original would.
#ifndef LAYERPOOL_MODEL_SAMPLING_SAMPLER_H_
#define LAYERPOOL_MODEL_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "model/sampling/candidates.h"
#include "model/sampling/penalties.h"

namespace layerpool {

// llama.cpp's LLAMA_DEFAULT_SEED: the Sampler draws a fresh seed from
// std::random_device (or the clock where that is not a true RNG).
inline constexpr uint64_t kRandomSeed = 0xFFFFFFFF;

// Defaults are llama.cpp's common_params_sampling defaults. Each "off"
// value disables that stage exactly as it does in llama.cpp.
struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy (argmax; lowest id wins a tie)
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float typical_p = 1.0f;       // 1: off
  float tfs_z = 1.0f;           // 1: off (tail-free sampling)
  float repeat_penalty = 1.0f;  // 1: off; divides positive logits and
                                // multiplies negative ones
  int32_t repeat_last_n = 64;   // window of accepted tokens the penalties
                                // look at; 0: no penalties; -1: every token
                                // accepted so far (llama.cpp: context size)
  float frequency_penalty = 0.0f;  // subtracted once per occurrence
  float presence_penalty = 0.0f;   // subtracted once if the token occurs
  uint64_t seed = kRandomSeed;     // < 2^32; kRandomSeed means random
  int32_t n_probs = 0;   // > 0: also report the top n_probs (id, logprob)
  int32_t min_keep = 0;  // tail-free, typical, top_p and min_p keep at
                         // least this many candidates (and always >= 1)
};

// OK, or InvalidArgument naming the field, its value and the allowed range:
// temperature finite; top_p, min_p, typical_p, tfs_z in [0, 1];
// repeat_penalty finite and > 0; repeat_last_n >= -1; frequency_penalty and
// presence_penalty finite; seed <= 0xFFFFFFFF; n_probs >= 0; min_keep >= 0.
[[nodiscard]] absl::Status ValidateSamplingParams(const SamplingParams& params);

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;  // natural log; -infinity for probability 0
};

class Sampler {
 public:
  // `params` must have passed ValidateSamplingParams; invalid params are a
  // programming error and abort. Resolves kRandomSeed to a concrete seed.
  explicit Sampler(const SamplingParams& params);

  // Records a prompt or generated token for the repetition, frequency and
  // presence penalties (the last repeat_last_n accepted tokens count). Any
  // int32 is accepted; ids outside the logits row passed to Sample are
  // simply never penalised.
  void Accept(int32_t token);

  // Runs the chain on `logits` (one float per vocabulary id; must not be
  // empty, which is a programming error and aborts) and returns the chosen
  // id in [0, logits.size()). `logits` is not modified. NaN logits count as
  // -infinity. If no candidate can be given a probability (every logit
  // -infinity, or a +infinity present) the highest-ranked candidate is
  // returned without drawing from the RNG.
  //
  // Cost: O(n_vocab) when top_k is on (the default), with no allocation
  // after the first call for a given vocabulary size. With top_k off and
  // any of top_p, typical_p, tfs_z active, or with every filter off, the
  // candidates are fully sorted, as llama.cpp does.
  int32_t Sample(std::span<const float> logits);

  // When n_probs > 0: up to n_probs entries for the last Sample, most
  // probable first (equal probabilities: lower id first).
  //  - temperature > 0: the distribution the token was drawn from, i.e.
  //    after every filter and the temperature (llama.cpp's "post-sampling
  //    probabilities"); fewer than n_probs entries if fewer candidates
  //    survived.
  //  - temperature <= 0: the softmax at temperature 1 of the penalised
  //    logits over the whole vocabulary (greedy has no distribution of its
  //    own).
  // Empty when n_probs == 0 or before the first Sample. Valid until the
  // next Sample.
  std::span<const TokenLogprob> top_logprobs() const { return top_logprobs_; }

  // The seed in use: params.seed, or the one drawn for kRandomSeed (pass it
  // back as params.seed to replay a "random" run).
  uint32_t seed() const { return seed_; }

  // Outputs of the random stream used so far. A Sampler made with the same
  // params and seed, given the same tokens to Accept, then SkipRandom(n),
  // draws from there exactly as this one does: how a sequence replayed on a
  // new last stage keeps its seeded result.
  uint64_t random_used() const { return rng_.used(); }
  void SkipRandom(uint64_t n) { rng_.discard(n); }

  const SamplingParams& params() const { return params_; }

 private:
  int32_t SampleGreedy();
  void ReportGreedyLogprobs(int32_t chosen);
  void ReportLogprobs(const sampling_internal::CandidateSet& set);

  SamplingParams params_;
  uint32_t seed_;
  sampling_internal::CountingRng rng_;
  sampling_internal::PenaltyHistory history_;

  // Reused across calls so the hot path does not allocate.
  std::vector<sampling_internal::Candidate> candidates_;
  sampling_internal::Scratch scratch_;
  std::vector<TokenLogprob> top_logprobs_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_SAMPLING_SAMPLER_H_
