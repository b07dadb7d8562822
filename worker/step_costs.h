// How long a stage's decode step takes against its number of rows, timed
// when the stage loads, for the coordinator's choice of micro-batches
// (coordinator/micro_batches.h): on a CPU a step of 4 rows costs about twice
// one row, on a GPU nearly the same, and the best way to spread sequences
// over the pipeline follows from that curve.
#ifndef LAYERPOOL_WORKER_STEP_COSTS_H_
#define LAYERPOOL_WORKER_STEP_COSTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/stage.h"

namespace layerpool {

struct StepTiming {
  int64_t rows = 0;
  double ms = 0;
};

// Times Forward on `stage` for 1, 2, 4, ... rows up to max_rows (max_rows
// itself included), each row a new one-token sequence (as decode steps of
// that many streams; the last stage computes every row's logits). One
// unmeasured step first brings the weights into memory; each size then
// takes the fastest of three steps. Sizes after the first are skipped once
// the measured steps have taken budget_ms. Forward's errors pass through;
// InvalidArgument for max_rows < 1. Not thread-safe with other calls on
// `stage`.
[[nodiscard]] absl::StatusOr<std::vector<StepTiming>> MeasureStepCosts(
    Stage& stage, int64_t max_rows, double budget_ms);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_STEP_COSTS_H_
