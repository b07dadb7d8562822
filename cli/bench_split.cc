// `layerpool bench-split`: which split gives the best throughput.
//
// For each split, starts one local worker per stage, and for each
// concurrency level runs that many streams at once (each its own random
// prompt), measuring prefill and decode tokens/s, each stage's busy fraction
// and each link's mean hop latency. Every figure is held against its ceiling: the
// one-stage pipeline at the same concurrency, with the speed-up the stages'
// measured step costs allow (coordinator/micro_batches.h: below the number
// of stages wherever a step of fewer rows costs more per row), and for a
// single stream the model run in this process with no pipeline at all.

#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "cli/local_workers.h"
#include "coordinator/cluster.h"
#include "coordinator/planner.h"
#include "nlohmann/json.hpp"
#include "worker/stage.h"

namespace layerpool::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double>(t1 - t0).count();
}

struct RunFigures {
  std::string split;
  int stages = 0;
  int concurrency = 0;
  double prefill_tps = 0;
  double decode_tps = 0;
  std::vector<double> busy;  // per stage
  double hop_us = 0;         // mean over the links
  // Each link's mean hop: coordinator -> stage 0, then stage i -> i + 1.
  std::vector<double> hops_us;
  std::vector<std::string> links;  // stage i -> i + 1: "unix socket", "grpc"
  double speedup = 0;        // over one stage at the same concurrency
  // What the stages' measured step costs allow (coordinator/micro_batches.h,
  // no link time): decode tokens/s, and the speed-up over one stage doing
  // all their work (the sum of their steps), both from the same timings.
  double ceiling_tps = 0;
  double ceiling_speedup = 0;
};

std::vector<int32_t> RandomPrompt(int64_t n, int32_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(3, n_vocab - 1);  // past BOS/EOS
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = pick(rng);
  return p;
}

// Decode tokens/s of one stream in this process, without any pipeline.
absl::StatusOr<double> InProcessDecode(const EngineFlags& engine, int64_t prompt_len,
                                       int64_t n_predict) {
  LP_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::Open(engine.model, {.map_data = false}));
  LP_ASSIGN_OR_RETURN(StageOptions options, engine.ToStageOptions());
  options.threads = static_cast<int>(std::max<int64_t>(engine.threads, 1));
  LP_ASSIGN_OR_RETURN(auto stage, Stage::Create(*file, options));
  const int64_t n_ctx = prompt_len + n_predict + 1;
  LP_ASSIGN_OR_RETURN(auto cache, stage->NewCache(n_ctx));
  std::vector<int32_t> tokens = RandomPrompt(prompt_len, stage->hparams().n_vocab, 1);
  std::vector<float> logits;
  auto forward = [&](std::span<const int32_t> t, int64_t pos0) {
    std::vector<int32_t> positions(t.size());
    for (size_t i = 0; i < t.size(); ++i) positions[i] = static_cast<int32_t>(pos0 + i);
    std::vector<KvCache*> caches(t.size(), cache.get());
    const int64_t last = static_cast<int64_t>(t.size()) - 1;
    StageBatch b;
    b.tokens = t;
    b.positions = positions;
    b.caches = caches;
    b.logit_rows = std::span<const int64_t>(&last, 1);
    return stage->Forward(b, &logits);
  };
  LP_RETURN_IF_ERROR(forward(tokens, 0));
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < n_predict; ++i) {
    const int32_t next = static_cast<int32_t>(
        std::max_element(logits.begin(), logits.end()) - logits.begin());
    LP_RETURN_IF_ERROR(forward(std::span(&next, 1), prompt_len + i));
  }
  return n_predict / Since(t0, Clock::now());
}

absl::StatusOr<std::vector<RunFigures>> BenchSplit(
    const EngineFlags& engine, const ClusterFlags& flags, const std::string& split,
    const std::vector<std::string>& remote, const std::vector<int64_t>& concurrency,
    int64_t prompt_len, int64_t n_predict) {
  LP_ASSIGN_OR_RETURN(std::vector<int64_t> counts, ParseLayerCounts(split), "--splits");
  const int threads = static_cast<int>(std::max<int64_t>(engine.threads, 1));
  ClusterOptions options;
  ClusterFlags f = flags;
  f.split = split;
  f.tensor_split.clear();
  LP_RETURN_IF_ERROR(f.Apply(engine, &options));
  std::unique_ptr<LocalWorkers> workers;
  if (remote.empty()) {
    if (options.tls) return absl::InvalidArgumentError("--tls-dir is for --workers");
    LP_ASSIGN_OR_RETURN(workers, LocalWorkers::Start(static_cast<int>(counts.size()), threads));
    options.workers = workers->addresses();
    options.token = workers->token();
  } else if (remote.size() < counts.size()) {
    return absl::InvalidArgumentError(absl::StrCat("split ", split, " needs ", counts.size(),
                                                   " workers, --workers names ", remote.size()));
  } else {
    options.workers.assign(remote.begin(), remote.begin() + static_cast<ptrdiff_t>(counts.size()));
  }
  options.threads = threads;
  LP_ASSIGN_OR_RETURN(auto cluster, Cluster::Start(std::move(options)));
  const int32_t n_vocab = static_cast<int32_t>(cluster->hparams().n_vocab);

  std::vector<RunFigures> out;
  for (int64_t c : concurrency) {
    LP_RETURN_IF_ERROR(cluster->StageStats().status());  // opens the busy window
    SamplingParams greedy;
    greedy.temperature = 0;
    const auto t0 = Clock::now();
    std::vector<std::unique_ptr<Cluster::Stream>> streams;
    for (int64_t i = 0; i < c; ++i) {
      GenerateRequest r;
      r.prompt = RandomPrompt(prompt_len, n_vocab, static_cast<uint32_t>(100 + i));
      r.n_predict = n_predict;
      r.sampling = greedy;
      LP_ASSIGN_OR_RETURN(auto s, cluster->Generate(std::move(r)));
      streams.push_back(std::move(s));
    }
    // One reader per stream, so each token is timed when it arrives.
    std::vector<std::vector<Clock::time_point>> arrivals(c);
    std::vector<absl::Status> status(c);
    std::vector<std::thread> readers;
    for (int64_t i = 0; i < c; ++i) {
      readers.emplace_back([&, i] {
        GenerateEvent e;
        while (streams[i]->Next(&e) && !e.done) arrivals[i].push_back(Clock::now());
        if (e.reason == FinishReason::kFailed) status[i] = e.status;
      });
    }
    for (std::thread& t : readers) t.join();
    for (const absl::Status& st : status) LP_RETURN_IF_ERROR(st);
    // Prefill ends when every stream has its first token. Decode is timed
    // from then on, when every stream decodes and no prompt competes, to
    // the last token of all: the tokens that arrive in that window over its
    // length.
    Clock::time_point decode_start = t0, end = t0;
    for (const auto& a : arrivals) {
      if (a.empty()) return absl::InternalError("a stream generated nothing");
      decode_start = std::max(decode_start, a.front());
      end = std::max(end, a.back());
    }
    int64_t decoded = 0;
    for (const auto& a : arrivals) {
      decoded += std::count_if(a.begin(), a.end(),
                               [&](Clock::time_point t) { return t > decode_start; });
    }
    RunFigures r;
    r.split = split;
    r.stages = static_cast<int>(counts.size());
    r.concurrency = static_cast<int>(c);
    r.prefill_tps = c * prompt_len / Since(t0, decode_start);
    r.decode_tps = decoded / Since(decode_start, end);
    LP_ASSIGN_OR_RETURN(auto stats, cluster->StageStats());
    r.hops_us.push_back(cluster->first_hop_us());
    const v1::ClusterDescription description = cluster->Describe();
    for (size_t i = 0; i < stats.size(); ++i) {
      r.busy.push_back(stats[i].busy_fraction());
      if (i + 1 < stats.size()) {
        r.hops_us.push_back(stats[i].hop_latency().mean_us());
        r.links.push_back(description.stages(static_cast<int>(i)).link_to_next());
      }
    }
    if (const std::vector<StepCurve> curves = cluster->step_curves();
        std::none_of(curves.begin(), curves.end(),
                     [](const StepCurve& curve) { return curve.empty(); })) {
      // One stage doing every stage's work takes their steps' sum.
      const int n = static_cast<int>(c);
      const double round_ms = BestRound(curves, n, 0).ms;
      double one_stage_ms = 0;
      for (const StepCurve& curve : curves) one_stage_ms += StepMs(Regularize(curve), n);
      r.ceiling_tps = 1000.0 * n / round_ms;
      r.ceiling_speedup = one_stage_ms / round_ms;
    }
    r.hop_us = std::accumulate(r.hops_us.begin(), r.hops_us.end(), 0.0) /
               static_cast<double>(r.hops_us.size());
    out.push_back(r);
  }
  return out;
}

}  // namespace

int RunBenchSplit(std::span<char* const> args) {
  EngineFlags engine;
  ClusterFlags cluster_flags;
  std::string splits, concurrency = "1,2,4", output = "text", workers;
  int64_t prompt_len = 64, n_predict = 64;
  engine.threads = 1;
  FlagSet flags(
      "bench-split --model FILE.gguf --splits N,N;N,N,... [--concurrency 1,2,4] "
      "[--output json]",
      "Runs the model under each split (layer counts per stage, splits separated "
      "by ';'), each\nstage a local worker (or one of --workers) with --threads threads, at each "
      "concurrency level, and prints per\nrun: prefill and decode tokens/s, each "
      "stage's busy fraction, each link's mean hop latency\n(coordinator to stage 0, "
      "then stage to stage, with the transport each link took),\nand the speed-up over "
      "one stage at the same concurrency, next to its ceiling: what the\nstages' step "
      "costs, timed when they loaded, allow with no time on the links (at most\nthe number "
      "of stages; less where micro-batches of fewer rows cost more per row). A one-stage "
      "run is added when missing; a single in-process stream is\nthe baseline a "
      "pipeline's single-stream decode is held against.");
  engine.Register(flags);
  cluster_flags.Register(flags);
  flags.String("splits", "S;S;...", &splits, "splits to run, e.g. '12;6,6;3,9'");
  flags.String("concurrency", "C,C,...", &concurrency, "concurrent streams per run");
  flags.String("workers", "HOST:PORT,...", &workers,
               "workers already running (on other hosts, say) instead of local ones: a "
               "split of k stages runs on the first k, which need the model at the same path");
  flags.Int("prompt-tokens", "N", &prompt_len, "random prompt tokens per stream");
  flags.Int("n-predict", "N", &n_predict, "tokens generated per stream");
  flags.String("output", "FORMAT", &output, "text or json");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (engine.model.empty() || splits.empty()) {
    std::cerr << "error: --model and --splits are required\n";
    return 2;
  }
  if (prompt_len < 1 || n_predict < 2 || (output != "text" && output != "json")) {
    std::cerr << "error: --prompt-tokens >= 1, --n-predict >= 2, --output text|json\n";
    return 2;
  }
  if (absl::Status s = engine.Validate(); !s.ok()) return ReportError(s);
  auto levels = ParseLayerCounts(concurrency);
  if (!levels.ok()) return ReportError(levels.status());
  for (int64_t c : *levels) {
    if (c < 1 || c > cluster_flags.max_sequences) {
      return ReportError(absl::InvalidArgumentError(absl::StrFormat(
          "--concurrency %d: must be in [1, --max-sequences %d]", c,
          cluster_flags.max_sequences)));
    }
  }
  if (engine.ctx == 0) engine.ctx = prompt_len + n_predict + 8;

  std::vector<std::string> split_list = absl::StrSplit(splits, ';', absl::SkipWhitespace());
  int64_t n_layer = 0;
  {
    auto counts = ParseLayerCounts(split_list.front());
    if (!counts.ok()) return ReportError(counts.status());
    for (int64_t n : *counts) n_layer += n;
  }
  const std::string one_stage = std::to_string(n_layer);
  if (std::find(split_list.begin(), split_list.end(), one_stage) == split_list.end()) {
    split_list.insert(split_list.begin(), one_stage);
  }

  const std::vector<std::string> remote = absl::StrSplit(workers, ',', absl::SkipWhitespace());
  auto alone = InProcessDecode(engine, prompt_len, n_predict);
  if (!alone.ok()) return ReportError(alone.status());
  std::vector<RunFigures> all;
  for (const std::string& split : split_list) {
    std::cerr << "bench-split: split " << split << "\n";
    auto runs = BenchSplit(engine, cluster_flags, split, remote, *levels, prompt_len, n_predict);
    if (!runs.ok()) return ReportError(runs.status());
    all.insert(all.end(), runs->begin(), runs->end());
  }
  for (RunFigures& r : all) {
    for (const RunFigures& base : all) {
      if (base.stages == 1 && base.concurrency == r.concurrency) {
        r.speedup = r.decode_tps / base.decode_tps;
      }
    }
  }

  if (output == "json") {
    nlohmann::ordered_json j;
    j["model"] = engine.model;
    j["threads_per_stage"] = engine.threads;
    j["in_process_decode_tokens_per_s"] = *alone;
    for (const RunFigures& r : all) {
      j["runs"].push_back({{"split", r.split},
                           {"stages", r.stages},
                           {"concurrency", r.concurrency},
                           {"prefill_tokens_per_s", r.prefill_tps},
                           {"decode_tokens_per_s", r.decode_tps},
                           {"stage_busy_fraction", r.busy},
                           {"mean_hop_us", r.hop_us},
                           {"hop_us_per_link", r.hops_us},
                           {"stage_links", r.links},
                           {"speedup_over_one_stage", r.speedup},
                           {"ceiling_decode_tokens_per_s", r.ceiling_tps},
                           {"ceiling_speedup", r.ceiling_speedup}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat(
      "in-process single stream: %.1f decode tokens/s (%d threads)\n\n", *alone,
      engine.threads);
  std::cout << absl::StrFormat("%-12s %6s %5s %12s %12s %9s %9s %9s %-16s  %s\n", "split",
                               "stages", "conc", "prefill t/s", "decode t/s",
                               "speed-up", "ceiling", "of it", "hops us", "stage busy");
  std::string links;  // of the last split shown, printed when they change
  for (const RunFigures& r : all) {
    const std::string these = absl::StrJoin(r.links, ", ");
    if (!these.empty() && these != links) {
      std::cout << "  (" << r.split << ": stage links " << these << ")\n";
    }
    links = these;
    std::vector<std::string> busy, hops;
    for (double b : r.busy) busy.push_back(absl::StrFormat("%.0f%%", 100 * b));
    for (double h : r.hops_us) hops.push_back(absl::StrFormat("%.0f", h));
    const bool ceiling = r.ceiling_speedup > 0;
    std::cout << absl::StrFormat("%-12s %6d %5d %12.1f %12.1f %8.2fx %9s %9s %-16s  %s%s\n",
                                 r.split, r.stages, r.concurrency, r.prefill_tps,
                                 r.decode_tps, r.speedup,
                                 ceiling ? absl::StrFormat("%.2fx", r.ceiling_speedup) : "-",
                                 ceiling ? absl::StrFormat("%.0f%%", 100 * r.speedup /
                                                                         r.ceiling_speedup)
                                         : "-",
                                 absl::StrJoin(hops, " "), absl::StrJoin(busy, " "),
                                 r.concurrency == 1
                                     ? absl::StrFormat("  (%.0f%% of in-process)",
                                                       100 * r.decode_tps / *alone)
                                     : "");
  }
  return 0;
}

}  // namespace layerpool::cli
