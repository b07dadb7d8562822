#include "coordinator/micro_batches.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace layerpool {

StepCurve Regularize(StepCurve curve) {
  for (size_t i = 1; i < curve.size(); ++i) {
    const StepCostPoint& below = curve[i - 1];
    const double per_row_cap = below.ms * curve[i].rows / below.rows;
    curve[i].ms = std::clamp(curve[i].ms, below.ms, per_row_cap);
  }
  return curve;
}

double StepMs(const StepCurve& curve, int rows) {
  if (curve.empty()) return 0;
  if (rows <= curve.front().rows) return curve.front().ms;
  if (curve.size() == 1) return curve.front().ms * rows / curve.front().rows;
  size_t i = 1;  // the segment [i - 1, i] holding rows, or the last one
  while (i + 1 < curve.size() && curve[i].rows < rows) ++i;
  const StepCostPoint& a = curve[i - 1];
  const StepCostPoint& b = curve[i];
  const double slope = (b.ms - a.ms) / (b.rows - a.rows);
  return std::max(0.0, a.ms + slope * (rows - a.rows));
}

namespace {

std::vector<StepCurve> RegularizeAll(const std::vector<StepCurve>& measured) {
  std::vector<StepCurve> stages;
  for (const StepCurve& c : measured) stages.push_back(Regularize(c));
  return stages;
}

// BestRound on curves already regularized.
Round BestRoundOfRegular(const std::vector<StepCurve>& stages, int n, double turnaround_ms) {
  Round best;
  for (int k = 1; k <= n; ++k) {
    // The scheduler puts at most ceil(n / k) sequences in a micro-batch;
    // skip the k for which that makes fewer than k micro-batches.
    const int rows = (n + k - 1) / k;
    if ((n + rows - 1) / rows != k) continue;
    double slowest = 0, sum = 0;
    for (const StepCurve& c : stages) {
      const double t = StepMs(c, rows);
      slowest = std::max(slowest, t);
      sum += t;
    }
    const double ms = std::max(k * slowest, sum + turnaround_ms);
    // Fewer micro-batches first; more only when 2% faster.
    if (k == 1 || ms < 0.98 * best.ms) best = {k, ms};
  }
  return best;
}

}  // namespace

Round BestRound(const std::vector<StepCurve>& measured, int n, double turnaround_ms) {
  return BestRoundOfRegular(RegularizeAll(measured), n, turnaround_ms);
}

std::vector<int> MicroBatchesByLive(const std::vector<StepCurve>& stages,
                                    int max_live, double turnaround_ms) {
  if (stages.empty() || max_live < 0) return {};
  for (const StepCurve& c : stages) {
    if (c.empty()) return {};
  }
  // Each n costs O(n) rounds: the table stops at kMaxTableLive, whose entry
  // serves every larger n (the scheduler takes the last).
  std::vector<int> by_live(std::min(max_live, kMaxTableLive) + 1, 0);
  const std::vector<StepCurve> regular = RegularizeAll(stages);
  for (int n = 1; n < static_cast<int>(by_live.size()); ++n) {
    by_live[n] = BestRoundOfRegular(regular, n, turnaround_ms).micro_batches;
  }
  return by_live;
}

std::string DescribeMicroBatches(const std::vector<int>& by_live) {
  std::vector<std::string> parts;
  for (size_t n = 1; n < by_live.size(); ++n) {
    parts.push_back(absl::StrCat(n, ":", by_live[n]));
  }
  return absl::StrJoin(parts, " ");
}

}  // namespace layerpool
