// One chain of stages: the workers that hold a plan's layer ranges, loaded,
// connected last to first, and the coordinator's two data-plane streams
// (token ids into stage 0, sampled tokens out of the last).
//
// A Cluster (coordinator/cluster.h) builds one at start and, when a stage
// fails, builds the next from the workers that answer: the same address
// (a restarted worker rejoins there), else a spare. Every stage of the new
// chain is loaded again: a worker that still holds its stage keeps it
// (LoadStageResponse.reused) and drops its sequences, so a new chain holds
// no sequence and the scheduler replays them all.
//
// A chain's stream events carry its generation, so that what an old chain
// still reports while it is torn down is told apart and ignored.
#ifndef LAYERPOOL_COORDINATOR_CHAIN_H_
#define LAYERPOOL_COORDINATOR_CHAIN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/micro_batches.h"
#include "coordinator/planner.h"
#include "coordinator/worker_link.h"
#include "grpcpp/grpcpp.h"
#include "layerpool/v1/worker.pb.h"
#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"
#include "model/quant/types.h"
#include "proto/tls.h"
#include "transport/result_stream.h"

namespace layerpool {

// What every chain of one cluster shares.
struct ChainConfig {
  std::string model_path;
  const gguf::GgufFile* file = nullptr;  // the model's header, for fingerprints
  int64_t n_layer = 0;
  int64_t n_ctx = 0;
  int max_sequences = 1;
  int threads = 0;
  GgmlType kv_type = GgmlType::kF16;
  double rope_freq_base = 0, rope_freq_scale = 0, ntk_alpha = 1;
  v1::ElementType activation_type = v1::ELEMENT_TYPE_F32;
  v1::Transport stage_links = v1::TRANSPORT_AUTO;
  std::string token;
  std::optional<TlsFiles> tls;
  // How long a worker may take to answer Hello in a Rebuild: one that
  // stalled must not hold up its spare for long.
  absl::Duration connect_timeout = absl::Seconds(1);
  // What Replan plans with: the model's costs, context, sequences and
  // scratch, as the first plan had them; its workers are filled in there.
  PlanRequest replan;
  std::function<void(const std::string&)> log;  // may be empty
};

// Loads stage `index` of `plan` on `link`.
[[nodiscard]] absl::Status LoadPlannedStage(const ChainConfig& config, const StagePlan& plan,
                                            int index, WorkerLink& link);

// Loads every stage of `plan` at once, stage i on stages[i] (each worker
// reads its own disk), logging each; the first failure, naming its stage.
[[nodiscard]] absl::Status LoadPlannedStages(const ChainConfig& config,
                                             const std::vector<StagePlan>& plan,
                                             const std::vector<std::shared_ptr<WorkerLink>>& stages);

// "stage 1 (worker host:port)".
std::string StageName(int index, const WorkerLink& link);

class Chain {
 public:
  struct Callbacks {
    // A StepResult from the last stage, and the end of either stream (not
    // called for a Close), each with the chain's generation.
    std::function<void(uint64_t generation, v1::StepResult)> on_result;
    std::function<void(uint64_t generation, const absl::Status&)> on_broken;
  };

  // Connects the loaded stages last to first and opens the streams.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Chain>> Connect(
      const ChainConfig& config, uint64_t generation,
      std::vector<std::shared_ptr<WorkerLink>> stages, std::vector<StagePlan> plan,
      Callbacks callbacks);

  // A chain with `failed`'s plan after it failed. Stage i goes to the first
  // worker that answers and loads it, holding no other stage: the one at
  // its address in `failed`, then home[i] (where it started, for a stage
  // that had moved to a spare), then each of `spares`. Unavailable naming
  // the first stage no worker took.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Chain>> Rebuild(
      const ChainConfig& config, uint64_t generation, const Chain& failed,
      const std::vector<std::string>& home, const std::vector<std::string>& spares,
      Callbacks callbacks);

  // A chain over a new split, for when `failed` lost a stage that no
  // worker took back (Rebuild failed): the layers are planned again, by
  // free memory, over those of `candidates` that answer, counting as free
  // what the stage each holds from `failed` reserved (LoadStage replaces
  // it). Unavailable when none answers; the planner's error when the model
  // does not fit them.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Chain>> Replan(
      const ChainConfig& config, uint64_t generation, const Chain& failed,
      const std::vector<std::string>& candidates, Callbacks callbacks);

  ~Chain();  // closes the streams without reporting them broken

  uint64_t generation() const { return generation_; }
  int size() const { return static_cast<int>(stages_.size()); }
  WorkerLink& stage(int i) const { return *stages_[i]; }
  const StagePlan& plan(int i) const { return plan_[i]; }
  std::string StageName(int i) const { return layerpool::StageName(i, *stages_[i]); }

  // Into stage 0; Unavailable when that stream broke.
  [[nodiscard]] absl::Status Send(v1::ActivationChunk chunk) { return to_first_->Send(std::move(chunk)); }
  double first_hop_us() const { return to_first_->mean_hop_us(); }
  // Each stage's step costs, as it measured them when it loaded
  // (LoadStageResponse.step_costs); a stage that did not has an empty curve.
  std::vector<StepCurve> step_curves() const;

  // The chain's last act: ends this coordinator's lease on every stage's
  // worker (in parallel, each within `timeout`), so that another
  // coordinator may take them. The chain reports nothing broken after it.
  void ReleaseWorkers(absl::Duration timeout);

  // Which stage is down, if any: one that does not answer is the cause;
  // one that answers but is not ready (its next stage vanished) only a
  // symptom, blamed when no stage is silent. OK when all are well.
  absl::Status FindDownStage(absl::Duration timeout) const;

 private:
  Chain() = default;
  void ReadResults();

  uint64_t generation_ = 0;
  std::vector<std::shared_ptr<WorkerLink>> stages_;
  std::vector<StagePlan> plan_;
  Callbacks callbacks_;
  std::unique_ptr<ActivationSender> to_first_;
  std::unique_ptr<ResultSource> results_;
  std::atomic<bool> closing_{false};
  std::thread results_thread_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_CHAIN_H_
