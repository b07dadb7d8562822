#include "model/sampling/penalties.h"

namespace layerpool::sampling_internal {

PenaltyHistory::PenaltyHistory(int32_t last_n) : last_n_(last_n) {
  if (last_n_ > 0) ring_.resize(static_cast<size_t>(last_n_));
}

void PenaltyHistory::Accept(int32_t token) {
  if (last_n_ == 0) return;
  ++counts_[token];
  if (last_n_ < 0) return;  // unbounded: nothing ever leaves the window

  if (ring_size_ == ring_.size()) {
    // Full: the oldest token leaves the window and its slot takes the new.
    const int32_t old = ring_[ring_start_];
    auto it = counts_.find(old);
    if (--it->second == 0) counts_.erase(it);
    ring_[ring_start_] = token;
    ring_start_ = (ring_start_ + 1) % ring_.size();
  } else {
    ring_[(ring_start_ + ring_size_) % ring_.size()] = token;
    ++ring_size_;
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
