// Latency samples over a window that the reader closes: Stats reports the
// summary of everything since its previous call and starts a new window.
//
// Memory is bounded: the count and mean cover every sample, the
// percentiles the most recent kMaxKept of them.
//
// Thread-safe: one thread may Add while another takes the summary.
#ifndef LAYERPOOL_WORKER_LATENCY_WINDOW_H_
#define LAYERPOOL_WORKER_LATENCY_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "layerpool/v1/worker.pb.h"

namespace layerpool {

class LatencyWindow {
 public:
  static constexpr size_t kMaxKept = 4096;

  void Add(double microseconds);

  // The summary of the samples since the last call, then an empty window.
  v1::LatencySummary TakeSummary();

 private:
  absl::Mutex mu_;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
  // A ring of the most recent samples once full.
  std::vector<double> kept_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_LATENCY_WINDOW_H_
