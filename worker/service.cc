#include "worker/service.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "proto/peer_token.h"
#include "proto/version.h"
#include "transport/grpc_chunk_stream.h"
#include "worker/activation_chunks.h"
#include "worker/service_internal.h"

namespace layerpool {
using service_internal::Clock;
using service_internal::ClampToU32;
using service_internal::MicrosSince;

WorkerService::WorkerService(WorkerOptions options)
    : options_(std::move(options)),
      threads_(options_.threads > 0
                   ? options_.threads
                   : static_cast<int>(
                         std::max(1u, std::thread::hardware_concurrency()))),
      started_(Clock::now()),
      lease_(options_.coordinator_timeout) {
  {
    absl::MutexLock lock(&stats_mu_);
    window_start_ = started_;
  }
  if (options_.unix_socket) {
    absl::StatusOr<std::unique_ptr<UnixChunkListener>> listener = UnixChunkListener::Start(
        options_.token, kMaxMessageBytes + (1u << 20),
        [this](ChunkReceiver& receiver, std::function<void()> cancel) {
          return ServeStream(receiver, std::move(cancel));
        },
        [this](ResultSink& sink) { return ServeResults(sink); });
    if (listener.ok()) {
      unix_listener_ = *std::move(listener);
    } else {
      Log(absl::StrCat("no Unix socket for stages on this host (", listener.status().message(),
                       "); they use gRPC"));
    }
  }
  if (options_.coordinator_timeout.count() > 0) {
    watch_thread_ = std::thread([this] { WatchCoordinator(); });
  }
}

WorkerService::~WorkerService() {
  Shutdown();
  std::shared_ptr<DownstreamLink> link;
  {
    absl::MutexLock lock(&mu_);
    link = std::move(link_);
  }
}

void WorkerService::Shutdown() {
  {
    absl::MutexLock lock(&watch_mu_);
    watch_stop_ = true;
  }
  if (watch_thread_.joinable()) watch_thread_.join();
  std::shared_ptr<DownstreamLink> link;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    if (cancel_upstream_) cancel_upstream_();
    link = link_;
  }
  if (link != nullptr) link->Close();
  results_.Close();
  if (unix_listener_ != nullptr) unix_listener_->Stop();
}

void WorkerService::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

absl::StatusOr<std::shared_ptr<ServedStage>> WorkerService::ReadyStage() const {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return absl::UnavailableError("worker shutting down");
  if (loading_) return absl::FailedPreconditionError("the stage is loading");
  if (stage_ == nullptr) {
    return absl::FailedPreconditionError("no stage loaded (LoadStage first)");
  }
  return stage_;
}

// ---------------------------------------------------------------- data plane

grpc::Status WorkerService::Activations(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  GrpcChunkReceiver receiver(stream, CoordinatorIdOf(context));
  return ToGrpc(ServeStream(receiver, [context] { context->TryCancel(); }));
}

absl::Status WorkerService::ServeStream(ChunkReceiver& stream, std::function<void()> cancel) {
  // The stream's sender vouches for its coordinator: a stage upstream
  // passes on the id the coordinator gave it in ConnectDownstream.
  std::string coordinator = stream.coordinator();
  if (!IsCoordinatorId(coordinator)) coordinator.clear();
  LP_RETURN_IF_ERROR(TakeLease(coordinator));
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("worker shutting down");
    // One upstream at a time: the newer stream wins.
    if (cancel_upstream_) cancel_upstream_();
    cancel_upstream_ = std::move(cancel);
    generation = ++upstream_generation_;
  }
  const absl::Status status = ServeUpstream(stream);
  {
    absl::MutexLock lock(&mu_);
    if (upstream_generation_ == generation) cancel_upstream_ = nullptr;
  }
  return status;
}

absl::Status WorkerService::ServeUpstream(ChunkReceiver& stream) {
  LP_ASSIGN_OR_RETURN(std::shared_ptr<ServedStage> stage, ReadyStage());
  const std::string name = absl::StrCat("stage ", stage->stage_index());
  ChunkAssembler assembler(stage->chunk_limits());
  v1::ActivationChunk chunk;
  // Since when this stage has been waiting for the next micro-batch.
  Clock::time_point ready = Clock::now();
  while (stream.Read(&chunk)) {
    const Clock::time_point got = Clock::now();
    const std::optional<Clock::time_point> sent = stream.sent_at();
    absl::StatusOr<bool> complete = assembler.Add(chunk);
    if (!complete.ok()) return Annotate(complete.status(), name);
    if (!*complete) continue;
    const AssembledBatch batch = assembler.Take();
    v1::ActivationAck ack;
    LP_RETURN_IF_ERROR(Process(*stage, batch, &ack));
    if (sent.has_value()) {
      // One host, one clock: the link's own time, less any wait behind
      // this stage's earlier work.
      ack.set_transit_us(ClampToU32(
          std::chrono::duration<double, std::micro>(got - std::max(*sent, ready)).count()));
    }
    // A failed Write means the upstream went away; its status is its own.
    if (!stream.WriteAck(ack)) break;
    ready = Clock::now();
  }
  return absl::OkStatus();
}

absl::Status WorkerService::Process(ServedStage& stage, const AssembledBatch& batch,
                                    v1::ActivationAck* ack) {
  const std::string name = absl::StrCat("stage ", stage.stage_index());
  const Clock::time_point start = Clock::now();
  ServedStage::Output out;
  queue_depth_.fetch_add(1);
  const absl::Status run = stage.Run(batch, &out);
  queue_depth_.fetch_sub(1);
  LP_RETURN_IF_ERROR(run, name, ": micro-batch ", batch.id);
  busy_us_.fetch_add(static_cast<int64_t>(out.compute_us));
  compute_latency_.Add(out.compute_us);
  tokens_processed_.fetch_add(batch.rows());

  if (stage.is_last()) {
    results_.Push(std::move(out.result));
  } else {
    std::shared_ptr<DownstreamLink> link;
    {
      absl::MutexLock lock(&mu_);
      link = link_;
    }
    if (link == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          name, ": no next stage connected (ConnectDownstream first)"));
    }
    LP_ASSIGN_OR_RETURN(
        std::vector<v1::ActivationChunk> chunks,
        EncodeChunks(batch, out.hidden, stage.n_embd(), link->activation_type(),
                     link->max_message_bytes()),
        name, ": micro-batch ", batch.id);
    LP_RETURN_IF_ERROR(link->Send(chunks));
  }
  ack->set_micro_batch_id(batch.id);
  ack->set_chunk_index(batch.last_chunk_index);
  ack->set_queue_us(ClampToU32(
      std::chrono::duration<double, std::micro>(start - batch.arrived)
          .count()));
  ack->set_compute_us(ClampToU32(MicrosSince(start)));
  return absl::OkStatus();
}

// ---------------------------------------------------------------- server

absl::StatusOr<std::unique_ptr<grpc::Server>> StartWorkerServer(
    WorkerService* service, const std::string& address, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, WorkerServerCredentials(service->tls()), port);
  builder.RegisterService(service);
  // Room for a full chunk plus its framing; senders chunk below
  // kMaxMessageBytes as Hello tells them.
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxMessageBytes) +
                                   (1 << 20));
  builder.SetMaxSendMessageSize(static_cast<int>(kMaxMessageBytes) + (1 << 20));
  // One peer cannot take the worker's memory with calls: every call holds
  // one of at most kMaxWorkerThreads threads (past them, RESOURCE_EXHAUSTED),
  // and one connection carries at most kMaxStreamsPerConnection at once.
  grpc::ResourceQuota quota("layerpool-worker");
  quota.SetMaxThreads(kMaxWorkerThreads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxStreamsPerConnection);
  // gRPC sets SO_REUSEPORT by default, which lets a second worker bind a
  // port that is already serving and silently share its traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address,
                     " (a bad address, or the port is taken)"));
  }
  return server;
}

}  // namespace layerpool
