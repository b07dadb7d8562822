// The last stage's StepResults on their way to the coordinator's Results
// subscription.
//
// One subscriber at a time: a new Serve call replaces the one before, which
// returns ABORTED. Results produced while nobody subscribes wait in the
// queue (at most max_pending; beyond that the oldest are dropped and
// counted, as a coordinator that stays away that long has given up on
// them). A result whose Write fails goes back to the front for the next
// subscriber.
//
// Thread-safe.
#ifndef LAYERPOOL_WORKER_RESULTS_QUEUE_H_
#define LAYERPOOL_WORKER_RESULTS_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/status.h"
#include "layerpool/v1/worker.pb.h"
#include "transport/result_stream.h"

namespace layerpool {

class ResultsQueue {
 public:
  explicit ResultsQueue(size_t max_pending = 4096)
      : max_pending_(max_pending) {}

  void Push(v1::StepResult result);

  // Streams results to `sink` (over gRPC or a Unix socket) until the
  // subscriber goes away (CANCELLED), a newer subscriber replaces this one
  // (ABORTED) or Close (UNAVAILABLE).
  absl::Status Serve(ResultSink& sink);

  // Ends every Serve and refuses new ones: the server is shutting down.
  void Close();

  uint64_t dropped() const;

 private:
  const size_t max_pending_;
  mutable absl::Mutex mu_;
  std::deque<v1::StepResult> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t subscriber_ ABSL_GUARDED_BY(mu_) = 0;  // the current one's number
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_RESULTS_QUEUE_H_
