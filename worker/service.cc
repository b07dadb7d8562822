#include "worker/service.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "kernels/vec_dot.h"
#include "proto/peer_token.h"
#include "proto/version.h"
#include "transport/grpc_chunk_stream.h"
#include "worker/activation_chunks.h"
#include "worker/host_memory.h"
#include "worker/model_access.h"

namespace layerpool {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start)
      .count();
}

uint32_t ClampToU32(double micros) {
  return static_cast<uint32_t>(std::clamp(micros, 0.0, 4294967295.0));
}

std::string DeviceName(int threads) {
  const kernels::CpuIsa isa = kernels::ActiveIsa();
  const char* simd = isa == kernels::CpuIsa::kAvx512 ? "AVX-512"
                     : isa == kernels::CpuIsa::kAvx2 ? "AVX2"
                                                     : "scalar kernels";
  return absl::StrCat("CPU: ", threads,
                      threads == 1 ? " thread, " : " threads, ", simd);
}

std::string LayerRange(const ServedStage& stage) {
  return absl::StrCat("[", stage.first_layer(), ", ", stage.last_layer(), "]");
}

}  // namespace

WorkerService::WorkerService(WorkerOptions options)
    : options_(std::move(options)),
      threads_(options_.threads > 0
                   ? options_.threads
                   : static_cast<int>(
                         std::max(1u, std::thread::hardware_concurrency()))),
      started_(Clock::now()) {
  {
    absl::MutexLock lock(&stats_mu_);
    window_start_ = started_;
  }
  if (options_.unix_socket) {
    absl::StatusOr<std::unique_ptr<UnixChunkListener>> listener = UnixChunkListener::Start(
        options_.token, kMaxMessageBytes + (1u << 20),
        [this](ChunkReceiver& receiver, std::function<void()> cancel) {
          return ServeStream(receiver, std::move(cancel));
        });
    if (listener.ok()) {
      unix_listener_ = *std::move(listener);
    } else {
      Log(absl::StrCat("no Unix socket for stages on this host (", listener.status().message(),
                       "); they use gRPC"));
    }
  }
  HeardFromCoordinator();
  if (options_.coordinator_timeout.count() > 0) {
    watch_thread_ = std::thread([this] { WatchCoordinator(); });
  }
}

void WorkerService::HeardFromCoordinator() {
  last_coordinator_call_ns_.store(Clock::now().time_since_epoch().count());
}

void WorkerService::WatchCoordinator() {
  const auto timeout = options_.coordinator_timeout;
  const absl::Duration period = absl::FromChrono(
      std::min<std::chrono::milliseconds>(timeout / 4, std::chrono::milliseconds(1000)));
  absl::MutexLock lock(&watch_mu_);
  while (!watch_mu_.AwaitWithTimeout(absl::Condition(&watch_stop_), period)) {
    const Clock::duration silent =
        Clock::now().time_since_epoch() - Clock::duration(last_coordinator_call_ns_.load());
    if (silent < timeout) continue;
    std::shared_ptr<ServedStage> stage;
    {
      absl::MutexLock state_lock(&mu_);
      stage = stage_;
    }
    if (stage == nullptr || stage->active_sequences() == 0) continue;
    const uint32_t freed = stage->FreeAll();
    Log(absl::StrCat("stage ", stage->stage_index(), ": no call from the coordinator for ",
                     std::chrono::duration_cast<std::chrono::milliseconds>(silent).count(),
                     " ms (--coordinator-timeout): freed its ", freed,
                     " sequences; the stage stays loaded"));
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

WorkerService::Budget WorkerService::MemoryBudget() const {
  Budget budget;
  const uint64_t limit = options_.mem_limit;
  absl::StatusOr<HostMemory> host = ReadHostMemory();
  if (!host.ok()) {
    // Without /proc/meminfo only the flag can bound a stage.
    budget.bytes = budget.total = limit;
    budget.source = "--mem-limit";
    return budget;
  }
  if (limit > 0 && limit <= host->available_bytes) {
    budget.bytes = limit;
    budget.source = "--mem-limit";
  } else {
    budget.bytes = host->available_bytes;
    budget.source =
        limit > 0 ? "available memory, below --mem-limit" : "available memory";
  }
  budget.total =
      limit > 0 ? std::min(limit, host->total_bytes) : host->total_bytes;
  return budget;
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

// ---------------------------------------------------------------- control

grpc::Status WorkerService::Hello(grpc::ServerContext* context,
                                  const v1::HelloRequest* request,
                                  v1::HelloResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  if (absl::Status s = CheckPeerVersion(request->protocol_version(),
                                        absl::StrCat("peer ", context->peer()),
                                        "this worker");
      !s.ok()) {
    return ToGrpc(s);
  }
  const Budget budget = MemoryBudget();
  uint64_t reserved = 0;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != nullptr) reserved = stage_->reserved_bytes();
  }
  *response->mutable_protocol_version() = CurrentProtocolVersion();
  response->set_build(kBuildName);
  if (unix_listener_ != nullptr) response->set_unix_socket(unix_listener_->name());
  for (const char* type : {"f16", "bf16", "q8_0"}) {
    response->add_capabilities(absl::StrCat(type, "-activations"));
  }
  response->set_free_memory_bytes(
      budget.bytes > reserved ? budget.bytes - reserved : 0);
  response->set_total_memory_bytes(budget.total);
  response->set_device(DeviceName(threads_));
  response->set_max_message_bytes(kMaxMessageBytes);
  response->set_max_inflight_chunks(kMaxInflightChunks);
  return grpc::Status::OK;
}

grpc::Status WorkerService::LoadStage(grpc::ServerContext* context,
                                      const v1::LoadStageRequest* request,
                                      v1::LoadStageResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  HeardFromCoordinator();
  absl::Status status = CheckModelAccess(request->model_path(), options_.model_dir,
                                         IsLocalPeer(context->peer()));
  if (status.ok()) status = LoadStageImpl(*request, response);
  if (!status.ok()) Log(absl::StrCat("LoadStage failed: ", status.message()));
  return ToGrpc(status);
}

absl::Status WorkerService::LoadStageImpl(const v1::LoadStageRequest& request,
                                          v1::LoadStageResponse* response) {
  std::shared_ptr<ServedStage> old_stage, kept;
  std::shared_ptr<DownstreamLink> old_link;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("worker shutting down");
    if (loading_) {
      return absl::FailedPreconditionError("another LoadStage is in progress");
    }
    // The same request again (a coordinator rebuilding its chain after
    // losing another stage, or restarted) keeps the stage: its weights and
    // KV memory stay, its sequences and links go, as after a fresh load.
    const bool same = stage_ != nullptr &&
        google::protobuf::util::MessageDifferencer::Equals(stage_->request(), request);
    if (same) {
      kept = stage_;
      state_ = v1::STAGE_STATE_READY;
      state_message_.clear();
    } else {
      // The old stage goes first, so that its memory counts for the new one.
      loading_ = true;
      old_stage = std::move(stage_);
      state_ = v1::STAGE_STATE_LOADING;
      state_message_ = "loading";
    }
    old_link = std::move(link_);
    ++link_generation_;
    if (cancel_upstream_) cancel_upstream_();
  }
  if (old_link != nullptr) old_link->Close();
  old_link.reset();
  old_stage.reset();
  if (kept != nullptr) {
    const uint32_t dropped = kept->FreeAll();
    *response = kept->load_response();
    response->set_reused(true);
    Log(absl::StrCat("stage ", kept->stage_index(), ": kept layers ", LayerRange(*kept),
                     " (the same LoadStage again), dropped ", dropped, " sequences"));
    return absl::OkStatus();
  }

  const Budget budget = MemoryBudget();
  LoadBudget load_budget;
  load_budget.default_threads = threads_;
  load_budget.bytes = budget.bytes;
  load_budget.source = budget.source;
  absl::StatusOr<std::unique_ptr<ServedStage>> loaded =
      ServedStage::Load(request, load_budget);

  absl::MutexLock lock(&mu_);
  loading_ = false;
  if (!loaded.ok()) {
    state_ = v1::STAGE_STATE_UNSPECIFIED;
    state_message_ =
        absl::StrCat("LoadStage failed: ", loaded.status().message());
    return loaded.status();
  }
  stage_ = std::move(*loaded);
  state_ = v1::STAGE_STATE_READY;
  state_message_.clear();
  *response = stage_->load_response();
  Log(absl::StrCat("stage ", stage_->stage_index(), ": loaded layers ",
                   LayerRange(*stage_), " of ", request.model_path(), " (",
                   HumanBytes(response->weight_bytes()), " weights, ",
                   HumanBytes(response->kv_cache_bytes()), " KV cache) in ",
                   static_cast<int64_t>(response->load_ms()), " ms"));
  return absl::OkStatus();
}

grpc::Status WorkerService::ConnectDownstream(
    grpc::ServerContext* context, const v1::ConnectDownstreamRequest* request,
    v1::ConnectDownstreamResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  HeardFromCoordinator();
  absl::Status status = ConnectImpl(*request, response);
  if (!status.ok()) {
    Log(absl::StrCat("ConnectDownstream failed: ", status.message()));
  }
  return ToGrpc(status);
}

absl::Status WorkerService::ConnectImpl(const v1::ConnectDownstreamRequest& request,
                                        v1::ConnectDownstreamResponse* response) {
  LP_ASSIGN_OR_RETURN(std::shared_ptr<ServedStage> stage, ReadyStage());
  const std::string name = absl::StrCat("stage ", stage->stage_index());
  if (request.transport() == v1::TRANSPORT_NCCL) {
    return absl::UnimplementedError(absl::StrCat(
        name, ": this worker has no NCCL transport yet; use TRANSPORT_GRPC"));
  }
  if (request.transport() != v1::TRANSPORT_GRPC &&
      request.transport() != v1::TRANSPORT_AUTO &&
      request.transport() != v1::TRANSPORT_UNSPECIFIED) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": transport ", request.transport(), " is unknown"));
  }
  v1::ElementType type = request.activation_type();
  if (type == v1::ELEMENT_TYPE_UNSPECIFIED) type = v1::ELEMENT_TYPE_F32;
  if (WireRowBytes(type, stage->n_embd()) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": activation_type ", request.activation_type(),
        " is not F32, F16, BF16 or Q8_0 (Q8_0: for an n_embd that is a multiple of 32, this "
        "model's is ", stage->n_embd(), ")"));
  }

  std::shared_ptr<DownstreamLink> old_link;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (request.next_address().empty() != stage->is_last()) {
      return absl::FailedPreconditionError(
          stage->is_last()
              ? absl::StrCat(name,
                             " holds the model's last layers and sends "
                             "to Results; next_address must be empty")
              : absl::StrCat(name, " holds layers ", LayerRange(*stage),
                             ", not the last ones: it needs a next_address"));
    }
    old_link = std::move(link_);
    generation = ++link_generation_;
  }
  if (old_link != nullptr) old_link->Close();
  old_link.reset();
  if (request.next_address().empty()) {
    Log(absl::StrCat(name, ": last stage, tokens go to the Results stream"));
    return absl::OkStatus();
  }

  DownstreamLink::Options options;
  options.token = options_.token;
  options.tls = options_.tls;
  options.address = request.next_address();
  options.stage_index = stage->stage_index();
  options.activation_type = type;
  options.try_unix_socket = request.transport() == v1::TRANSPORT_AUTO;
  options.on_broken = [this, generation](const absl::Status& status) {
    OnLinkBroken(generation, status);
  };
  LP_ASSIGN_OR_RETURN(std::unique_ptr<DownstreamLink> link,
                      DownstreamLink::Connect(std::move(options)));
  std::shared_ptr<DownstreamLink> connected = std::move(link);
  {
    absl::MutexLock lock(&mu_);
    if (generation != link_generation_ || stage_ != stage) {
      // A LoadStage or another ConnectDownstream came in meanwhile: theirs
      // wins, and this link closes outside the lock below.
      old_link = std::move(connected);
    } else {
      link_ = connected;
      state_ = v1::STAGE_STATE_READY;
      state_message_.clear();
    }
  }
  if (old_link != nullptr) {
    return absl::AbortedError(
        absl::StrCat(name, ": the stage changed while connecting"));
  }
  response->set_link(connected->description());
  Log(absl::StrCat(name, ": sends to ", request.next_address(), " over ",
                   connected->description(), " (",
                   WireTypeName(type),
                   " activations, messages up to ",
                   HumanBytes(connected->max_message_bytes()), ")"));
  return absl::OkStatus();
}

void WorkerService::OnLinkBroken(uint64_t generation,
                                 const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (generation != link_generation_ || shutting_down_) return;
  state_ = v1::STAGE_STATE_DOWN;
  state_message_ = std::string(status.message());
}

grpc::Status WorkerService::FreeSequence(grpc::ServerContext* context,
                                         const v1::FreeSequenceRequest* request,
                                         v1::FreeSequenceResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  HeardFromCoordinator();
  std::shared_ptr<ServedStage> stage;
  {
    absl::MutexLock lock(&mu_);
    stage = stage_;
  }
  // With no stage there is nothing to free: the call is idempotent.
  if (stage != nullptr) {
    response->set_freed(stage->Free(std::span<const uint64_t>(
        request->seq_ids().data(), request->seq_ids().size())));
  }
  return grpc::Status::OK;
}

grpc::Status WorkerService::Health(grpc::ServerContext* context,
                                   const v1::HealthRequest* request,
                                   v1::HealthResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  HeardFromCoordinator();
  absl::MutexLock lock(&mu_);
  response->set_state(state_);
  response->set_message(state_message_);
  response->set_uptime_ms(static_cast<uint64_t>(MicrosSince(started_) / 1000));
  return grpc::Status::OK;
}

grpc::Status WorkerService::Stats(grpc::ServerContext* context,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  HeardFromCoordinator();
  std::shared_ptr<ServedStage> stage;
  std::shared_ptr<DownstreamLink> link;
  {
    absl::MutexLock lock(&mu_);
    stage = stage_;
    link = link_;
  }
  {
    absl::MutexLock lock(&stats_mu_);
    const Clock::time_point now = Clock::now();
    const double window_us =
        std::chrono::duration<double, std::micro>(now - window_start_).count();
    window_start_ = now;
    const double busy = static_cast<double>(busy_us_.exchange(0));
    response->set_window_ms(ClampToU32(window_us / 1000));
    response->set_busy_fraction(
        window_us > 0 ? std::clamp(busy / window_us, 0.0, 1.0) : 0.0);
  }
  response->set_queue_depth(queue_depth_.load());
  if (link != nullptr)
    *response->mutable_hop_latency() = link->TakeHopLatency();
  *response->mutable_compute_latency() = compute_latency_.TakeSummary();
  response->set_tokens_processed(tokens_processed_.load());
  const Budget budget = MemoryBudget();
  uint64_t reserved = 0;
  if (stage != nullptr) {
    response->set_active_sequences(
        static_cast<uint32_t>(stage->active_sequences()));
    response->set_kv_cells_used(stage->kv_cells_used());
    response->set_kv_cells_total(stage->kv_cells_total());
    response->set_memory_used_bytes(stage->load_response().weight_bytes() +
                                    stage->kv_bytes_allocated());
    reserved = stage->reserved_bytes();
  }
  response->set_memory_free_bytes(
      budget.bytes > reserved ? budget.bytes - reserved : 0);
  return grpc::Status::OK;
}

grpc::Status WorkerService::Results(
    grpc::ServerContext* context, const v1::ResultsRequest* request,
    grpc::ServerWriter<v1::StepResult>* writer) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != nullptr && !stage_->is_last()) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat(
              "stage ", stage_->stage_index(), " holds layers ",
              LayerRange(*stage_),
              ", not the last ones: Results come from the last stage"));
    }
  }
  return results_.Serve(context, writer);
}

// ---------------------------------------------------------------- data plane

grpc::Status WorkerService::Activations(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  GrpcChunkReceiver receiver(stream);
  return ToGrpc(ServeStream(receiver, [context] { context->TryCancel(); }));
}

absl::Status WorkerService::ServeStream(ChunkReceiver& stream, std::function<void()> cancel) {
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
