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

// The curve as a stage's steps can cost: never less for more rows, and
// never more per row for more rows (a step of 2r rows could always run as
// two of r). Timings taken on a busy machine break both; each point is
// clamped to its neighbour below.
StepCurve Regularize(StepCurve curve);

// A step of `rows` rows on a stage: linear between measured points, and
// past the last along the last two points' slope (or in proportion to rows
// when only one point was measured); below the first, the first's time.
// 0 for an empty curve.
double StepMs(const StepCurve& curve, int rows);

// The best round for n decoding sequences (n >= 1): k micro-batches and
// the round's length, from the formula above on the regularized curves.
// With turnaround 0 it is the pipeline's ceiling: n / ms tokens per ms is
// the most its stages allow; against the sum of the stages' steps of n rows
// (one stage doing all their work), the most a split can speed up.
struct Round {
  int micro_batches = 0;
  double ms = 0;
};
Round BestRound(const std::vector<StepCurve>& stages, int n, double turnaround_ms);

// For each n in [0, min(max_live, kMaxTableLive)]: the micro-batches to
// spread n decoding sequences over (0 for n = 0). Empty when some stage has
// no curve (the scheduler then keeps one micro-batch per stage).
inline constexpr int kMaxTableLive = 1024;
std::vector<int> MicroBatchesByLive(const std::vector<StepCurve>& stages,
                                    int max_live, double turnaround_ms);

// "1:1 2:2 3:2 4:2" for the log.
std::string DescribeMicroBatches(const std::vector<int>& by_live);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_MICRO_BATCHES_H_
