#include "worker/step_costs.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace layerpool {
namespace {

// Steps timed per size; the fastest counts (a busy machine only slows one).
constexpr int kTries = 3;

// One decode step of `rows` new sequences; returns its wall time.
absl::StatusOr<double> TimeStep(Stage& stage, int64_t rows) {
  std::vector<std::unique_ptr<KvCache>> owned;
  std::vector<KvCache*> caches;
  for (int64_t i = 0; i < rows; ++i) {
    LP_ASSIGN_OR_RETURN(std::unique_ptr<KvCache> cache, stage.NewCache(1));
    caches.push_back(cache.get());
    owned.push_back(std::move(cache));
  }
  // Token 0 and small hidden values: the time does not depend on them.
  const std::vector<int32_t> tokens(rows, 0), positions(rows, 0);
  const std::vector<float> hidden(
      stage.is_first() ? 0 : rows * stage.hparams().n_embd, 0.01f);
  std::vector<int64_t> logit_rows;
  if (stage.is_last()) {
    for (int64_t i = 0; i < rows; ++i) logit_rows.push_back(i);
  }
  StageBatch batch;
  if (stage.is_first()) {
    batch.tokens = tokens;
  } else {
    batch.hidden = hidden;
  }
  batch.positions = positions;
  batch.caches = caches;
  batch.logit_rows = logit_rows;
  std::vector<float> out;
  const auto start = std::chrono::steady_clock::now();
  LP_RETURN_IF_ERROR(stage.Forward(batch, &out),
                     absl::StrCat("timing a step of ", rows, " rows"));
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

absl::StatusOr<std::vector<StepTiming>> MeasureStepCosts(Stage& stage,
                                                         int64_t max_rows,
                                                         double budget_ms) {
  if (max_rows < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_rows must be at least 1, got ", max_rows));
  }
  LP_RETURN_IF_ERROR(TimeStep(stage, 1).status());  // weights into memory
  std::vector<StepTiming> timings;
  double spent = 0;
  for (int64_t rows = 1; rows <= max_rows; rows = std::min(rows * 2, max_rows)) {
    if (!timings.empty() && spent >= budget_ms) break;
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i < kTries; ++i) {
      LP_ASSIGN_OR_RETURN(const double ms, TimeStep(stage, rows));
      spent += ms;
      best = std::min(best, ms);
    }
    timings.push_back({rows, best});
    if (rows == max_rows) break;
  }
  return timings;
}

}  // namespace layerpool
