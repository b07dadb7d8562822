#include "worker/results_queue.h"

#include <utility>

#include "absl/time/time.h"

namespace layerpool {

void ResultsQueue::Push(v1::StepResult result) {
  absl::MutexLock lock(&mu_);
  if (pending_.size() >= max_pending_) {
    pending_.pop_front();
    ++dropped_;
  }
  pending_.push_back(std::move(result));
}

void ResultsQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

uint64_t ResultsQueue::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

absl::Status ResultsQueue::Serve(ResultSink& sink) {
  uint64_t me;
  {
    absl::MutexLock lock(&mu_);
    me = ++subscriber_;
  }
  while (true) {
    v1::StepResult result;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return closed_ || subscriber_ != me || !pending_.empty();
      };
      // The timeout is how a client that went away is noticed: gRPC's
      // cancellation does not signal this condition.
      while (!mu_.AwaitWithTimeout(absl::Condition(&ready),
                                   absl::Milliseconds(100))) {
        if (sink.Cancelled()) return absl::CancelledError("subscriber left");
      }
      if (closed_) {
        return absl::UnavailableError("worker shutting down");
      }
      if (subscriber_ != me) {
        return absl::AbortedError("replaced by a newer Results subscription");
      }
      result = std::move(pending_.front());
      pending_.pop_front();
    }
    if (!sink.Write(result)) {
      absl::MutexLock lock(&mu_);
      pending_.push_front(std::move(result));
      return absl::CancelledError("subscriber left");
    }
  }
}

}  // namespace layerpool
