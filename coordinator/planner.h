// The split planner: cutting a model's transformer layers into contiguous
// pipeline stages, one per worker.
//
// Stage k holds layers [first_layer, end_layer) and runs on a worker; stages
// follow the order of PlanRequest::workers. The first stage also holds the
// token embedding, the last the output norm and head (and the embedding again
// when the model ties them). Each stage reserves KV cache for its layers at
// the full context for every sequence, plus a fixed scratch allowance.
//
// PlanSplit is a pure function: no I/O, no threads, no global state. It is
// safe to call from any thread. Errors:
//   InvalidArgument    the request is malformed: zero workers, more stages
//                      than layers, layer counts that do not sum to the
//                      model's layers, both counts and ratios, ...
//   ResourceExhausted  the plan cannot fit; the message names the worker,
//                      its layers and the shortfall in human units, e.g.
//                      "worker 'gpu1' needs 25.3 GiB for layers [40, 80) but
//                      has 24.0 GiB free (short by 1.3 GiB)", or the total:
//                      "the model needs 41.2 GiB in all (...) but the
//                      workers have 38.0 GiB".
#ifndef LAYERPOOL_COORDINATOR_PLANNER_H_
#define LAYERPOOL_COORDINATOR_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"

namespace layerpool {

// What the parts of a model cost in memory, in bytes.
struct ModelCosts {
  std::vector<uint64_t> layer_weight_bytes;  // blk.<i>.* for each layer i
  uint64_t embedding_bytes = 0;  // token_embd, held by the first stage
  // output_norm + output (+ token_embd again when tied, + any other
  // non-layer tensor such as rope_freqs), held by the last stage.
  uint64_t output_bytes = 0;
  uint64_t kv_bytes_per_token_per_layer = 0;  // K and V at the chosen type
};

// Costs of the model in `file` with hyper-parameters `hp`, with KV elements
// of `kv_bytes_per_element` bytes (2 for f16). InvalidArgument when a tensor
// names a layer outside [0, hp.n_layer), hp has no layers or no KV shape,
// or kv_bytes_per_element is not positive.
[[nodiscard]] absl::StatusOr<ModelCosts> ModelCostsFromGguf(
    const gguf::GgufFile& file, const HParams& hp, double kv_bytes_per_element);
// The same from a table of tensors (a GGUF file's, or a synth shape's).
[[nodiscard]] absl::StatusOr<ModelCosts> ModelCostsFromTensors(
    const std::vector<gguf::TensorInfo>& tensors, const HParams& hp,
    double kv_bytes_per_element);

struct WorkerMemory {
  std::string name;     // for messages and DescribePlan
  uint64_t free_bytes;  // what the stage may use in all
};

struct PlanRequest {
  ModelCosts costs;
  std::vector<WorkerMemory> workers;  // stage order
  // KV room each stage reserves for each of its layers:
  // context_tokens x max_sequences x kv_bytes_per_token_per_layer.
  int64_t context_tokens = 0;
  int64_t max_sequences = 1;
  uint64_t scratch_bytes_per_stage = 0;  // activations and buffers

  // At most one of the two; with neither the planner chooses (automatic).
  //
  // layer_counts (--split 3,3,6): one entry per worker, each >= 1, summing to
  // the number of layers. Honoured exactly, then checked against memory.
  std::vector<int64_t> layer_counts;
  // ratios (--tensor-split 0.25,0.75): llama.cpp tensor_split semantics. One
  // non-negative entry per worker, normalised; worker i gets the layers l
  // with cum[i-1] <= l/n_layer < cum[i] (cum = running normalised sum), so
  // counts always sum to n_layer. A worker that gets no layers (a 0 entry,
  // or one too small to reach a whole layer) is left out of the plan.
  std::vector<double> ratios;
  // Automatic: every worker gets >= 1 layer, and the plan balances decode
  // work by free memory. A stage's work is the weight bytes it reads per
  // token (its layers, and the output head on the last stage: on a 1B model
  // that head reads like 1.4 layers); workers are taken to be as fast as
  // they have free memory, so equal workers get equal work. Of the splits
  // that fit, the one whose largest work / free memory is smallest.
};

struct StagePlan {
  int worker = 0;           // index into PlanRequest::workers
  int64_t first_layer = 0;  // layers [first_layer, end_layer)
  int64_t end_layer = 0;
  uint64_t weight_bytes = 0;  // layers, plus embedding (first) / output (last)
  uint64_t kv_bytes = 0;
  uint64_t total_bytes = 0;  // weight_bytes + kv_bytes + scratch
  // Weight bytes read per token of a decode step: layers, plus the output
  // head on the last stage.
  uint64_t read_bytes_per_token = 0;
};

// The stages, in worker order, covering [0, n_layer) without gaps.
[[nodiscard]] absl::StatusOr<std::vector<StagePlan>> PlanSplit(
    const PlanRequest& request);

// A table of the plan for logs and the CLI: one row per stage with worker,
// layers, weights, KV cache, total, free, headroom and the weight bytes it
// reads per token.
std::string DescribePlan(const std::vector<StagePlan>& plan,
                         const PlanRequest& request);

// "3,3,6" -> {3, 3, 6}. Whitespace around entries is allowed; InvalidArgument
// for an empty list or an entry that is not an integer. The values' meaning
// is checked by PlanSplit.
[[nodiscard]] absl::StatusOr<std::vector<int64_t>> ParseLayerCounts(
    absl::string_view text);

// "0.25,0.75" -> {0.25, 0.75}. InvalidArgument for an empty list or an entry
// that is not a finite non-negative number.
[[nodiscard]] absl::StatusOr<std::vector<double>> ParseRatios(
    absl::string_view text);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_PLANNER_H_
