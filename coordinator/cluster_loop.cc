// The Cluster's threads: the loop that owns the scheduler and the data
// plane, the health check, and the recovery that builds a new chain after
// a failure (see cluster.h).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/cluster_impl.h"
#include "coordinator/micro_batches.h"
#include "proto/convert.h"

namespace layerpool {
namespace {

// The time a micro-batch spends on links per stage it crosses, with the way
// back to the coordinator: the hops measured on loopback and a gigabit LAN
// were 0.1-0.6 ms (bench/results/2026-12-04-pipeline-vs-llama-rpc.md).
constexpr double kTurnaroundMsPerHop = 0.3;

// The step costs as the log shows them.
std::string DescribeStepCosts(const Chain& chain, const std::vector<StepCurve>& curves) {
  std::vector<std::string> stages;
  for (int i = 0; i < chain.size(); ++i) {
    std::vector<std::string> points;
    for (const StepCostPoint& p : curves[i]) {
      points.push_back(absl::StrFormat("%d row%s %.1f ms", p.rows, p.rows == 1 ? "" : "s", p.ms));
    }
    stages.push_back(absl::StrCat(chain.StageName(i), ": ", absl::StrJoin(points, ", ")));
  }
  return absl::StrJoin(stages, "; ");
}

}  // namespace

void Cluster::Impl::UseStepCosts(Scheduler& scheduler) const {
  const std::vector<StepCurve> curves = chain->step_curves();
  std::vector<int> by_live = MicroBatchesByLive(curves, options.max_sequences,
                                                kTurnaroundMsPerHop * (chain->size() + 1));
  if (by_live.empty()) {
    Log("micro-batches: one per stage (a stage did not measure its steps)");
  } else {
    Log(absl::StrCat("step costs: ", DescribeStepCosts(*chain, curves)));
    Log(absl::StrCat("micro-batches by live sequences: ", DescribeMicroBatches(by_live)));
  }
  scheduler.SetMicroBatchesByLive(std::move(by_live));
}

absl::Status Cluster::Impl::Send(const MicroBatch& batch) {
  v1::ActivationChunk chunk;
  chunk.set_micro_batch_id(batch.id);
  chunk.set_chunk_index(0);
  chunk.set_chunk_count(1);
  auto* ids = chunk.mutable_token_ids()->mutable_ids();
  for (size_t r = 0; r < batch.rows.size(); ++r) {
    const BatchRow& row = batch.rows[r];
    chunk.add_seq_ids(row.seq_id);
    chunk.add_positions(row.position);
    ids->Add(row.token);
    if (row.one_token) chunk.add_one_token_rows(static_cast<uint32_t>(r));
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
      // The sampler starts on this chain: give it the sequence's history
      // and, for a replay, the place its random stream had reached.
      auto* recent = spec->mutable_recent_tokens();
      recent->Add(l.request.prompt.begin(), l.request.prompt.end());
      recent->Add(l.generated.begin(), l.generated.end());
      spec->set_skip_random(l.random_used);
    }
  }
  return chain->Send(std::move(chunk));
}

void Cluster::Impl::FreeOnWorkers(const std::vector<uint64_t>& ids) {
  // While recovering there is nothing to free: the next chain's stages are
  // loaded anew and hold no sequence.
  if (ids.empty() || recovering) return;
  // Every stage frees in parallel, and the loop waits: a micro-batch that
  // admits new sequences into the freed slots must not reach a stage before
  // its free does (the free RPC and the activation stream are not ordered).
  // A stage that does not answer within the health timeout is the health
  // check's business; the wait ends then.
  std::vector<std::shared_future<void>> done;
  for (int i = 0; i < chain->size(); ++i) done.push_back(chain->stage(i).FreeSequencesAsync(ids));
  const auto deadline = std::chrono::steady_clock::now() +
                        absl::ToChronoNanoseconds(options.health_timeout);
  for (auto& d : done) d.wait_until(deadline);
}

void Cluster::Impl::HandleOutput(Scheduler& scheduler, const v1::StepResult* result) {
  SchedulerOutput out = scheduler.TakeOutput();
  for (const TokenEvent& t : out.tokens) {
    auto it = live.find(t.seq_id);
    if (it == live.end()) continue;
    it->second.generated.push_back(t.token);
    GenerateEvent e;
    e.token = t.token;
    if (result != nullptr) {
      for (const v1::SampledToken& s : result->tokens()) {
        if (s.seq_id() != t.seq_id) continue;
        it->second.random_used = s.random_used();
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

// The chain broke: name the stage, stop sending, and have the recovery
// thread build the next chain while the sequences wait (replay budget).
void Cluster::Impl::BeginRecovery(Scheduler& scheduler, absl::Status cause,
                                  bool names_the_stage) {
  // A broken stream says little about where the chain broke: ask every
  // stage directly.
  absl::Status named = names_the_stage ? cause : chain->FindDownStage(absl::Seconds(1));
  const absl::Status status = named.ok() ? absl::UnavailableError(cause.message()) : named;
  scheduler.Rewind();
  recovering = true;
  recover_started = std::chrono::steady_clock::now();
  replay_deadline = recover_started + absl::ToChronoNanoseconds(options.replay_budget);
  Log(absl::StrCat("pipeline down: ", status.message(), "; recovering, ", scheduler.active(),
                   " sequences wait up to ", absl::FormatDuration(options.replay_budget),
                   " (--replay-budget) to be replayed"));
  std::lock_guard lock(mu);
  down = status;
  refusing = false;
  rebuild_from = chain;
  cv.notify_all();
}

// The replay budget ran out: what waited ends with the cause, and new
// requests are refused until a chain is back.
void Cluster::Impl::SpendReplayBudget(Scheduler& scheduler) {
  absl::Status status;
  {
    std::lock_guard lock(mu);
    refusing = true;
    status = absl::UnavailableError(absl::StrCat(
        down.message(), " (no worker took its place within the replay budget of ",
        absl::FormatDuration(options.replay_budget), ", --replay-budget)"));
    down = status;
  }
  Log(absl::StrCat(status.message(), "; refusing requests until it is back"));
  scheduler.Fail(status);
  replay_deadline = std::chrono::steady_clock::time_point::max();
}

void Cluster::Impl::EndRecovery(std::shared_ptr<Chain> rebuilt) {
  const double ms = std::chrono::duration<double, std::milli>(
                        std::chrono::steady_clock::now() - recover_started).count();
  std::shared_ptr<Chain> old;
  {
    std::lock_guard lock(mu);
    old = std::exchange(chain, std::move(rebuilt));
    down = absl::OkStatus();
    refusing = false;
  }
  recovering = false;
  Log(absl::StrFormat("pipeline back after %.0f ms; replaying %d sequences", ms, live.size()));
  old.reset();  // closes its streams (outside the lock: its reader posts)
}

void Cluster::Impl::Loop() {
  SchedulerOptions so;
  so.n_stages = chain->size();
  so.n_ctx = owner->n_ctx();
  so.max_sequences = options.max_sequences;
  so.max_batch_tokens = options.batch;
  so.max_queue = options.max_queue;
  for (int32_t id : {owner->tokenizer().eos_id(), owner->tokenizer().eot_id()}) {
    if (id >= 0) so.stop_tokens.push_back(id);
  }
  Scheduler scheduler(so);
  UseStepCosts(scheduler);
  replay_deadline = std::chrono::steady_clock::time_point::max();

  std::unique_lock lock(mu);
  while (true) {
    cv.wait_until(lock, replay_deadline, [&] { return stopping || !events.empty(); });
    if (stopping) break;
    if (events.empty()) {  // the replay budget ran out
      lock.unlock();
      SpendReplayBudget(scheduler);
      HandleOutput(scheduler, nullptr);
      lock.lock();
      continue;
    }
    ClusterEvent event = std::move(events.front());
    events.pop_front();
    const bool refuse = refusing;
    lock.unlock();

    const v1::StepResult* result = nullptr;
    absl::Status failure;
    bool names_the_stage = false;
    const uint64_t generation = chain->generation();
    if (auto* s = std::get_if<SubmitEvent>(&event)) {
      absl::Status st = refuse ? down : scheduler.Submit(s->seq_id, s->request.prompt,
                                                         s->request.n_predict);
      if (st.ok()) {
        if (s->request.embed != v1::POOLING_TYPE_UNSPECIFIED) embedding.insert(s->seq_id);
        live[s->seq_id] = Live{std::move(s->request), s->stream, {}, 0};
      }
      s->accepted->set_value(st);
    } else if (auto* c = std::get_if<CancelEvent>(&event)) {
      scheduler.Cancel(c->seq_id);
    } else if (auto* r = std::get_if<ResultEvent>(&event)) {
      if (r->generation == generation && !recovering) {
        std::vector<TokenEvent> sampled;
        for (const v1::SampledToken& t : r->result.tokens()) {
          sampled.push_back({t.seq_id(), t.token()});
        }
        absl::Status st = scheduler.OnResult(r->result.micro_batch_id(), sampled);
        if (!st.ok()) {
          failure = absl::InternalError(absl::StrCat(
              chain->StageName(chain->size() - 1),
              " returned a result the coordinator did not expect: ", st.message()));
        }
        result = &r->result;
      }
    } else if (auto* f = std::get_if<FailureEvent>(&event)) {
      if (f->generation == generation && !recovering) {
        failure = f->status;
        names_the_stage = f->names_the_stage;
      }
    } else if (auto* rec = std::get_if<RecoveredEvent>(&event)) {
      EndRecovery(std::move(rec->chain));
      scheduler.SetStages(chain->size());
      UseStepCosts(scheduler);
    }

    // Frees (finished, cancelled) reach every stage before a micro-batch
    // that may reuse their slots is sent.
    HandleOutput(scheduler, result);
    result = nullptr;
    if (failure.ok() && !recovering) {
      for (const MicroBatch& batch : scheduler.NextBatches()) {
        absl::Status st = Send(batch);
        if (!st.ok()) {
          failure = absl::UnavailableError(
              absl::StrCat("sending to ", chain->StageName(0), ": ", st.message()));
          break;
        }
      }
    }
    if (!failure.ok()) BeginRecovery(scheduler, failure, names_the_stage);
    HandleOutput(scheduler, nullptr);
    queued.store(scheduler.queued());
    active.store(scheduler.active());
    lock.lock();
  }
  // Shutting down: answer submissions no one will take, end every request.
  // The queue may hold a chain, whose reader posts: drop it unlocked.
  std::deque<ClusterEvent> left = std::move(events);
  events.clear();
  lock.unlock();
  for (ClusterEvent& e : left) {
    if (auto* s = std::get_if<SubmitEvent>(&e)) {
      s->accepted->set_value(absl::UnavailableError("the coordinator is shutting down"));
    }
  }
  left.clear();
  recovering = true;  // no frees on the way out
  scheduler.Fail(absl::UnavailableError("the coordinator is shutting down"));
  HandleOutput(scheduler, nullptr);
}

void Cluster::Impl::WatchHealth() {
  std::unique_lock lock(mu);
  while (!stopping) {
    if (cv.wait_for(lock, absl::ToChronoNanoseconds(options.health_interval),
                    [&] { return stopping; })) {
      break;
    }
    std::shared_ptr<Chain> watched = chain;
    lock.unlock();
    // Polling goes on while recovering, to keep Describe's states current;
    // the loop ignores what it says of a chain being replaced.
    absl::Status st = watched->FindDownStage(options.health_timeout);
    if (!st.ok()) Post(FailureEvent{watched->generation(), st, true});
    watched.reset();
    lock.lock();
  }
}

// Every worker this cluster knows, once each: those it started with, its
// spares, and those of `chain`.
std::vector<std::string> Cluster::Impl::KnownWorkers(const Chain& chain) const {
  std::vector<std::string> known = options.workers;
  known.insert(known.end(), options.spares.begin(), options.spares.end());
  for (int i = 0; i < chain.size(); ++i) known.push_back(chain.stage(i).address());
  std::vector<std::string> once;
  for (const std::string& a : known) {
    if (std::find(once.begin(), once.end(), a) == once.end()) once.push_back(a);
  }
  return once;
}

void Cluster::Impl::Recover() {
  std::unique_lock lock(mu);
  std::string last_error;
  uint64_t down_generation = 0;  // the chain that broke, and since when
  std::chrono::steady_clock::time_point down_since;
  while (true) {
    cv.wait(lock, [&] { return stopping || rebuild_from != nullptr; });
    if (stopping) return;
    std::shared_ptr<Chain> failed = rebuild_from;
    const uint64_t generation = next_generation++;
    lock.unlock();
    if (failed->generation() != down_generation) {
      down_generation = failed->generation();
      down_since = std::chrono::steady_clock::now();
    }
    absl::StatusOr<std::unique_ptr<Chain>> rebuilt =
        Chain::Rebuild(chain_config, generation, *failed, home, options.spares, callbacks());
    const bool replan = options.replan_after > absl::ZeroDuration() &&
                        std::chrono::steady_clock::now() - down_since >=
                            absl::ToChronoNanoseconds(options.replan_after);
    if (!rebuilt.ok() && replan) {
      absl::StatusOr<std::unique_ptr<Chain>> replanned =
          Chain::Replan(chain_config, generation, *failed, KnownWorkers(*failed), callbacks());
      if (replanned.ok()) {
        home.clear();
        for (int i = 0; i < (*replanned)->size(); ++i) {
          home.push_back((*replanned)->stage(i).address());
        }
        Log(absl::StrCat("recovery: no worker took the stage back within ",
                         absl::FormatDuration(options.replan_after),
                         " (--replan-after): the split is planned again over ", home.size(),
                         " workers (", absl::StrJoin(home, ", "), ")"));
        rebuilt = std::move(replanned);
      } else {
        rebuilt = absl::Status(rebuilt.status().code(),
                               absl::StrCat(rebuilt.status().message(), "; ",
                                            replanned.status().message()));
      }
    }
    if (rebuilt.ok()) {
      Post(RecoveredEvent{std::shared_ptr<Chain>(*std::move(rebuilt))});
      last_error.clear();
      lock.lock();
      if (rebuild_from == failed) rebuild_from = nullptr;
      continue;
    }
    failed.reset();
    lock.lock();
    if (stopping) return;
    if (rebuilt.status().message() != last_error) {
      last_error = std::string(rebuilt.status().message());
      Log(absl::StrCat("recovery: ", last_error, "; trying again every ",
                       absl::FormatDuration(options.health_interval)));
    }
    cv.wait_for(lock, absl::ToChronoNanoseconds(options.health_interval),
                [&] { return stopping; });
  }
}

}  // namespace layerpool
