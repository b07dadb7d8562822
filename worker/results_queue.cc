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

grpc::Status ResultsQueue::Serve(grpc::ServerContext* context,
                                 grpc::ServerWriter<v1::StepResult>* writer) {
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
        if (context->IsCancelled()) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "subscriber left");
        }
      }
      if (closed_) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "worker shutting down");
      }
      if (subscriber_ != me) {
        return grpc::Status(grpc::StatusCode::ABORTED,
                            "replaced by a newer Results subscription");
      }
      result = std::move(pending_.front());
      pending_.pop_front();
    }
    if (!writer->Write(result)) {
      absl::MutexLock lock(&mu_);
      pending_.push_front(std::move(result));
      return grpc::Status(grpc::StatusCode::CANCELLED, "subscriber left");
    }
  }
}

}  // namespace layerpool
