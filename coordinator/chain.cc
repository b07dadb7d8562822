#include "coordinator/chain.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "model/layout/stage_layout.h"
#include "proto/convert.h"
#include "proto/peer_token.h"
#include "proto/version.h"

namespace layerpool {
namespace {

v1::KvCacheType KvTypeToProto(GgmlType type) {
  switch (type) {
    case GgmlType::kF32: return v1::KV_CACHE_TYPE_F32;
    case GgmlType::kQ8_0: return v1::KV_CACHE_TYPE_Q8_0;
    default: return v1::KV_CACHE_TYPE_F16;
  }
}

// Step sizes a stage times when it loads, for the choice of micro-batches:
// up to one row per sequence, and no more than a worker times (64).
constexpr int kMaxMeasuredStepRows = 64;

void Log(const ChainConfig& config, const std::string& line) {
  if (config.log) config.log(line);
}

}  // namespace

std::string StageName(int index, const WorkerLink& link) {
  return absl::StrFormat("stage %d (worker %s)", index, link.address());
}

absl::Status LoadPlannedStage(const ChainConfig& config, const StagePlan& s, int index,
                              WorkerLink& link) {
  LP_ASSIGN_OR_RETURN(std::string fingerprint,
                      StageFingerprint(*config.file, s.first_layer, s.end_layer, config.n_layer));
  v1::LoadStageRequest load;
  load.set_model_path(config.model_path);
  load.mutable_layers()->set_first(static_cast<uint32_t>(s.first_layer));
  load.mutable_layers()->set_last(static_cast<uint32_t>(s.end_layer - 1));
  load.set_stage_index(static_cast<uint32_t>(index));
  load.set_expected_content_hash(fingerprint);
  load.set_kv_type(KvTypeToProto(config.kv_type));
  load.set_n_ctx(static_cast<uint32_t>(config.n_ctx));
  load.set_max_sequences(static_cast<uint32_t>(config.max_sequences));
  load.set_n_threads(static_cast<uint32_t>(std::max(config.threads, 0)));
  load.set_rope_freq_base(config.rope_freq_base);
  load.set_rope_freq_scale(config.rope_freq_scale);
  load.set_ntk_alpha(config.ntk_alpha);
  load.set_measure_step_rows(static_cast<uint32_t>(
      std::clamp(config.max_sequences, 1, kMaxMeasuredStepRows)));
  return link.LoadStage(load);
}

absl::Status LoadPlannedStages(const ChainConfig& config, const std::vector<StagePlan>& plan,
                               const std::vector<std::shared_ptr<WorkerLink>>& stages) {
  std::vector<absl::Status> loaded(plan.size());
  std::vector<std::thread> loaders;
  for (size_t i = 0; i < plan.size(); ++i) {
    Log(config, absl::StrFormat("loading %s: layers [%d, %d]", StageName(i, *stages[i]),
                                plan[i].first_layer, plan[i].end_layer - 1));
    loaders.emplace_back([&, i] {
      loaded[i] = LoadPlannedStage(config, plan[i], static_cast<int>(i), *stages[i]);
    });
  }
  for (std::thread& t : loaders) t.join();
  for (size_t i = 0; i < loaded.size(); ++i) {
    LP_RETURN_IF_ERROR(loaded[i], StageName(i, *stages[i]));
    const v1::LoadStageResponse& r = stages[i]->loaded();
    Log(config, absl::StrFormat("%s ready: weights %s, KV cache %s, %.0f ms%s",
                                StageName(i, *stages[i]), HumanBytes(r.weight_bytes()),
                                HumanBytes(r.kv_cache_bytes()), r.load_ms(),
                                r.reused() ? " (kept from before)" : ""));
  }
  return absl::OkStatus();
}

std::vector<StepCurve> Chain::step_curves() const {
  std::vector<StepCurve> curves;
  for (const auto& link : stages_) {
    StepCurve& curve = curves.emplace_back();
    for (const v1::StepCost& c : link->loaded().step_costs()) {
      // Rows increasing and times finite, or the curve ends there.
      if (c.rows() == 0 || !(c.ms() >= 0 && c.ms() < 1e9)) break;
      if (!curve.empty() && static_cast<int>(c.rows()) <= curve.back().rows) break;
      curve.push_back({static_cast<int>(c.rows()), c.ms()});
    }
  }
  return curves;
}

absl::StatusOr<std::unique_ptr<Chain>> Chain::Connect(
    const ChainConfig& config, uint64_t generation,
    std::vector<std::shared_ptr<WorkerLink>> stages, std::vector<StagePlan> plan,
    Callbacks callbacks) {
  std::unique_ptr<Chain> chain(new Chain());
  chain->generation_ = generation;
  chain->stages_ = std::move(stages);
  chain->plan_ = std::move(plan);
  chain->callbacks_ = std::move(callbacks);
  const int n = chain->size();

  // Last first, so that each one's next is listening.
  for (int i = n; i-- > 0;) {
    v1::ConnectDownstreamRequest connect;
    if (i + 1 < n) {
      connect.set_next_address(chain->stage(i + 1).address());
      connect.set_transport(config.stage_links);
      connect.set_activation_type(config.activation_type);
    }
    LP_RETURN_IF_ERROR(chain->stage(i).ConnectDownstream(connect), chain->StageName(i));
    if (i + 1 < n) {
      Log(config, absl::StrCat(chain->StageName(i), " sends to ", chain->StageName(i + 1),
                               " over ", chain->stage(i).link_to_next()));
    }
  }
  Chain* c = chain.get();
  c->results_ = c->stages_.back()->OpenResults(config.stage_links == v1::TRANSPORT_AUTO);
  LP_ASSIGN_OR_RETURN(c->to_first_,
                      c->stages_.front()->OpenActivations(
                          [c](const absl::Status& st) {
                            if (!c->closing_) c->callbacks_.on_broken(c->generation_, st);
                          },
                          config.stage_links == v1::TRANSPORT_AUTO));
  Log(config, absl::StrCat("sends tokens to ", c->StageName(0), " over ", c->to_first_->kind(),
                           ", takes results from ", c->StageName(n - 1), " over ",
                           c->results_->kind()));
  c->results_thread_ = std::thread([c] { c->ReadResults(); });
  return chain;
}

absl::StatusOr<std::unique_ptr<Chain>> Chain::Rebuild(const ChainConfig& config,
                                                      uint64_t generation, const Chain& failed,
                                                      const std::vector<std::string>& home,
                                                      const std::vector<std::string>& spares,
                                                      Callbacks callbacks) {
  // Each stage's address, as the new chain takes shape.
  std::vector<std::string> in_use;
  for (int i = 0; i < failed.size(); ++i) in_use.push_back(failed.stage(i).address());
  std::vector<std::shared_ptr<WorkerLink>> stages;
  std::vector<StagePlan> plan;
  for (int i = 0; i < failed.size(); ++i) {
    std::vector<std::string> tried = {failed.stage(i).address()};
    if (i < static_cast<int>(home.size())) tried.push_back(home[i]);
    tried.insert(tried.end(), spares.begin(), spares.end());
    std::vector<std::string> candidates;  // in order, once each, not another stage's
    for (const std::string& a : tried) {
      const bool taken_elsewhere = std::any_of(in_use.begin(), in_use.end(), [&](const auto& u) {
        return u == a && &u != &in_use[i];
      });
      if (!taken_elsewhere && std::find(candidates.begin(), candidates.end(), a) == candidates.end()) {
        candidates.push_back(a);
      }
    }
    std::shared_ptr<WorkerLink> taken;
    absl::Status why;
    for (const std::string& address : candidates) {
      // A fresh link even to the same address: a restarted worker has a new
      // Unix socket and no stage.
      // Without waiting for a refused connection: a dead worker must not
      // hold up its spare.
      absl::StatusOr<std::unique_ptr<WorkerLink>> link = WorkerLink::Connect(
          address, config.token, config.tls, config.connect_timeout, /*wait_for_ready=*/false);
      absl::Status st = link.ok()
                            ? LoadPlannedStage(config, failed.plan(i), i, **link)
                            : link.status();
      if (!st.ok()) {
        if (why.ok()) why = st;
        continue;
      }
      taken = *std::move(link);
      break;
    }
    if (taken == nullptr) {
      return absl::UnavailableError(absl::StrCat(
          failed.StageName(i), " is down and no worker took its place",
          spares.empty() ? " (no --spares)" : "", ": ", why.message()));
    }
    if (taken->address() != failed.stage(i).address()) {
      in_use[i] = taken->address();
      Log(config, absl::StrCat("worker ", taken->address(), " takes ", failed.StageName(i)));
    }
    if (!taken->loaded().reused()) {
      Log(config, absl::StrFormat("loaded %s: layers [%d, %d] in %.0f ms",
                                  layerpool::StageName(i, *taken), failed.plan(i).first_layer,
                                  failed.plan(i).end_layer - 1, taken->loaded().load_ms()));
    }
    stages.push_back(std::move(taken));
    plan.push_back(failed.plan(i));
  }
  return Connect(config, generation, std::move(stages), std::move(plan), std::move(callbacks));
}

absl::StatusOr<std::unique_ptr<Chain>> Chain::Replan(const ChainConfig& config,
                                                     uint64_t generation, const Chain& failed,
                                                     const std::vector<std::string>& candidates,
                                                     Callbacks callbacks) {
  PlanRequest request = config.replan;
  request.workers.clear();
  std::vector<std::shared_ptr<WorkerLink>> links;
  for (const std::string& address : candidates) {
    absl::StatusOr<std::unique_ptr<WorkerLink>> link = WorkerLink::Connect(
        address, config.token, config.tls, config.connect_timeout, /*wait_for_ready=*/false);
    if (!link.ok()) continue;
    uint64_t free = (*link)->hello().free_memory_bytes();
    for (int i = 0; i < failed.size(); ++i) {
      if (failed.stage(i).address() == address) free += failed.stage(i).loaded().bytes_used();
    }
    request.workers.push_back({address, free});
    links.push_back(*std::move(link));
  }
  if (links.empty()) {
    return absl::UnavailableError("no worker answers to take the model's layers");
  }
  LP_ASSIGN_OR_RETURN(std::vector<StagePlan> plan, PlanSplit(request),
                      "planning the split again over the ", links.size(), " workers that answer");
  Log(config, absl::StrCat("planning the split again over the workers that answer:\n",
                           DescribePlan(plan, request)));
  std::vector<std::shared_ptr<WorkerLink>> stages;
  for (const StagePlan& s : plan) stages.push_back(links[s.worker]);
  LP_RETURN_IF_ERROR(LoadPlannedStages(config, plan, stages));
  return Connect(config, generation, std::move(stages), std::move(plan), std::move(callbacks));
}

void Chain::ReleaseWorkers(absl::Duration timeout) {
  closing_ = true;
  std::vector<std::thread> calls;
  for (const std::shared_ptr<WorkerLink>& link : stages_) {
    calls.emplace_back([link, timeout] { link->Release(timeout); });
  }
  for (std::thread& t : calls) t.join();
}

Chain::~Chain() {
  closing_ = true;
  if (results_) results_->Cancel();
  if (to_first_) to_first_->Close();
  if (results_thread_.joinable()) results_thread_.join();
}

void Chain::ReadResults() {
  v1::StepResult r;
  while (results_->Read(&r)) callbacks_.on_result(generation_, std::move(r));
  const absl::Status st = results_->Finish();
  if (closing_) return;
  callbacks_.on_broken(generation_,
                       absl::UnavailableError(absl::StrCat(
                           "results stream of ", StageName(size() - 1), ": ",
                           st.ok() ? absl::string_view("ended") : st.message())));
}

absl::Status Chain::FindDownStage(absl::Duration timeout) const {
  absl::Status symptom;
  for (int i = 0; i < size(); ++i) {
    absl::Status health = stages_[i]->CheckHealth(timeout);
    if (health.ok()) continue;
    absl::Status named = absl::UnavailableError(
        absl::StrCat(StageName(i), " is down: ", health.message()));
    if (health.code() == absl::StatusCode::kUnavailable) return named;
    if (symptom.ok()) symptom = named;
  }
  return symptom;
}

}  // namespace layerpool
