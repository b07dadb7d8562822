#include "coordinator/cluster.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "coordinator/planner.h"
#include "coordinator/stream_state.h"
#include "coordinator/worker_link.h"
#include "grpcpp/grpcpp.h"
#include "model/gguf/gguf.h"
#include "model/hparams/support.h"
#include "model/layout/stage_layout.h"
#include "proto/convert.h"
#include "proto/peer_token.h"
#include "proto/version.h"
#include "transport/hidden_wire.h"

namespace layerpool {

// ---------------------------------------------------------------- Impl

namespace {

struct SubmitEvent {
  uint64_t seq_id;
  GenerateRequest request;
  std::shared_ptr<Cluster::Stream::State> stream;
  std::shared_ptr<std::promise<absl::Status>> accepted;
};
struct CancelEvent {
  uint64_t seq_id;
};
struct ResultEvent {
  v1::StepResult result;
};
struct FailureEvent {
  absl::Status status;
};
using Event = std::variant<SubmitEvent, CancelEvent, ResultEvent, FailureEvent>;

v1::KvCacheType KvTypeToProto(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return v1::KV_CACHE_TYPE_F32;
    case GgmlType::kQ8_0: return v1::KV_CACHE_TYPE_Q8_0;
    default: return v1::KV_CACHE_TYPE_F16;
  }
}

}  // namespace

struct Cluster::Impl {
  ClusterOptions options;
  const Cluster* owner = nullptr;
  std::vector<std::unique_ptr<WorkerLink>> stages;
  std::vector<StagePlan> plan;
  v1::ModelDescription model;

  // The data plane: token ids into stage 0, sampled tokens out of the last.
  std::unique_ptr<ActivationSender> to_first;
  grpc::ClientContext results_context;
  std::unique_ptr<grpc::ClientReader<v1::StepResult>> results;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  bool stopping = false;
  absl::Status down;  // not OK once a stage failed

  std::thread loop_thread, results_thread, health_thread;
  std::atomic<uint64_t> next_seq_id{1};
  // The scheduler's counts, published by the loop thread after each event.
  std::atomic<int> queued{0}, active{0};

  // Owned by the loop thread.
  struct Live {
    GenerateRequest request;
    std::shared_ptr<Cluster::Stream::State> stream;
  };
  std::map<uint64_t, Live> live;
  std::set<uint64_t> embedding;  // the live embedding requests

  void Post(Event e) {
    std::lock_guard lock(mu);
    events.push_back(std::move(e));
    cv.notify_all();
  }

  void Log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  std::string StageName(size_t i) const {
    return absl::StrFormat("stage %d (worker %s)", i, stages[i]->address());
  }

  // Which stage is down, if any: one that does not answer is the cause;
  // one that answers but is not ready (its next stage vanished) only a
  // symptom, blamed when no stage is silent. OK when all are well.
  absl::Status FindDownStage(absl::Duration timeout) {
    absl::Status symptom;
    for (size_t i = 0; i < stages.size(); ++i) {
      absl::Status health = stages[i]->CheckHealth(timeout);
      if (health.ok()) continue;
      absl::Status named = absl::UnavailableError(
          absl::StrCat(StageName(i), " is down: ", health.message()));
      if (health.code() == absl::StatusCode::kUnavailable) return named;
      if (symptom.ok()) symptom = named;
    }
    return symptom;
  }

  // Turns a stream error into the message a client sees: which stage is
  // down. A broken stream says little about where the chain broke, so ask
  // every stage directly.
  absl::Status Diagnose(absl::string_view what, const absl::Status& cause) {
    absl::Status down_stage = FindDownStage(absl::Seconds(1));
    if (!down_stage.ok()) return down_stage;
    return absl::UnavailableError(absl::StrCat(what, ": ", cause.message()));
  }

  void Loop();
  void HandleOutput(Scheduler& scheduler, const v1::StepResult* result);
  absl::Status Send(const MicroBatch& batch);
  void FreeOnWorkers(const std::vector<uint64_t>& ids);
  void ReadResults();
  void WatchHealth();
};

absl::Status Cluster::Impl::Send(const MicroBatch& batch) {
  v1::ActivationChunk chunk;
  chunk.set_micro_batch_id(batch.id);
  chunk.set_chunk_index(0);
  chunk.set_chunk_count(1);
  auto* ids = chunk.mutable_token_ids()->mutable_ids();
  for (const BatchRow& row : batch.rows) {
    chunk.add_seq_ids(row.seq_id);
    chunk.add_positions(row.position);
    ids->Add(row.token);
  }
  // Embedding requests are rare: look at rows only when one is live.
  for (uint64_t id : embedding) {
    for (const BatchRow& row : batch.rows) {
      if (row.seq_id == id) {
        chunk.add_embed_seq_ids(id);
        break;
      }
    }
  }
  for (const BatchSample& s : batch.samples) {
    v1::SampleSpec* spec = chunk.add_samples();
    spec->set_row(s.row);
    const Live& l = live.at(s.seq_id);
    spec->set_embed(l.request.embed);
    *spec->mutable_sampling() = SamplingToProto(l.request.sampling);
    if (s.first) {
      spec->mutable_recent_tokens()->Add(l.request.prompt.begin(),
                                         l.request.prompt.end());
    }
  }
  return to_first->Send(std::move(chunk));
}

void Cluster::Impl::FreeOnWorkers(const std::vector<uint64_t>& ids) {
  if (ids.empty()) return;
  // Every stage frees in parallel, and the loop waits: a micro-batch that
  // admits new sequences into the freed slots must not reach a stage before
  // its free does (the free RPC and the activation stream are not ordered).
  // A stage that does not answer within the health timeout is the health
  // check's business; the wait ends then.
  std::vector<std::shared_future<void>> done;
  for (auto& stage : stages) done.push_back(stage->FreeSequencesAsync(ids));
  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoNanoseconds(options.health_timeout);
  for (auto& d : done) d.wait_until(deadline);
}

void Cluster::Impl::HandleOutput(Scheduler& scheduler, const v1::StepResult* result) {
  SchedulerOutput out = scheduler.TakeOutput();
  for (const TokenEvent& t : out.tokens) {
    auto it = live.find(t.seq_id);
    if (it == live.end()) continue;
    GenerateEvent e;
    e.token = t.token;
    if (result != nullptr) {
      for (const v1::SampledToken& s : result->tokens()) {
        if (s.seq_id() != t.seq_id) continue;
        if (s.has_logprob()) e.logprob = s.logprob();
        e.embedding.assign(s.embedding().begin(), s.embedding().end());
        for (const v1::TokenLogprob& p : s.top_logprobs()) {
          e.top_logprobs.emplace_back(p.token(), p.logprob());
        }
      }
    }
    it->second.stream->Push(std::move(e));
  }
  for (const FinishEvent& f : out.finished) {
    auto it = live.find(f.seq_id);
    if (it == live.end()) continue;
    GenerateEvent e;
    e.done = true;
    e.reason = f.reason;
    e.status = f.status;
    it->second.stream->Push(std::move(e));
  }
  for (uint64_t id : out.to_free) {
    live.erase(id);
    embedding.erase(id);
  }
  FreeOnWorkers(out.to_free);
}

void Cluster::Impl::Loop() {
  SchedulerOptions so;
  so.n_stages = static_cast<int>(stages.size());
  so.n_ctx = owner->n_ctx();
  so.max_sequences = options.max_sequences;
  so.max_batch_tokens = options.batch;
  so.max_queue = options.max_queue;
  for (int32_t id : {owner->tokenizer().eos_id(), owner->tokenizer().eot_id()}) {
    if (id >= 0) so.stop_tokens.push_back(id);
  }
  Scheduler scheduler(so);

  std::unique_lock lock(mu);
  while (true) {
    cv.wait(lock, [&] { return stopping || !events.empty(); });
    if (stopping) break;
    Event event = std::move(events.front());
    events.pop_front();
    lock.unlock();

    const v1::StepResult* result = nullptr;
    absl::Status failure;
    if (auto* s = std::get_if<SubmitEvent>(&event)) {
      absl::Status st = scheduler.Submit(s->seq_id, s->request.prompt,
                                         s->request.n_predict);
      if (st.ok()) {
        if (s->request.embed != v1::POOLING_TYPE_UNSPECIFIED) embedding.insert(s->seq_id);
        live[s->seq_id] = Live{std::move(s->request), s->stream};
      }
      s->accepted->set_value(st);
    } else if (auto* c = std::get_if<CancelEvent>(&event)) {
      scheduler.Cancel(c->seq_id);
    } else if (auto* r = std::get_if<ResultEvent>(&event)) {
      std::vector<TokenEvent> sampled;
      for (const v1::SampledToken& t : r->result.tokens()) {
        sampled.push_back({t.seq_id(), t.token()});
      }
      absl::Status st = scheduler.OnResult(r->result.micro_batch_id(), sampled);
      if (!st.ok()) {
        failure = absl::InternalError(absl::StrCat(
            StageName(stages.size() - 1), " returned a result the coordinator "
            "did not expect: ", st.message()));
      }
      result = &r->result;
    } else if (auto* f = std::get_if<FailureEvent>(&event)) {
      failure = f->status;
    }

    // Frees (finished, cancelled) reach every stage before a micro-batch
    // that may reuse their slots is sent.
    HandleOutput(scheduler, result);
    result = nullptr;
    if (failure.ok()) {
      for (const MicroBatch& batch : scheduler.NextBatches()) {
        absl::Status st = Send(batch);
        if (!st.ok()) {
          failure = Diagnose(absl::StrCat("sending to ", StageName(0)), st);
          break;
        }
      }
    }
    if (!failure.ok()) {
      bool first_failure = false;
      {
        std::lock_guard guard(mu);
        first_failure = down.ok();
        if (first_failure) down = failure;
      }
      if (first_failure) Log(absl::StrCat("pipeline down: ", failure.message()));
      scheduler.Fail(failure);
    }
    HandleOutput(scheduler, result);
    queued.store(scheduler.queued());
    active.store(scheduler.active());
    lock.lock();
  }
  // Shutting down: answer submissions no one will take, end every request.
  for (Event& e : events) {
    if (auto* s = std::get_if<SubmitEvent>(&e)) {
      s->accepted->set_value(absl::UnavailableError("the coordinator is shutting down"));
    }
  }
  events.clear();
  lock.unlock();
  scheduler.Fail(absl::UnavailableError("the coordinator is shutting down"));
  HandleOutput(scheduler, nullptr);
}

void Cluster::Impl::ReadResults() {
  v1::StepResult r;
  while (results->Read(&r)) Post(ResultEvent{std::move(r)});
  const absl::Status st = FromGrpc(results->Finish());
  {
    std::lock_guard lock(mu);
    if (stopping) return;
  }
  Post(FailureEvent{Diagnose(
      absl::StrCat("results stream of ", StageName(stages.size() - 1)),
      st.ok() ? absl::UnavailableError("ended") : st)});
}

void Cluster::Impl::WatchHealth() {
  std::unique_lock lock(mu);
  while (!stopping) {
    if (cv.wait_for(lock, absl::ToChronoNanoseconds(options.health_interval),
                    [&] { return stopping; })) {
      break;
    }
    const bool already_down = !down.ok();
    lock.unlock();
    // Polling goes on after a failure, to keep Describe's states current.
    absl::Status st = FindDownStage(options.health_timeout);
    if (!st.ok() && !already_down) Post(FailureEvent{st});
    lock.lock();
  }
}

// ---------------------------------------------------------------- Cluster

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

  // Greet every worker.
  std::vector<WorkerMemory> memory;
  for (const std::string& address : options.workers) {
    LP_ASSIGN_OR_RETURN(auto link, WorkerLink::Connect(address, options.token, options.tls));
    impl.Log(absl::StrFormat("worker %s: %s, %s free", address,
                             link->hello().device(),
                             HumanBytes(link->hello().free_memory_bytes())));
    memory.push_back({address, link->hello().free_memory_bytes()});
    impl.stages.push_back(std::move(link));
  }

  // Plan.
  PlanRequest request;
  LP_ASSIGN_OR_RETURN(request.costs,
                      ModelCostsFromGguf(*file, c->hp_, BytesPerElement(options.kv_type)));
  request.workers = memory;
  request.context_tokens = c->n_ctx_;
  request.max_sequences = options.max_sequences;
  request.scratch_bytes_per_stage = StageScratchBytes(c->hp_, options.batch);
  request.layer_counts = options.layer_counts;
  request.ratios = options.ratios;
  LP_ASSIGN_OR_RETURN(impl.plan, PlanSplit(request));
  impl.Log(DescribePlan(impl.plan, request));
  // Workers the plan leaves out (a 0 ratio) take no part.
  std::vector<std::unique_ptr<WorkerLink>> used;
  for (const StagePlan& s : impl.plan) used.push_back(std::move(impl.stages[s.worker]));
  impl.stages = std::move(used);
  const ClusterOptions& o = impl.options;

  // Load every stage at once: each reads its own disk.
  std::vector<absl::Status> loaded(impl.plan.size());
  std::vector<std::thread> loaders;
  for (size_t i = 0; i < impl.plan.size(); ++i) {
    const StagePlan& s = impl.plan[i];
    LP_ASSIGN_OR_RETURN(std::string fingerprint,
                        StageFingerprint(*file, s.first_layer, s.end_layer, c->hp_.n_layer));
    v1::LoadStageRequest load;
    load.set_model_path(o.model_path);
    load.mutable_layers()->set_first(static_cast<uint32_t>(s.first_layer));
    load.mutable_layers()->set_last(static_cast<uint32_t>(s.end_layer - 1));
    load.set_stage_index(static_cast<uint32_t>(i));
    load.set_expected_content_hash(fingerprint);
    load.set_kv_type(KvTypeToProto(o.kv_type));
    load.set_n_ctx(static_cast<uint32_t>(c->n_ctx_));
    load.set_max_sequences(static_cast<uint32_t>(o.max_sequences));
    load.set_n_threads(static_cast<uint32_t>(std::max(o.threads, 0)));
    load.set_rope_freq_base(o.rope_freq_base);
    load.set_rope_freq_scale(o.rope_freq_scale);
    load.set_ntk_alpha(o.ntk_alpha);
    impl.Log(absl::StrFormat("loading %s: layers [%d, %d]", impl.StageName(i),
                             s.first_layer, s.end_layer - 1));
    loaders.emplace_back([&impl, &loaded, i, load] {
      loaded[i] = impl.stages[i]->LoadStage(load);
    });
  }
  for (std::thread& t : loaders) t.join();
  for (size_t i = 0; i < loaded.size(); ++i) {
    LP_RETURN_IF_ERROR(loaded[i], impl.StageName(i));
    const v1::LoadStageResponse& r = impl.stages[i]->loaded();
    impl.Log(absl::StrFormat("%s ready: weights %s, KV cache %s, %.0f ms",
                             impl.StageName(i), HumanBytes(r.weight_bytes()),
                             HumanBytes(r.kv_cache_bytes()), r.load_ms()));
  }

  // Chain the stages, last first, so that each one's next is listening.
  for (size_t i = impl.stages.size(); i-- > 0;) {
    v1::ConnectDownstreamRequest connect;
    if (i + 1 < impl.stages.size()) {
      connect.set_next_address(impl.stages[i + 1]->address());
      connect.set_transport(o.stage_links);
      connect.set_activation_type(o.activation_type);
    }
    LP_RETURN_IF_ERROR(impl.stages[i]->ConnectDownstream(connect), impl.StageName(i));
    if (i + 1 < impl.stages.size()) {
      impl.Log(absl::StrCat(impl.StageName(i), " sends to ", impl.StageName(i + 1), " over ",
                            impl.stages[i]->link_to_next()));
    }
  }
  AddPeerToken(&impl.results_context, options.token);
  impl.results = impl.stages.back()->stub().Results(&impl.results_context,
                                                     v1::ResultsRequest());
  LP_ASSIGN_OR_RETURN(impl.to_first, impl.stages.front()->OpenActivations(
                                         [&impl](const absl::Status& st) {
                                           impl.Post(FailureEvent{impl.Diagnose(
                                               absl::StrCat("stream to ", impl.StageName(0)), st)});
                                         },
                                         o.stage_links == v1::TRANSPORT_AUTO));
  impl.Log(absl::StrCat("sends tokens to ", impl.StageName(0), " over ", impl.to_first->kind()));

  // The description DescribeCluster serves.
  v1::ModelDescription& m = impl.model;
  m.set_path(o.model_path);
  m.set_id(ModelIdFromPath(o.model_path));
  m.set_architecture(c->hp_.architecture);
  m.set_n_layer(static_cast<uint32_t>(c->hp_.n_layer));
  m.set_file_type(FileTypeName(c->hp_.file_type));
  LP_ASSIGN_OR_RETURN(std::string whole,
                      StageFingerprint(*file, 0, c->hp_.n_layer, c->hp_.n_layer));
  m.set_content_hash(whole);
  m.set_size_bytes(file->file_size());
  m.set_n_ctx(static_cast<uint32_t>(c->n_ctx_));
  m.set_n_vocab(static_cast<uint32_t>(c->hp_.n_vocab));
  m.set_hidden_size(static_cast<uint32_t>(c->hp_.n_embd));

  impl.loop_thread = std::thread([&impl] { impl.Loop(); });
  impl.results_thread = std::thread([&impl] { impl.ReadResults(); });
  impl.health_thread = std::thread([&impl] { impl.WatchHealth(); });
  return c;
}

Cluster::~Cluster() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  impl_->results_context.TryCancel();
  if (impl_->to_first) impl_->to_first->Close();
  for (std::thread* t : {&impl_->loop_thread, &impl_->results_thread, &impl_->health_thread}) {
    if (t->joinable()) t->join();
  }
}

int64_t Cluster::activation_bytes_per_token() const {
  return static_cast<int64_t>(WireRowBytes(impl_->options.activation_type, hp_.n_embd));
}

int Cluster::n_stages() const { return static_cast<int>(impl_->stages.size()); }

double Cluster::first_hop_us() const { return impl_->to_first->mean_hop_us(); }

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
  if (request.embed != v1::POOLING_TYPE_UNSPECIFIED) request.n_predict = 1;
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->down.ok()) return impl_->down;
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
  for (size_t i = 0; i < impl_->stages.size(); ++i) {
    const WorkerLink& link = *impl_->stages[i];
    v1::StageDescription* s = d.add_stages();
    s->set_index(static_cast<uint32_t>(i));
    s->set_worker_address(link.address());
    s->mutable_layers()->set_first(static_cast<uint32_t>(impl_->plan[i].first_layer));
    s->mutable_layers()->set_last(static_cast<uint32_t>(impl_->plan[i].end_layer - 1));
    s->set_device(link.hello().device());
    s->set_memory_used_bytes(link.loaded().bytes_used());
    s->set_memory_free_bytes(link.loaded().free_memory_bytes());
    s->set_state(link.healthy() ? v1::STAGE_STATE_READY : v1::STAGE_STATE_DOWN);
    s->set_link_to_next(link.link_to_next());
  }
  *d.mutable_protocol() = CurrentProtocolVersion();
  d.set_build(kBuildName);
  return d;
}

absl::StatusOr<v1::StatsResponse> Cluster::StageStats(int i) const {
  if (i < 0 || i >= n_stages()) return absl::OutOfRangeError(absl::StrCat("no stage ", i));
  return impl_->stages[i]->Stats();
}

int Cluster::queued_requests() const { return impl_->queued.load(); }
int Cluster::active_sequences() const { return impl_->active.load(); }

const std::string& Cluster::model_id() const { return impl_->model.id(); }

absl::Status Cluster::health() const {
  std::lock_guard lock(impl_->mu);
  return impl_->down;
}

absl::StatusOr<std::vector<v1::StatsResponse>> Cluster::StageStats() const {
  std::vector<v1::StatsResponse> out;
  for (size_t i = 0; i < impl_->stages.size(); ++i) {
    LP_ASSIGN_OR_RETURN(v1::StatsResponse s, impl_->stages[i]->Stats(),
                        impl_->StageName(i));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace layerpool
