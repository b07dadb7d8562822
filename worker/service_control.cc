// The Worker API's control plane (Hello, LoadStage, ConnectDownstream,
// FreeSequence, Health, Stats, Release, Results) and the coordinator lease.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/message_differencer.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "kernels/vec_dot.h"
#include "proto/peer_token.h"
#include "proto/version.h"
#include "transport/grpc_chunk_stream.h"
#include "worker/host_memory.h"
#include "worker/model_access.h"
#include "worker/service.h"
#include "worker/service_internal.h"

namespace layerpool {
namespace {

std::string DeviceName(int threads) {
  const kernels::CpuIsa isa = kernels::ActiveIsa();
  const char* simd = isa == kernels::CpuIsa::kAvx512 ? "AVX-512"
                     : isa == kernels::CpuIsa::kAvx2 ? "AVX2"
                                                     : "scalar kernels";
  return absl::StrCat("CPU: ", threads,
                      threads == 1 ? " thread, " : " threads, ", simd);
}

}  // namespace

using service_internal::Clock;
using service_internal::ClampToU32;
using service_internal::LayerRange;
using service_internal::MicrosSince;

void WorkerService::WatchCoordinator() {
  const auto timeout = options_.coordinator_timeout;
  const absl::Duration period = absl::FromChrono(
      std::min<std::chrono::milliseconds>(timeout / 4, std::chrono::milliseconds(1000)));
  absl::MutexLock lock(&watch_mu_);
  while (!watch_mu_.AwaitWithTimeout(absl::Condition(&watch_stop_), period)) {
    const Clock::duration silent = lease_.ExpireSilent();
    if (silent == Clock::duration::zero()) continue;
    DropSequences(absl::StrCat(
        "no call from its coordinator for ",
        std::chrono::duration_cast<std::chrono::milliseconds>(silent).count(),
        " ms (--coordinator-timeout): its lease ended"));
  }
}

void WorkerService::DropSequences(const std::string& why) {
  std::shared_ptr<ServedStage> stage;
  {
    absl::MutexLock lock(&mu_);
    stage = stage_;
    if (cancel_upstream_) cancel_upstream_();
  }
  const uint32_t freed = stage != nullptr ? stage->FreeAll() : 0;
  Log(absl::StrCat(stage != nullptr ? absl::StrCat("stage ", stage->stage_index()) : "worker",
                   ": ", why, "; freed ", freed, " sequences, the stage stays loaded"));
}

grpc::Status WorkerService::Admit(const grpc::ServerContext* context, bool take_lease) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  const std::string id = CoordinatorIdOf(context);
  if (!take_lease) {
    lease_.Touch(id);
    return grpc::Status::OK;
  }
  return ToGrpc(TakeLease(id));
}

absl::Status WorkerService::TakeLease(const std::string& id) {
  LP_ASSIGN_OR_RETURN(bool changed_hands, lease_.Take(id));
  if (changed_hands) {
    DropSequences(absl::StrCat("coordinator ", id.substr(0, 8), "… took over"));
  }
  return absl::OkStatus();
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

// ---------------------------------------------------------------- control

grpc::Status WorkerService::Hello(grpc::ServerContext* context,
                                  const v1::HelloRequest* request,
                                  v1::HelloResponse* response) {
  if (grpc::Status s = Admit(context, /*take_lease=*/false); !s.ok()) return s;
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
  if (grpc::Status s = Admit(context, /*take_lease=*/true); !s.ok()) return s;
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
  if (response->step_costs_size() > 0) {
    std::vector<std::string> steps;
    for (const v1::StepCost& c : response->step_costs()) {
      steps.push_back(absl::StrFormat("%d row%s %.1f ms", c.rows(), c.rows() == 1 ? "" : "s",
                                      c.ms()));
    }
    Log(absl::StrCat("stage ", stage_->stage_index(), ": decode steps took ",
                     absl::StrJoin(steps, ", ")));
  }
  return absl::OkStatus();
}

grpc::Status WorkerService::ConnectDownstream(
    grpc::ServerContext* context, const v1::ConnectDownstreamRequest* request,
    v1::ConnectDownstreamResponse* response) {
  if (grpc::Status s = Admit(context, /*take_lease=*/true); !s.ok()) return s;
  absl::Status status = ConnectImpl(*request, CoordinatorIdOf(context), response);
  if (!status.ok()) {
    Log(absl::StrCat("ConnectDownstream failed: ", status.message()));
  }
  return ToGrpc(status);
}

absl::Status WorkerService::ConnectImpl(const v1::ConnectDownstreamRequest& request,
                                        const std::string& coordinator,
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
  options.coordinator = coordinator;
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
  if (grpc::Status s = Admit(context, /*take_lease=*/true); !s.ok()) return s;
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
  if (grpc::Status s = Admit(context, /*take_lease=*/false); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  response->set_state(state_);
  response->set_message(state_message_);
  response->set_uptime_ms(static_cast<uint64_t>(MicrosSince(started_) / 1000));
  return grpc::Status::OK;
}

grpc::Status WorkerService::Stats(grpc::ServerContext* context,
                                  const v1::StatsRequest* request,
                                  v1::StatsResponse* response) {
  if (grpc::Status s = Admit(context, /*take_lease=*/false); !s.ok()) return s;
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

grpc::Status WorkerService::Release(grpc::ServerContext* context,
                                    const v1::ReleaseRequest* request,
                                    v1::ReleaseResponse* response) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  if (lease_.Release(CoordinatorIdOf(context))) {
    response->set_released(true);
    DropSequences("its coordinator released it");
  }
  return grpc::Status::OK;
}

grpc::Status WorkerService::Results(
    grpc::ServerContext* context, const v1::ResultsRequest* request,
    grpc::ServerWriter<v1::StepResult>* writer) {
  if (grpc::Status s = CheckPeerToken(context, options_.token); !s.ok()) return s;
  GrpcResultSink sink(context, writer, CoordinatorIdOf(context));
  return ToGrpc(ServeResults(sink));
}

absl::Status WorkerService::ServeResults(ResultSink& sink) {
  std::string coordinator = sink.coordinator();
  if (!IsCoordinatorId(coordinator)) coordinator.clear();
  LP_RETURN_IF_ERROR(TakeLease(coordinator));
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != nullptr && !stage_->is_last()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stage ", stage_->stage_index(), " holds layers ", LayerRange(*stage_),
          ", not the last ones: Results come from the last stage"));
    }
  }
  return results_.Serve(sink);
}

}  // namespace layerpool
