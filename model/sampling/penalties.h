// Internal to model/sampling: the history behind the repetition, frequency
// and presence penalties (llama.cpp's llama_sampler_penalties).
//
// The history counts how often each token occurs among the last `last_n`
// accepted tokens. Apply() then changes the logit of every counted token:
//
//   logit = logit <= 0 ? logit * repeat : logit / repeat
//   logit -= count * frequency + (count > 0) * presence
//
// in float, in that order, as llama.cpp does.
#ifndef LAYERPOOL_MODEL_SAMPLING_PENALTIES_H_
#define LAYERPOOL_MODEL_SAMPLING_PENALTIES_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>

#include "absl/container/flat_hash_map.h"
#include "model/sampling/candidates.h"

namespace layerpool::sampling_internal {

class PenaltyHistory {
 public:
  // last_n > 0: a window of the last last_n tokens; 0: records nothing;
  // -1: every token accepted so far (llama.cpp maps -1 to the context
  // size, which a Sampler does not know). Memory grows with the tokens
  // accepted, never with last_n itself: a request may ask for a window of
  // 2^30 tokens without the sampler reserving 4 GiB for it.
  explicit PenaltyHistory(int32_t last_n);

  void Accept(int32_t token);

  // Penalises `by_id`, a candidate array still in vocabulary order
  // (by_id[i].id == i). Ids in the history outside it are ignored. Costs
  // O(distinct tokens in the window), not O(vocabulary).
  void Apply(std::span<Candidate> by_id, float repeat, float frequency,
             float presence) const;

  // Occurrences of `token` in the window (0 if none).
  int32_t count(int32_t token) const;

 private:
  int32_t last_n_;
  std::deque<int32_t> window_;  // the window, oldest first (last_n_ > 0)
  absl::flat_hash_map<int32_t, int32_t> counts_;
};

}  // namespace layerpool::sampling_internal

#endif  // LAYERPOOL_MODEL_SAMPLING_PENALTIES_H_
