// The worker's gRPC service: one pipeline stage behind the Worker API of
// proto/layerpool/v1/worker.proto (whose comments are the contract).
//
// Life of a worker: the coordinator says Hello, LoadStage (which replaces
// any stage loaded before, with its sequences, streams and downstream
// link), ConnectDownstream, then opens Activations; the last stage's
// StepResults go out on Results, or on the Unix socket to a coordinator on
// this host (transport/result_stream.h).
//
// The data plane computes in the thread that reads the upstream stream:
// gRPC's Activations handler, or the Unix socket's reader for an upstream
// stage on this host (transport/unix_chunk_stream.h). One upstream stream
// at a time, whichever its transport (a newer one cancels the older),
// micro-batches in arrival order. A middle stage sends its output on the DownstreamLink
// before it acks upstream; the last stage samples and queues a StepResult.
// Anything malformed ends the stream with InvalidArgument naming the stage
// and the field; the worker keeps serving, and a new stream starts clean.
//
// The ack's queue_us runs from reading a micro-batch's last chunk to the
// start of its compute, and Stats' queue_depth counts the micro-batches
// between those points and through compute. A micro-batch that arrived
// while the previous one was computing waits in the transport's buffers
// before it is read; neither figure sees that wait, so the sender's hop
// measure (HopMicros in transport/chunk_stream.h) starts such a
// micro-batch's round trip at the previous ack instead.
//
// When the next stage fails between two micro-batches, the failure is
// reported on the next micro-batch (Unavailable, "stage K: next stage K+1
// at ADDR: ...") and at once in Health (state DOWN with the message) — the
// synchronous gRPC API cannot end an upstream stream with a status while
// its handler waits for a read.
//
// Thread safety: gRPC calls the methods from its own threads, concurrently.
#ifndef LAYERPOOL_WORKER_SERVICE_H_
#define LAYERPOOL_WORKER_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "layerpool/v1/worker.grpc.pb.h"
#include "proto/tls.h"
#include "transport/chunk_stream.h"
#include "transport/unix_chunk_stream.h"
#include "worker/coordinator_lease.h"
#include "worker/downstream_link.h"
#include "worker/latency_window.h"
#include "worker/results_queue.h"
#include "worker/served_stage.h"

namespace layerpool {

struct WorkerOptions {
  // Compute threads when LoadStage leaves n_threads at 0; 0: every core.
  int threads = 0;
  // Memory a stage may take, bytes; 0: what the host has available.
  uint64_t mem_limit = 0;
  // One line per LoadStage and ConnectDownstream; none when empty.
  std::function<void(const std::string&)> log;
  // --token-file: calls without it are refused, and calls to the next stage
  // carry it (proto/peer_token.h). Empty: the API is open.
  std::string token;
  // --model-dir (CanonicalModelDir): the only models served; empty: any
  // file, for a coordinator on this host only (worker/model_access.h).
  std::string model_dir;
  // --tls-dir: mutual TLS for callers and for the link to the next stage
  // (proto/tls.h); none: plain text.
  std::optional<TlsFiles> tls;
  // Also take activation streams on an abstract Unix socket, named in Hello,
  // from stages on this host (ConnectDownstream's TRANSPORT_AUTO).
  bool unix_socket = true;
  // The worker serves one coordinator at a time (worker.proto, "Lease"),
  // which polls Health twice a second. After this long without a call from
  // it (it was killed, or its host is gone), its lease ends and the stage
  // frees every sequence it holds, keeping the stage loaded for the next
  // coordinator (--coordinator-timeout). Zero: never.
  std::chrono::milliseconds coordinator_timeout{10000};
};

class WorkerService final : public v1::Worker::Service {
 public:
  explicit WorkerService(WorkerOptions options);
  const std::optional<TlsFiles>& tls() const { return options_.tls; }
  ~WorkerService() override;

  // Ends the streams (Activations, Results, the downstream link) so that
  // grpc::Server::Shutdown does not wait on them. Call before it.
  void Shutdown();

  grpc::Status Hello(grpc::ServerContext* context,
                     const v1::HelloRequest* request,
                     v1::HelloResponse* response) override;
  grpc::Status LoadStage(grpc::ServerContext* context,
                         const v1::LoadStageRequest* request,
                         v1::LoadStageResponse* response) override;
  grpc::Status ConnectDownstream(
      grpc::ServerContext* context, const v1::ConnectDownstreamRequest* request,
      v1::ConnectDownstreamResponse* response) override;
  grpc::Status Activations(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream)
      override;
  grpc::Status Results(grpc::ServerContext* context,
                       const v1::ResultsRequest* request,
                       grpc::ServerWriter<v1::StepResult>* writer) override;
  grpc::Status FreeSequence(grpc::ServerContext* context,
                            const v1::FreeSequenceRequest* request,
                            v1::FreeSequenceResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context,
                      const v1::HealthRequest* request,
                      v1::HealthResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context,
                     const v1::StatsRequest* request,
                     v1::StatsResponse* response) override;
  grpc::Status Release(grpc::ServerContext* context, const v1::ReleaseRequest* request,
                       v1::ReleaseResponse* response) override;

 private:
  struct Budget {
    uint64_t bytes = 0;  // min(mem_limit, MemAvailable)
    uint64_t total = 0;  // min(mem_limit, MemTotal)
    std::string source;  // which of the two limits
  };
  Budget MemoryBudget() const;
  absl::Status LoadStageImpl(const v1::LoadStageRequest& request,
                             v1::LoadStageResponse* response);
  absl::Status ConnectImpl(const v1::ConnectDownstreamRequest& request,
                           const std::string& coordinator,
                           v1::ConnectDownstreamResponse* response);
  // The token, then the lease: a call that changes the stage or its
  // sequences takes it (`take_lease`), one that reads only keeps it alive
  // for its holder.
  grpc::Status Admit(const grpc::ServerContext* context, bool take_lease);
  // Coordinator `id` takes the lease; drops what a previous one left.
  absl::Status TakeLease(const std::string& id);
  // Frees every sequence of the stage and ends its upstream stream.
  void DropSequences(const std::string& why);
  // Makes `stream` the upstream (cancelling the one before) and serves it.
  absl::Status ServeStream(ChunkReceiver& stream, std::function<void()> cancel);
  absl::Status ServeUpstream(ChunkReceiver& stream);
  // Streams the last stage's results to a subscriber, over either transport.
  absl::Status ServeResults(ResultSink& sink);
  // Runs one micro-batch and hands its output on; fills the ack.
  absl::Status Process(ServedStage& stage, const AssembledBatch& batch,
                       v1::ActivationAck* ack);
  // The stage in use, or FailedPrecondition when none is READY.
  absl::StatusOr<std::shared_ptr<ServedStage>> ReadyStage() const;
  void OnLinkBroken(uint64_t generation, const absl::Status& status);
  void Log(const std::string& line) const;
  // Ends the lease of a coordinator that went silent and frees its
  // sequences; its own thread.
  void WatchCoordinator();

  const WorkerOptions options_;
  const int threads_;
  const std::chrono::steady_clock::time_point started_;
  ResultsQueue results_;
  std::unique_ptr<UnixChunkListener> unix_listener_;  // none when it could not start
  CoordinatorLease lease_;
  absl::Mutex watch_mu_;
  bool watch_stop_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watch_thread_;

  // Guards the stage, the link, the upstream stream and the health state.
  // Never held while computing, nor while a link is destroyed: the link's
  // ack thread reports a broken stream under it.
  mutable absl::Mutex mu_;
  std::shared_ptr<ServedStage> stage_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<DownstreamLink> link_ ABSL_GUARDED_BY(mu_);
  uint64_t link_generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Ends the current upstream stream; empty when there is none.
  std::function<void()> cancel_upstream_ ABSL_GUARDED_BY(mu_);
  uint64_t upstream_generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool loading_ ABSL_GUARDED_BY(mu_) = false;
  v1::StageState state_ ABSL_GUARDED_BY(mu_) = v1::STAGE_STATE_UNSPECIFIED;
  std::string state_message_ ABSL_GUARDED_BY(mu_);

  // Stats.
  LatencyWindow compute_latency_;
  std::atomic<uint64_t> tokens_processed_{0};
  std::atomic<int64_t> busy_us_{0};
  std::atomic<uint32_t> queue_depth_{0};
  absl::Mutex stats_mu_;
  std::chrono::steady_clock::time_point window_start_
      ABSL_GUARDED_BY(stats_mu_);
};

// Limits on what callers can hold open on a worker's gRPC server: its
// threads (each call in progress holds one; a coordinator needs a handful),
// and streams per connection.
inline constexpr int kMaxWorkerThreads = 64;
inline constexpr int kMaxStreamsPerConnection = 32;

// Starts a gRPC server for `service` on `address` ("host:port"; port 0
// picks a free one) with the message limits the service announces, and
// stores the bound port in *port. Unavailable when it cannot listen.
[[nodiscard]] absl::StatusOr<std::unique_ptr<grpc::Server>> StartWorkerServer(
    WorkerService* service, const std::string& address, int* port);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_SERVICE_H_
