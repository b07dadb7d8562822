#include "worker/latency_window.h"

#include <algorithm>
#include <cmath>

namespace layerpool {

void LatencyWindow::Add(double microseconds) {
  absl::MutexLock lock(&mu_);
  ++count_;
  sum_ += microseconds;
  if (kept_.size() < kMaxKept) {
    kept_.push_back(microseconds);
  } else {
    kept_[next_] = microseconds;
    next_ = (next_ + 1) % kMaxKept;
  }
}

v1::LatencySummary LatencyWindow::TakeSummary() {
  std::vector<double> kept;
  v1::LatencySummary summary;
  {
    absl::MutexLock lock(&mu_);
    summary.set_count(count_);
    if (count_ > 0) summary.set_mean_us(sum_ / static_cast<double>(count_));
    kept.swap(kept_);
    count_ = 0;
    sum_ = 0;
    next_ = 0;
  }
  if (kept.empty()) return summary;
  // Nearest rank: the smallest sample with at least q of them at or below.
  auto percentile = [&](double q) {
    const size_t rank =
        static_cast<size_t>(std::ceil(q * static_cast<double>(kept.size())));
    const size_t index = rank == 0 ? 0 : rank - 1;
    std::nth_element(kept.begin(), kept.begin() + index, kept.end());
    return kept[index];
  };
  summary.set_p50_us(percentile(0.50));
  summary.set_p99_us(percentile(0.99));
  return summary;
}

}  // namespace layerpool
