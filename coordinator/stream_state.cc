#include "coordinator/stream_state.h"

namespace layerpool {

Cluster::Stream::Stream(std::shared_ptr<State> state, std::function<void()> cancel)
    : state_(std::move(state)), cancel_(std::move(cancel)) {}

Cluster::Stream::~Stream() { Cancel(); }

bool Cluster::Stream::Next(GenerateEvent* event, absl::Duration timeout) {
  std::unique_lock lock(state_->mu);
  auto ready = [&] { return !state_->events.empty(); };
  if (timeout == absl::InfiniteDuration()) {
    state_->cv.wait(lock, ready);
  } else if (!state_->cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready)) {
    return false;
  }
  *event = std::move(state_->events.front());
  state_->events.pop_front();
  return true;
}

void Cluster::Stream::Cancel() {
  {
    std::lock_guard lock(state_->mu);
    if (state_->done) return;
  }
  if (cancel_) cancel_();
}

}  // namespace layerpool
