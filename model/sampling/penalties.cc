#include "model/sampling/penalties.h"

namespace layerpool::sampling_internal {

PenaltyHistory::PenaltyHistory(int32_t last_n) : last_n_(last_n) {}

void PenaltyHistory::Accept(int32_t token) {
  if (last_n_ == 0) return;
  ++counts_[token];
  if (last_n_ < 0) return;  // unbounded: nothing ever leaves the window

  window_.push_back(token);
  if (window_.size() > static_cast<size_t>(last_n_)) {
    // Full: the oldest token leaves the window.
    auto it = counts_.find(window_.front());
    if (--it->second == 0) counts_.erase(it);
    window_.pop_front();
  }
}

void PenaltyHistory::Apply(std::span<Candidate> by_id, float repeat,
                           float frequency, float presence) const {
  for (const auto& [token, count] : counts_) {
    if (token < 0 || static_cast<size_t>(token) >= by_id.size()) continue;
    float& logit = by_id[static_cast<size_t>(token)].logit;
    // Dividing a negative logit would make the token more likely; the usual
    // fix (and llama.cpp's) multiplies those instead.
    if (logit <= 0) {
      logit *= repeat;
    } else {
      logit /= repeat;
    }
    logit -= static_cast<float>(count) * frequency +
             static_cast<float>(count > 0) * presence;
  }
}

int32_t PenaltyHistory::count(int32_t token) const {
  auto it = counts_.find(token);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace layerpool::sampling_internal
