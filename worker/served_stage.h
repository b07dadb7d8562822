// A pipeline stage as a worker serves it: the model file and the Stage
// loaded from a LoadStageRequest, the live sequences with their KV caches
// and samplers, and the memory the stage may come to hold.
//
// Loading checks the request (every field that could make the worker
// allocate or misbehave), the file's fingerprint against the coordinator's,
// and the memory the stage would need against the worker's budget:
//
//   weights   the bytes of the stage's tensors in the file
//   KV cache  max_sequences full-context caches of the stage's layers
//   work      StageScratchBytes for kWorkBufferRows rows, as the
//             coordinator's planner counts it
//
// When the request asks (measure_step_rows), loading ends by timing decode
// steps of 1, 2, 4, ... rows (worker/step_costs.h) for the coordinator.
//
// Running a micro-batch is serialised by a lock, so the data plane and
// FreeSequence may call from any thread.
#ifndef LAYERPOOL_WORKER_SERVED_STAGE_H_
#define LAYERPOOL_WORKER_SERVED_STAGE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "layerpool/v1/worker.pb.h"
#include "model/gguf/gguf.h"
#include "worker/activation_chunks.h"
#include "worker/pooling.h"
#include "worker/sequence_table.h"
#include "worker/stage.h"

namespace layerpool {

// Token rows a micro-batch may hold: a bound against hostile input, far
// above the coordinator's prefill chunks.
inline constexpr int64_t kMaxMicroBatchRows = 4096;
// Rows the memory check reserves work buffers for: the coordinator's
// default micro-batch (its --batch). Larger micro-batches still run; their
// buffers are then larger than the check counted.
inline constexpr int64_t kWorkBufferRows = 512;

struct LoadBudget {
  int default_threads = 1;  // when the request leaves n_threads at 0
  // Memory the stage may take, and where that figure comes from
  // ("--mem-limit", "available memory") for the error message. 0: no check.
  uint64_t bytes = 0;
  std::string source;
};

class ServedStage {
 public:
  // Loads the stage `request` describes. InvalidArgument naming the field
  // for a malformed request, NotFound for a missing file,
  // FailedPrecondition when the fingerprint differs from
  // request.expected_content_hash, ResourceExhausted naming the shortfall
  // when the budget is too small, or the file's own error.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ServedStage>> Load(
      const v1::LoadStageRequest& request, const LoadBudget& budget);

  struct Output {
    std::vector<float> hidden;  // not the last stage: [rows][n_embd]
    v1::StepResult result;      // the last stage: one token per sample
    double compute_us = 0;      // time in the lock, forward and sampling
  };

  // Runs one assembled micro-batch (ChunkAssembler checked its framing):
  // InvalidArgument for rows that do not continue their sequences,
  // ResourceExhausted when new sequences exceed max_sequences; a refused
  // micro-batch leaves the sequences as they were.
  [[nodiscard]] absl::Status Run(const AssembledBatch& batch, Output* out);

  // Drops the sequences held among `seq_ids`; returns how many there were.
  uint32_t Free(std::span<const uint64_t> seq_ids);
  // Drops every sequence held; returns how many there were.
  uint32_t FreeAll();

  // What the data plane accepts for this stage.
  ChunkLimits chunk_limits() const;

  // The request it was loaded from, and what the load answered.
  const v1::LoadStageRequest& request() const { return request_; }
  const v1::LoadStageResponse& load_response() const { return response_; }
  uint32_t stage_index() const { return stage_index_; }
  uint32_t first_layer() const { return first_; }  // inclusive
  uint32_t last_layer() const { return last_; }    // inclusive
  bool is_first() const { return stage_->is_first(); }
  bool is_last() const { return stage_->is_last(); }
  int64_t n_embd() const { return stage_->hparams().n_embd; }
  // Everything the stage may come to hold (LoadStageResponse.bytes_used).
  uint64_t reserved_bytes() const { return response_.bytes_used(); }

  // Lock-free snapshots for Stats.
  int64_t active_sequences() const { return active_.load(); }
  uint64_t kv_cells_used() const { return cells_used_.load(); }
  uint64_t kv_cells_total() const { return cells_total_; }
  uint64_t kv_bytes_allocated() const { return kv_bytes_.load(); }

 private:
  ServedStage() = default;
  void PublishCounters() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Sample(const AssembledBatch& batch, v1::StepResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<gguf::GgufFile> file_;  // outlives stage_
  std::unique_ptr<Stage> stage_;
  v1::LoadStageRequest request_;
  v1::LoadStageResponse response_;
  uint32_t stage_index_ = 0;
  uint32_t first_ = 0, last_ = 0;
  int64_t max_sequences_ = 0;
  uint64_t cells_total_ = 0;

  absl::Mutex mu_;
  std::unique_ptr<SequenceTable> sequences_ ABSL_GUARDED_BY(mu_);
  std::vector<float> logits_ ABSL_GUARDED_BY(mu_);
  std::vector<float> normed_ ABSL_GUARDED_BY(mu_);
  // Embedding requests' rows so far, by sequence (last stage only).
  absl::flat_hash_map<uint64_t, EmbeddingPool> pools_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> active_{0};
  std::atomic<uint64_t> cells_used_{0};
  std::atomic<uint64_t> kv_bytes_{0};
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_SERVED_STAGE_H_
