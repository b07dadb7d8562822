// Internal to the coordinator: the state behind a Cluster, shared by
// cluster.cc (starting, the public calls) and cluster_loop.cc (the loop
// thread that owns the scheduler, the health and recovery threads).
#ifndef LAYERPOOL_COORDINATOR_CLUSTER_IMPL_H_
#define LAYERPOOL_COORDINATOR_CLUSTER_IMPL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "coordinator/chain.h"
#include "coordinator/cluster.h"
#include "coordinator/scheduler.h"
#include "coordinator/stream_state.h"
#include "model/gguf/gguf.h"

namespace layerpool {

struct SubmitEvent {
  uint64_t seq_id;
  GenerateRequest request;
  std::shared_ptr<Cluster::Stream::State> stream;
  std::shared_ptr<std::promise<absl::Status>> accepted;
};
struct CancelEvent {
  uint64_t seq_id;
};
// What a chain's streams and the health check report, with the chain's
// generation: an old chain's reports are ignored.
struct ResultEvent {
  uint64_t generation;
  v1::StepResult result;
};
struct FailureEvent {
  uint64_t generation;
  absl::Status status;
  bool names_the_stage = false;  // the health check's: no need to ask again
};
// The recovery thread built a new chain.
struct RecoveredEvent {
  std::shared_ptr<Chain> chain;
};
using ClusterEvent =
    std::variant<SubmitEvent, CancelEvent, ResultEvent, FailureEvent, RecoveredEvent>;


struct Cluster::Impl {
  ClusterOptions options;
  const Cluster* owner = nullptr;
  std::unique_ptr<gguf::GgufFile> file;  // the model's header
  ChainConfig chain_config;
  // Each stage's first worker: where it started, or where the split was
  // last planned again. The recovery thread's after the start.
  std::vector<std::string> home;
  v1::ModelDescription model;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<ClusterEvent> events;
  bool stopping = false;
  std::shared_ptr<Chain> chain;  // the chain requests run on
  uint64_t next_generation = 1;
  // Not OK while the chain is broken (naming the stage) until a new one is
  // installed; `refusing` once the replay budget ran out before that.
  absl::Status down;
  bool refusing = false;
  // The chain the recovery thread is to replace; null when none.
  std::shared_ptr<Chain> rebuild_from;

  std::thread loop_thread, health_thread, recovery_thread;
  std::atomic<uint64_t> next_seq_id{1};
  // The scheduler's counts, published by the loop thread after each event.
  std::atomic<int> queued{0}, active{0};

  // Owned by the loop thread.
  struct Live {
    GenerateRequest request;
    std::shared_ptr<Cluster::Stream::State> stream;
    std::vector<int32_t> generated;  // for a replay's recent_tokens
    uint64_t random_used = 0;        // SampledToken.random_used, for its skip
  };
  std::map<uint64_t, Live> live;
  std::set<uint64_t> embedding;  // the live embedding requests
  bool recovering = false;
  std::chrono::steady_clock::time_point recover_started, replay_deadline;

  void Post(ClusterEvent e) {
    std::lock_guard lock(mu);
    events.push_back(std::move(e));
    cv.notify_all();
  }

  void Log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  std::shared_ptr<Chain> current() const {
    std::lock_guard lock(mu);
    return chain;
  }

  Chain::Callbacks callbacks() {
    return {[this](uint64_t generation, v1::StepResult r) {
              Post(ResultEvent{generation, std::move(r)});
            },
            [this](uint64_t generation, const absl::Status& st) {
              Post(FailureEvent{generation, st, false});
            }};
  }

  void Loop();
  // Gives the scheduler the micro-batches the chain's step costs call for,
  // and logs them.
  void UseStepCosts(Scheduler& scheduler) const;
  void HandleOutput(Scheduler& scheduler, const v1::StepResult* result);
  absl::Status Send(const MicroBatch& batch);
  void FreeOnWorkers(const std::vector<uint64_t>& ids);
  void BeginRecovery(Scheduler& scheduler, absl::Status cause, bool names_the_stage);
  void EndRecovery(std::shared_ptr<Chain> rebuilt);
  void SpendReplayBudget(Scheduler& scheduler);
  void WatchHealth();
  void Recover();
  std::vector<std::string> KnownWorkers(const Chain& chain) const;
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_CLUSTER_IMPL_H_
