// How many micro-batches to spread the decoding sequences over, chosen from
// the stages' measured step costs (LoadStageResponse.step_costs).
//
// With k micro-batches of r rows circulating through S stages, each stage
// runs k steps of r rows per round, and each micro-batch goes once through
// every stage and back through the coordinator, so a round lasts
//
//   max(k * slowest stage's t(r),  sum over stages of t(r) + turnaround)
//
// and the n sequences give n tokens per round. On a CPU, where a step of
// r rows costs about a + b * r, that picks k = min(n, S): one micro-batch
// per stage. Where a step costs nearly the same for any r (a GPU at small
// batches), one micro-batch through all stages does as well with fewer
// messages, and a turnaround long against a step asks for one more
// micro-batch than stages. Ties within 2% go to fewer micro-batches.
//
// A pure function; costs come from the stages, the turnaround from the
// links' measured hops (bench/results).
#ifndef LAYERPOOL_COORDINATOR_MICRO_BATCHES_H_
#define LAYERPOOL_COORDINATOR_MICRO_BATCHES_H_

#include <string>
#include <vector>

namespace layerpool {

// One stage's step time against rows: points with increasing rows >= 1.
struct StepCostPoint {
  int rows = 0;
  double ms = 0;
};
using StepCurve = std::vector<StepCostPoint>;

// A step of `rows` rows on a stage: linear between measured points, and
// past the last along the last two points' slope (or in proportion to rows
// when only one point was measured); below the first, the first's time.
// 0 for an empty curve.
double StepMs(const StepCurve& curve, int rows);

// For each n in [0, max_live]: the micro-batches to spread n decoding
// sequences over (0 for n = 0). Empty when some stage has no curve (the
// scheduler then keeps one micro-batch per stage).
std::vector<int> MicroBatchesByLive(const std::vector<StepCurve>& stages,
                                    int max_live, double turnaround_ms);

// "1:1 2:2 3:2 4:2" for the log.
std::string DescribeMicroBatches(const std::vector<int>& by_live);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_MICRO_BATCHES_H_
