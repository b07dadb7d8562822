// Internal to the coordinator: the event queue behind a Cluster::Stream,
// filled by the Cluster's loop thread and drained by the request's caller.
#ifndef LAYERPOOL_COORDINATOR_STREAM_STATE_H_
#define LAYERPOOL_COORDINATOR_STREAM_STATE_H_

#include <condition_variable>
#include <deque>
#include <mutex>

#include "coordinator/cluster.h"

namespace layerpool {

struct Cluster::Stream::State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<GenerateEvent> events;
  bool done = false;  // the `done` event was pushed

  void Push(GenerateEvent e) {
    std::lock_guard lock(mu);
    if (done) return;
    done = e.done;
    events.push_back(std::move(e));
    cv.notify_all();
  }
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_STREAM_STATE_H_
