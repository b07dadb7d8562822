#include "coordinator/planner.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/human_bytes.h"

namespace layerpool {
namespace {

// The request digested: prefix sums of layer weights and the KV of one layer.
struct Costing {
  const PlanRequest& req;
  int64_t n_layer = 0;
  std::vector<uint64_t> prefix;  // prefix[i] = weights of layers [0, i)
  uint64_t kv_per_layer = 0;

  // The stage of worker `w` at position `pos` of `n_stages`, layers [a, b).
  StagePlan Stage(int w, int pos, int n_stages, int64_t a, int64_t b) const {
    StagePlan s;
    s.worker = w;
    s.first_layer = a;
    s.end_layer = b;
    s.weight_bytes = prefix[b] - prefix[a];
    if (pos == 0) s.weight_bytes += req.costs.embedding_bytes;
    if (pos == n_stages - 1) s.weight_bytes += req.costs.output_bytes;
    s.kv_bytes = kv_per_layer * static_cast<uint64_t>(b - a);
    s.total_bytes = s.weight_bytes + s.kv_bytes + req.scratch_bytes_per_stage;
    s.read_bytes_per_token = prefix[b] - prefix[a];
    if (pos == n_stages - 1) s.read_bytes_per_token += req.costs.output_bytes;
    return s;
  }

  // What stage `pos` reads per token, as a double: its layers, and the
  // output head on the last stage (the first stage's embedding lookup reads
  // one row).
  double Work(int pos, int n_stages, int64_t a, int64_t b) const {
    return static_cast<double>(
        Stage(0, pos, n_stages, a, b).read_bytes_per_token);
  }
};

absl::Status NoFit(const WorkerMemory& w, const StagePlan& s) {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "worker '%s' needs %s for layers [%d, %d) but has %s free (short by %s)",
      w.name, HumanBytes(s.total_bytes), s.first_layer, s.end_layer,
      HumanBytes(w.free_bytes), HumanBytes(s.total_bytes - w.free_bytes)));
}

// Lays out `counts[k]` layers for worker `active[k]` and checks every stage
// against its worker's memory.
absl::StatusOr<std::vector<StagePlan>> Build(
    const Costing& c, const std::vector<int>& active,
    const std::vector<int64_t>& counts) {
  std::vector<StagePlan> plan;
  int64_t a = 0;
  const int n = static_cast<int>(active.size());
  for (int k = 0; k < n; ++k) {
    plan.push_back(c.Stage(active[k], k, n, a, a + counts[k]));
    a += counts[k];
    const WorkerMemory& w = c.req.workers[active[k]];
    if (plan.back().total_bytes > w.free_bytes) return NoFit(w, plan.back());
  }
  return plan;
}

// llama.cpp's tensor_split: worker i gets layers l with
// cum[i-1] <= l / n_layer < cum[i], i.e. ends at ceil(n_layer * cum[i]).
// `weights` are non-negative with a positive sum.
std::vector<int64_t> CumulativeCounts(const std::vector<double>& weights,
                                      int64_t n_layer) {
  const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<int64_t> counts;
  double cum = 0;
  int64_t prev_end = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    cum += weights[i];
    double x = static_cast<double>(n_layer) * cum / sum;
    // Snap values a rounding error away from a whole layer (1/3 * 12).
    const double r = std::round(x);
    if (std::fabs(x - r) < 1e-9 * static_cast<double>(n_layer)) x = r;
    int64_t end = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(x)),
                                      prev_end, n_layer);
    if (i + 1 == weights.size()) end = n_layer;
    counts.push_back(end - prev_end);
    prev_end = end;
  }
  return counts;
}

// Each worker in turn takes as many layers as fit in its free memory,
// leaving one layer for each later worker. Taking more never hurts the
// workers after it, so if this fails every split does: it names the stage
// that cannot fit (`*failed`) when no plan can.
bool FitsSomehow(const Costing& c, StagePlan* failed) {
  const int n = static_cast<int>(c.req.workers.size());
  int64_t a = 0;
  for (int k = 0; k < n; ++k) {
    const uint64_t free = c.req.workers[k].free_bytes;
    const int64_t max_end = c.n_layer - (n - 1 - k);
    int64_t b = (k == n - 1) ? c.n_layer : a + 1;
    if (c.Stage(k, k, n, a, b).total_bytes > free) {
      *failed = c.Stage(k, k, n, a, b);
      return false;
    }
    while (b < max_end && c.Stage(k, k, n, a, b + 1).total_bytes <= free) ++b;
    a = b;
  }
  return true;
}

// A decode step takes as long as its slowest stage, and a stage's time is
// about the weight bytes it reads per token over its worker's speed. Speeds
// are not known when planning; they are taken in proportion to free memory
// (the assumption behind splitting by memory), so equal workers get equal
// work, the last stage's output head counted as the layers it is worth.
// Two passes of dynamic programming over (stages, layers end): the least
// time of the slowest stage among the splits that fit, then, among the
// splits within that time, the least sum of squared stage times, so that
// the other stages are balanced too (5,4,4,3, not 5,5,5,1).
absl::StatusOr<std::vector<StagePlan>> PlanAutomatic(const Costing& c) {
  const PlanRequest& r = c.req;
  const int n = static_cast<int>(r.workers.size());
  const int64_t n_layer = c.n_layer;
  StagePlan failed;
  if (!FitsSomehow(c, &failed)) return NoFit(r.workers[failed.worker], failed);

  constexpr double kInf = std::numeric_limits<double>::infinity();
  // Stage k on layers [a, b): its time per token, or kInf if it does not fit.
  auto time = [&](int k, int64_t a, int64_t b) {
    const StagePlan s = c.Stage(k, k, n, a, b);
    const uint64_t free = r.workers[k].free_bytes;
    if (s.total_bytes > free || free == 0) return kInf;
    return static_cast<double>(s.read_bytes_per_token) /
           static_cast<double>(free);
  };
  // Stages [0, k) on layers [0, b), each stage at least one layer, leaving
  // one for each later stage.
  auto for_each_cut = [&](auto&& visit) {
    for (int k = 1; k <= n; ++k) {
      for (int64_t b = k; b <= n_layer - (n - k); ++b) {
        for (int64_t a = k - 1; a < b; ++a) visit(k, a, b);
      }
    }
  };
  using Table = std::vector<std::vector<double>>;
  Table slowest(n + 1, std::vector<double>(n_layer + 1, kInf));
  slowest[0][0] = 0;
  for_each_cut([&](int k, int64_t a, int64_t b) {
    const double t = std::max(slowest[k - 1][a], time(k - 1, a, b));
    slowest[k][b] = std::min(slowest[k][b], t);
  });
  const double limit = slowest[n][n_layer];

  Table squares(n + 1, std::vector<double>(n_layer + 1, kInf));
  std::vector<std::vector<int64_t>> start(n + 1,
                                          std::vector<int64_t>(n_layer + 1));
  squares[0][0] = 0;
  for_each_cut([&](int k, int64_t a, int64_t b) {
    const double t = time(k - 1, a, b);
    if (t > limit || squares[k - 1][a] == kInf) return;
    if (const double sum = squares[k - 1][a] + t * t; sum < squares[k][b]) {
      squares[k][b] = sum;
      start[k][b] = a;
    }
  });
  std::vector<int64_t> counts(n);
  int64_t b = n_layer;
  for (int k = n; k > 0; --k) {
    counts[k - 1] = b - start[k][b];
    b = start[k][b];
  }
  std::vector<int> all(n);
  std::iota(all.begin(), all.end(), 0);
  return Build(c, all, counts);
}

}  // namespace


absl::StatusOr<ModelCosts> ModelCostsFromGguf(const gguf::GgufFile& file,
                                              const HParams& hp,
                                              double kv_bytes_per_element) {
  return ModelCostsFromTensors(file.tensors(), hp, kv_bytes_per_element);
}

absl::StatusOr<ModelCosts> ModelCostsFromTensors(const std::vector<gguf::TensorInfo>& tensors,
                                                 const HParams& hp,
                                                 double kv_bytes_per_element) {
  if (hp.n_layer <= 0) {
    return absl::InvalidArgumentError("the model has no layers (block_count)");
  }
  const double kv = KvBytesPerToken(hp, 1, kv_bytes_per_element);
  if (!(kv > 0) || !std::isfinite(kv)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "no KV cache size: head_count_kv %d, key_length %d, %g bytes each",
        hp.n_head_kv, hp.head_dim, kv_bytes_per_element));
  }
  ModelCosts costs;
  costs.layer_weight_bytes.assign(hp.n_layer, 0);
  costs.kv_bytes_per_token_per_layer = static_cast<uint64_t>(std::ceil(kv));
  bool has_output = false;
  for (const gguf::TensorInfo& t : tensors) {
    absl::string_view name = t.name;
    if (absl::ConsumePrefix(&name, "blk.")) {
      int64_t layer = -1;
      const size_t dot = name.find('.');
      if (dot == absl::string_view::npos ||
          !absl::SimpleAtoi(name.substr(0, dot), &layer) || layer < 0 ||
          layer >= hp.n_layer) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "tensor %s is not in a layer of [0, %d)", t.name, hp.n_layer));
      }
      costs.layer_weight_bytes[layer] += t.size_bytes;
    } else if (name == "token_embd.weight") {
      costs.embedding_bytes += t.size_bytes;
    } else {
      has_output |= name == "output.weight";
      costs.output_bytes += t.size_bytes;
    }
  }
  // Tied embeddings: the last stage needs token_embd as its output head.
  if (!has_output) costs.output_bytes += costs.embedding_bytes;
  return costs;
}

absl::StatusOr<std::vector<StagePlan>> PlanSplit(const PlanRequest& r) {
  Costing c{r, 0, {}, 0};
  c.n_layer = static_cast<int64_t>(r.costs.layer_weight_bytes.size());
  const int n = static_cast<int>(r.workers.size());
  if (n == 0) return absl::InvalidArgumentError("no workers to plan for");
  if (c.n_layer == 0)
    return absl::InvalidArgumentError("the model has no layers");
  if (r.context_tokens < 0 || r.max_sequences < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "context_tokens (%d) must be >= 0 and max_sequences (%d) >= 1",
        r.context_tokens, r.max_sequences));
  }
  if (!r.layer_counts.empty() && !r.ratios.empty()) {
    return absl::InvalidArgumentError("give layer counts or ratios, not both");
  }

  // Every sum below is bounded by the model's total need; check it once.
  uint64_t weights = r.costs.embedding_bytes, total = 0;
  bool overflow =
      __builtin_add_overflow(weights, r.costs.output_bytes, &weights);
  c.prefix.push_back(0);
  for (uint64_t w : r.costs.layer_weight_bytes) {
    overflow |= __builtin_add_overflow(c.prefix.back(), w, &total);
    c.prefix.push_back(total);
  }
  uint64_t kv_all = 0, scratch_all = 0;
  overflow |= __builtin_add_overflow(weights, c.prefix.back(), &weights);
  overflow |= __builtin_mul_overflow(r.costs.kv_bytes_per_token_per_layer,
                                     static_cast<uint64_t>(r.context_tokens),
                                     &c.kv_per_layer);
  overflow |= __builtin_mul_overflow(
      c.kv_per_layer, static_cast<uint64_t>(r.max_sequences), &c.kv_per_layer);
  overflow |= __builtin_mul_overflow(c.kv_per_layer,
                                     static_cast<uint64_t>(c.n_layer), &kv_all);
  overflow |= __builtin_mul_overflow(r.scratch_bytes_per_stage,
                                     static_cast<uint64_t>(n), &scratch_all);
  overflow |= __builtin_add_overflow(weights, kv_all, &total);
  overflow |= __builtin_add_overflow(total, scratch_all, &total);
  if (overflow) {
    return absl::InvalidArgumentError(
        "the model's memory need overflows 64 bits");
  }

  std::vector<int> active;
  std::vector<int64_t> counts;
  if (!r.layer_counts.empty()) {
    if (r.layer_counts.size() != r.workers.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%d layer counts for %d workers", r.layer_counts.size(), n));
    }
    int64_t sum = 0;
    for (size_t k = 0; k < r.layer_counts.size(); ++k) {
      if (r.layer_counts[k] < 1) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "worker '%s' is given %d layers; every stage needs at least 1",
            r.workers[k].name, r.layer_counts[k]));
      }
      sum += std::min<int64_t>(r.layer_counts[k], c.n_layer + 1);
      active.push_back(static_cast<int>(k));
    }
    if (sum != c.n_layer) {
      return absl::InvalidArgumentError(
          absl::StrFormat("layer counts sum to %d but the model has %d layers",
                          sum, c.n_layer));
    }
    counts = r.layer_counts;
  } else if (!r.ratios.empty()) {
    if (r.ratios.size() != r.workers.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%d split ratios for %d workers", r.ratios.size(), n));
    }
    double sum = 0;
    int nonzero = 0;
    for (double x : r.ratios) {
      if (!std::isfinite(x) || x < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "split ratio ", x, " is not a finite non-negative number"));
      }
      sum += x;
      nonzero += x > 0;
    }
    if (!(sum > 0)) return absl::InvalidArgumentError("split ratios sum to 0");
    if (nonzero > c.n_layer) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%d stages for %d layers", nonzero, c.n_layer));
    }
    const std::vector<int64_t> all =
        CumulativeCounts(r.ratios, c.n_layer);
    for (int k = 0; k < n; ++k) {
      if (all[k] == 0) continue;
      active.push_back(k);
      counts.push_back(all[k]);
    }
  } else {
    if (n > c.n_layer) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%d workers for %d layers", n, c.n_layer));
    }
    uint64_t free_all = 0;
    for (const WorkerMemory& w : r.workers) {
      free_all = free_all + std::min(w.free_bytes, UINT64_MAX - free_all);
    }
    if (total > free_all) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "the model needs %s in all (weights %s, KV cache %s for %d tokens x "
          "%d sequences, scratch %s) but the workers have %s (short by %s)",
          HumanBytes(total), HumanBytes(weights), HumanBytes(kv_all),
          r.context_tokens, r.max_sequences, HumanBytes(scratch_all),
          HumanBytes(free_all), HumanBytes(total - free_all)));
    }
    return PlanAutomatic(c);
  }
  return Build(c, active, counts);
}

std::string DescribePlan(const std::vector<StagePlan>& plan,
                         const PlanRequest& r) {
  size_t name_width = 6;
  for (const StagePlan& s : plan) {
    name_width = std::max(name_width, r.workers[s.worker].name.size());
  }
  const int nw = static_cast<int>(name_width);
  std::string out = absl::StrFormat(
      "%-5s  %-*s  %-12s  %10s  %10s  %10s  %10s  %10s  %10s\n", "stage", nw,
      "worker", "layers", "weights", "kv cache", "total", "free", "headroom",
      "per token");
  for (size_t k = 0; k < plan.size(); ++k) {
    const StagePlan& s = plan[k];
    const WorkerMemory& w = r.workers[s.worker];
    const std::string headroom =
        w.free_bytes >= s.total_bytes
            ? HumanBytes(w.free_bytes - s.total_bytes)
            : absl::StrCat("-", HumanBytes(s.total_bytes - w.free_bytes));
    absl::StrAppendFormat(
        &out, "%-5d  %-*s  %-12s  %10s  %10s  %10s  %10s  %10s  %10s\n", k,
        nw, w.name, absl::StrFormat("[%d, %d)", s.first_layer, s.end_layer),
        HumanBytes(s.weight_bytes), HumanBytes(s.kv_bytes),
        HumanBytes(s.total_bytes), HumanBytes(w.free_bytes), headroom,
        HumanBytes(s.read_bytes_per_token));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseLayerCounts(absl::string_view text) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer count '", part, "' in '", text, "' is not an integer"));
    }
    out.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<double>> ParseRatios(absl::string_view text) {
  std::vector<double> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double v = 0;
    if (!absl::SimpleAtod(absl::StripAsciiWhitespace(part), &v) ||
        !std::isfinite(v) || v < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("split ratio '", part, "' in '", text,
                       "' is not a finite non-negative number"));
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace layerpool
