// The coordinator's view of a running pipeline: it plans the split, loads
// the stages on the workers, chains them, and runs requests through them.
//
// Start() reads the model's GGUF header (never its weights), greets every
// worker (protocol version, free memory), plans contiguous layer ranges
// (coordinator/planner.h), loads each stage with the fingerprint of its
// tensors, connects the stages from last to first, subscribes to the last
// stage's results and opens the token stream into stage 0.
//
// Then one thread owns the Scheduler (coordinator/scheduler.h) and reacts to
// events: requests, results from the last stage, cancellations, failures.
// Tokens reach each request's Stream.
//
// Failures: a health thread polls every worker. When one stops answering
// (or a stream to it breaks), Describe() shows its stage DOWN and a
// recovery thread builds a new chain (coordinator/chain.h): each stage on
// the worker at its address when that answers (a restarted worker rejoins
// by itself, one that stalled and woke keeps its stage), else on the first
// free spare. Meanwhile requests wait, new ones too; once the chain is
// back, every sequence in flight is replayed (its prompt and the tokens
// already streamed are prefilled again, its sampler resumes its random
// stream) and generation carries on, so a client's stream loses and
// repeats nothing and, greedy or seeded, equals an undisturbed run. If no
// chain is back within the replay budget, they end with Unavailable naming
// the stage and new requests are refused the same way, until recovery,
// which goes on trying, succeeds. The Cluster itself stays usable for
// Describe, Tokenize and Detokenize throughout.
//
// Thread-safe: Generate, Describe and the accessors may be called from any
// thread.
#ifndef LAYERPOOL_COORDINATOR_CLUSTER_H_
#define LAYERPOOL_COORDINATOR_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/micro_batches.h"
#include "coordinator/scheduler.h"
#include "layerpool/v1/inference.pb.h"
#include "layerpool/v1/worker.pb.h"
#include "model/hparams/hparams.h"
#include "model/quant/types.h"
#include "model/sampling/sampler.h"
#include "model/tokenizer/tokenizer.h"
#include "proto/tls.h"

namespace layerpool {

struct ClusterOptions {
  std::string model_path;
  std::vector<std::string> workers;  // "host:port", in stage order
  // The split: at most one of the two; neither means automatic.
  std::vector<int64_t> layer_counts;
  std::vector<double> ratios;
  int64_t n_ctx = 0;         // per sequence; 0: the model's, at most 4096
  int max_sequences = 8;     // sequences in flight at once
  int64_t batch = 512;       // token rows per micro-batch (prefill chunks)
  int max_queue = 64;        // requests waiting beyond max_sequences
  int threads = 0;           // per worker; 0: the worker's --threads
  GgmlType kv_type = GgmlType::kF16;
  // RoPE overrides for every stage; 0 (1 for ntk_alpha) keeps the model's.
  double rope_freq_base = 0;
  double rope_freq_scale = 0;
  double ntk_alpha = 1;
  v1::ElementType activation_type = v1::ELEMENT_TYPE_F32;
  // Stage-to-stage links: TRANSPORT_AUTO (a Unix socket between stages on
  // one host, gRPC otherwise) or TRANSPORT_GRPC (always gRPC).
  v1::Transport stage_links = v1::TRANSPORT_AUTO;
  // The workers' shared secret (--token-file, proto/peer_token.h); empty:
  // calls carry none.
  std::string token;
  // Mutual TLS to the workers (--tls-dir, proto/tls.h); none: plain text.
  std::optional<TlsFiles> tls;
  absl::Duration health_interval = absl::Milliseconds(500);
  absl::Duration health_timeout = absl::Seconds(2);
  // Workers that take a failed stage's place when its own does not come
  // back ("host:port", tried in order; --spares).
  std::vector<std::string> spares;
  // How long requests in flight wait for a failed stage to be replaced
  // before they end with Unavailable (--replay-budget).
  absl::Duration replay_budget = absl::Seconds(2);
  // When a failed stage has been down this long and neither its worker nor
  // a spare took it back, the layers are planned again, by free memory,
  // over the workers that answer (--replan-after); zero: never.
  absl::Duration replan_after = absl::Seconds(10);
  // Progress lines ("loading stage 1 on ...") while starting; may be empty.
  std::function<void(const std::string&)> log;
};

// One event of a request's stream.
struct GenerateEvent {
  bool done = false;
  // !done: the token and, when n_probs > 0, its logprob and alternatives.
  int32_t token = 0;
  std::optional<float> logprob;
  std::vector<std::pair<int32_t, float>> top_logprobs;
  // For an embedding request, its one event before `done` carries the
  // pooled, L2-normalised final hidden state (n_embd floats; token 0).
  std::vector<float> embedding;
  // done: why it ended; status is not OK for kFailed (Unavailable when a
  // stage went down).
  FinishReason reason = FinishReason::kLength;
  absl::Status status;
};

struct GenerateRequest {
  std::vector<int32_t> prompt;  // token ids, not empty
  int64_t n_predict = 0;        // <= 0: until a stop token or the context ends
  SamplingParams sampling;
  // Not UNSPECIFIED: an embedding request. The prompt runs through every
  // stage and the last returns its hidden states pooled this way, in one
  // event; nothing is generated (n_predict and sampling are ignored).
  v1::PoolingType embed = v1::POOLING_TYPE_UNSPECIFIED;
};

// The model id requests name: the file name without directory and ".gguf".
std::string ModelIdFromPath(const std::string& path);

class Cluster {
 public:
  class Stream;

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Cluster>> Start(
      ClusterOptions options);
  ~Cluster();  // ends requests, unloads nothing: workers keep their stage

  // Starts a request; its tokens arrive on the stream. InvalidArgument for a
  // bad request (which field and why), ResourceExhausted when the queue is
  // full, Unavailable when a stage is down.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Stream>> Generate(
      GenerateRequest request);

  v1::ClusterDescription Describe() const;
  // The id requests name (ModelIdFromPath of the model file).
  const std::string& model_id() const;
  // OK while the chain is up; Unavailable naming the failed stage while it
  // is being replaced.
  absl::Status health() const;
  // Requests waiting for a sequence slot, and sequences admitted (prefill
  // or decode), as of the scheduler's last step.
  int queued_requests() const;
  int active_sequences() const;

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const HParams& hparams() const { return hp_; }
  int64_t n_ctx() const { return n_ctx_; }
  // Bytes a token's hidden state takes on each stage-to-stage link.
  int64_t activation_bytes_per_token() const;
  int n_stages() const;
  // The stages' Stats, in stage order (for the split benchmark).
  absl::StatusOr<std::vector<v1::StatsResponse>> StageStats() const;
  // Stage i's Stats alone (waits at most 5 s for it).
  absl::StatusOr<v1::StatsResponse> StageStats(int i) const;
  // Mean time from sending a micro-batch to stage 0 to its ack, less the
  // stage's queue and compute time, halved, microseconds; 0 before any.
  double first_hop_us() const;
  // Each stage's step costs, measured when it loaded (Chain::step_curves).
  std::vector<StepCurve> step_curves() const;

 private:
  struct Impl;
  Cluster() = default;

  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Tokenizer> tokenizer_;
  HParams hp_;
  int64_t n_ctx_ = 0;
};

// The events of one request, in order, ending with one `done` event.
// Destroying the stream before `done` cancels the request.
class Cluster::Stream {
 public:
  ~Stream();
  // Blocks until the next event or the timeout; false on timeout.
  bool Next(GenerateEvent* event, absl::Duration timeout = absl::InfiniteDuration());
  // Ends the request early (a stop string matched, the client left); a
  // `done` event with kCancelled follows unless it had already ended.
  void Cancel();

  struct State;  // shared with the Cluster's loop, defined in cluster.cc

 private:
  friend class Cluster;
  Stream(std::shared_ptr<State> state, std::function<void()> cancel);
  std::shared_ptr<State> state_;
  std::function<void()> cancel_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_CLUSTER_H_
