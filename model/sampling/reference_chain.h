// Test oracle: llama.cpp's sampling chain written out the plain way, as
// src/llama-sampling.cpp does it (one struct array, full std::sort whenever
// an order is needed, per-call vectors, the penalty counts rebuilt from the
// token list, std::discrete_distribution for the draw), with layerpool's
// documented choices (rank ties by id, never-empty floors). Sampler's fast
// paths (partial selection, in-place penalties, reused buffers, DrawIndex)
// must agree with it token for token.
#ifndef LAYERPOOL_MODEL_SAMPLING_REFERENCE_CHAIN_H_
#define LAYERPOOL_MODEL_SAMPLING_REFERENCE_CHAIN_H_

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "model/sampling/sampler.h"

namespace layerpool::reference {

struct Result {
  int32_t token = -1;
  // The final candidates in order with their probabilities (the drawn-from
  // distribution); empty for greedy.
  std::vector<std::pair<int32_t, float>> final_probs;
};

// `accepted` is every token accepted so far, oldest first.
Result Sample(std::span<const float> logits, const SamplingParams& params,
              const std::vector<int32_t>& accepted, std::mt19937& rng);

}  // namespace layerpool::reference

#endif  // LAYERPOOL_MODEL_SAMPLING_REFERENCE_CHAIN_H_
