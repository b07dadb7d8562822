#include "coordinator/cluster.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "coordinator/chain.h"
#include "coordinator/cluster_impl.h"
#include "coordinator/planner.h"
#include "coordinator/stream_state.h"
#include "coordinator/worker_link.h"
#include "grpcpp/grpcpp.h"
#include "model/gguf/gguf.h"
#include "model/hparams/support.h"
#include "model/layout/stage_layout.h"
#include "proto/convert.h"
#include "proto/version.h"
#include "transport/hidden_wire.h"

namespace layerpool {

// ---------------------------------------------------------------- Cluster

namespace {

// A seed the client left random is drawn here, so that a sequence replayed
// on a new chain draws the same numbers (kRandomSeed would draw anew).
uint64_t ResolveRandomSeed(uint64_t seed) {
  if (seed != kRandomSeed) return seed;
  static std::mutex mu;
  static std::mt19937 rng{std::random_device{}()};
  std::lock_guard lock(mu);
  uint32_t drawn;
  do drawn = static_cast<uint32_t>(rng()); while (drawn == kRandomSeed);
  return drawn;
}

}  // namespace

std::string ModelIdFromPath(const std::string& path) {
  std::string id = path.substr(path.find_last_of('/') + 1);
  if (absl::EndsWithIgnoreCase(id, ".gguf")) id.resize(id.size() - 5);
  return id;
}

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(ClusterOptions options) {
  if (options.workers.empty()) {
    return absl::InvalidArgumentError("no workers: give at least one host:port");
  }
  if (options.max_sequences < 1 || options.batch < 1 || options.max_queue < 0) {
    return absl::InvalidArgumentError(
        "max_sequences and batch must be at least 1, max_queue not negative");
  }
  std::unique_ptr<Cluster> c(new Cluster());
  c->impl_ = std::make_unique<Impl>();
  Impl& impl = *c->impl_;
  impl.owner = c.get();
  impl.options = options;

  // The model, from its header only.
  LP_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::Open(options.model_path,
                                                      {.map_data = false}));
  LP_ASSIGN_OR_RETURN(c->hp_, ReadHParams(*file), options.model_path);
  LP_RETURN_IF_ERROR(ValidateForInference(c->hp_), options.model_path);
  LP_RETURN_IF_ERROR(CheckSupported(*file, c->hp_), options.model_path);
  LP_ASSIGN_OR_RETURN(c->tokenizer_, Tokenizer::FromGguf(*file), options.model_path);
  c->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : DefaultContext(c->hp_);

  impl.file = std::move(file);
  const gguf::GgufFile& header = *impl.file;
  ChainConfig& cc = impl.chain_config;
  cc.model_path = options.model_path;
  cc.file = impl.file.get();
  cc.n_layer = c->hp_.n_layer;
  cc.n_ctx = c->n_ctx_;
  cc.max_sequences = options.max_sequences;
  cc.threads = options.threads;
  cc.kv_type = options.kv_type;
  cc.rope_freq_base = options.rope_freq_base;
  cc.rope_freq_scale = options.rope_freq_scale;
  cc.ntk_alpha = options.ntk_alpha;
  cc.activation_type = options.activation_type;
  cc.stage_links = options.stage_links;
  cc.token = options.token;
  cc.tls = options.tls;
  cc.log = options.log;

  // Greet every worker.
  std::vector<WorkerMemory> memory;
  std::vector<std::shared_ptr<WorkerLink>> links;
  for (const std::string& address : options.workers) {
    LP_ASSIGN_OR_RETURN(auto link, WorkerLink::Connect(address, options.token, options.tls));
    impl.Log(absl::StrFormat("worker %s: %s, %s free", address,
                             link->hello().device(),
                             HumanBytes(link->hello().free_memory_bytes())));
    memory.push_back({address, link->hello().free_memory_bytes()});
    links.push_back(std::move(link));
  }

  // Plan.
  PlanRequest request;
  LP_ASSIGN_OR_RETURN(request.costs,
                      ModelCostsFromGguf(header, c->hp_, BytesPerElement(options.kv_type)));
  request.workers = memory;
  request.context_tokens = c->n_ctx_;
  request.max_sequences = options.max_sequences;
  request.scratch_bytes_per_stage = StageScratchBytes(c->hp_, options.batch);
  request.layer_counts = options.layer_counts;
  request.ratios = options.ratios;
  LP_ASSIGN_OR_RETURN(std::vector<StagePlan> plan, PlanSplit(request));
  cc.replan = request;  // a later plan is by memory, over whoever is left
  cc.replan.layer_counts.clear();
  cc.replan.ratios.clear();
  impl.Log(DescribePlan(plan, request));
  // Workers the plan leaves out (a 0 ratio) take no part.
  std::vector<std::shared_ptr<WorkerLink>> stages;
  for (const StagePlan& s : plan) {
    stages.push_back(links[s.worker]);
    impl.home.push_back(options.workers[s.worker]);
  }

  // From the first LoadStage on, these workers are leased to this
  // coordinator: a start that fails gives them back at once.
  absl::Cleanup release = [&links] {
    for (const std::shared_ptr<WorkerLink>& link : links) link->Release(absl::Seconds(1));
  };

  LP_RETURN_IF_ERROR(LoadPlannedStages(cc, plan, stages));
  LP_ASSIGN_OR_RETURN(impl.chain, Chain::Connect(cc, impl.next_generation++, std::move(stages),
                                                 std::move(plan), impl.callbacks()));
  std::move(release).Cancel();
  const ClusterOptions& o = impl.options;

  // The description DescribeCluster serves.
  v1::ModelDescription& m = impl.model;
  m.set_path(o.model_path);
  m.set_id(ModelIdFromPath(o.model_path));
  m.set_architecture(c->hp_.architecture);
  m.set_n_layer(static_cast<uint32_t>(c->hp_.n_layer));
  m.set_file_type(FileTypeName(c->hp_.file_type));
  LP_ASSIGN_OR_RETURN(std::string whole,
                      StageFingerprint(header, 0, c->hp_.n_layer, c->hp_.n_layer));
  m.set_content_hash(whole);
  m.set_size_bytes(header.file_size());
  m.set_n_ctx(static_cast<uint32_t>(c->n_ctx_));
  m.set_n_vocab(static_cast<uint32_t>(c->hp_.n_vocab));
  m.set_hidden_size(static_cast<uint32_t>(c->hp_.n_embd));

  impl.loop_thread = std::thread([&impl] { impl.Loop(); });
  impl.health_thread = std::thread([&impl] { impl.WatchHealth(); });
  impl.recovery_thread = std::thread([&impl] { impl.Recover(); });
  return c;
}

Cluster::~Cluster() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  for (std::thread* t : {&impl_->loop_thread, &impl_->health_thread, &impl_->recovery_thread}) {
    if (t->joinable()) t->join();
  }
  // Chains' readers post events: close them while the Impl still stands,
  // outside the lock.
  std::shared_ptr<Chain> chain = std::exchange(impl_->chain, nullptr);
  if (chain != nullptr) chain->ReleaseWorkers(absl::Seconds(1));
  chain.reset();
  std::deque<ClusterEvent> left;
  {
    std::lock_guard lock(impl_->mu);
    left.swap(impl_->events);
  }
  left.clear();
}

int64_t Cluster::activation_bytes_per_token() const {
  return static_cast<int64_t>(WireRowBytes(impl_->options.activation_type, hp_.n_embd));
}

int Cluster::n_stages() const { return impl_->current()->size(); }

double Cluster::first_hop_us() const { return impl_->current()->first_hop_us(); }

std::vector<StepCurve> Cluster::step_curves() const {
  return impl_->current()->step_curves();
}

absl::StatusOr<std::unique_ptr<Cluster::Stream>> Cluster::Generate(
    GenerateRequest request) {
  if (request.prompt.empty()) {
    return absl::InvalidArgumentError("prompt: empty (give text or at least one token id)");
  }
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    if (request.prompt[i] < 0 || request.prompt[i] >= hp_.n_vocab) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "prompt_tokens[%d]: %d is not a token id of this model (vocabulary of %d)",
          i, request.prompt[i], hp_.n_vocab));
    }
  }
  LP_RETURN_IF_ERROR(ValidateSamplingParams(request.sampling), "sampling");
  request.sampling.seed = ResolveRandomSeed(request.sampling.seed);
  if (request.embed != v1::POOLING_TYPE_UNSPECIFIED) request.n_predict = 1;
  {
    // While a chain is rebuilt within the replay budget, requests wait with
    // the others; once it ran out, they are refused.
    std::lock_guard lock(impl_->mu);
    if (impl_->refusing) return impl_->down;
  }
  const uint64_t seq_id = impl_->next_seq_id.fetch_add(1);
  auto state = std::make_shared<Stream::State>();
  auto accepted = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> verdict = accepted->get_future();
  impl_->Post(SubmitEvent{seq_id, std::move(request), state, accepted});
  LP_RETURN_IF_ERROR(verdict.get());
  Impl* impl = impl_.get();
  return std::unique_ptr<Stream>(
      new Stream(state, [impl, seq_id] { impl->Post(CancelEvent{seq_id}); }));
}

v1::ClusterDescription Cluster::Describe() const {
  v1::ClusterDescription d;
  *d.mutable_model() = impl_->model;
  const std::shared_ptr<Chain> chain = impl_->current();
  for (int i = 0; i < chain->size(); ++i) {
    const WorkerLink& link = chain->stage(i);
    v1::StageDescription* s = d.add_stages();
    s->set_index(static_cast<uint32_t>(i));
    s->set_worker_address(link.address());
    s->mutable_layers()->set_first(static_cast<uint32_t>(chain->plan(i).first_layer));
    s->mutable_layers()->set_last(static_cast<uint32_t>(chain->plan(i).end_layer - 1));
    s->set_device(link.hello().device());
    s->set_memory_used_bytes(link.loaded().bytes_used());
    s->set_memory_free_bytes(link.loaded().free_memory_bytes());
    s->set_weight_bytes(link.loaded().weight_bytes());
    s->set_kv_cache_bytes(link.loaded().kv_cache_bytes());
    s->set_state(link.healthy() ? v1::STAGE_STATE_READY : v1::STAGE_STATE_DOWN);
    s->set_link_to_next(link.link_to_next());
  }
  *d.mutable_protocol() = CurrentProtocolVersion();
  d.set_build(kBuildName);
  return d;
}

absl::StatusOr<v1::StatsResponse> Cluster::StageStats(int i) const {
  const std::shared_ptr<Chain> chain = impl_->current();
  if (i < 0 || i >= chain->size()) return absl::OutOfRangeError(absl::StrCat("no stage ", i));
  return chain->stage(i).Stats();
}

int Cluster::queued_requests() const { return impl_->queued.load(); }
int Cluster::active_sequences() const { return impl_->active.load(); }

const std::string& Cluster::model_id() const { return impl_->model.id(); }

absl::Status Cluster::health() const {
  std::lock_guard lock(impl_->mu);
  return impl_->down;
}

absl::StatusOr<std::vector<v1::StatsResponse>> Cluster::StageStats() const {
  const std::shared_ptr<Chain> chain = impl_->current();
  std::vector<v1::StatsResponse> out;
  for (int i = 0; i < chain->size(); ++i) {
    LP_ASSIGN_OR_RETURN(v1::StatsResponse s, chain->stage(i).Stats(), chain->StageName(i));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace layerpool
