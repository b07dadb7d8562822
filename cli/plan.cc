// `layerpool plan`: does this model fit on these devices at this context?
// Answers before anything is loaded, with the planner `serve` uses
// (coordinator/planner.h) on the model's header or a built-in shape.

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "coordinator/planner.h"
#include "coordinator/worker_link.h"
#include "model/gguf/gguf.h"
#include "model/layout/stage_layout.h"
#include "model/quant/types.h"
#include "model/synth/synth.h"
#include "nlohmann/json.hpp"
#include "proto/peer_token.h"
#include "proto/tls.h"
#include "worker/kv_cache.h"

namespace layerpool::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kDescription[] =
    "Answers \"does this model fit on these devices at this context?\" before\n"
    "anything is loaded, with the planner serve uses. The model is a GGUF file\n"
    "(its header only) or a built-in shape (--shape llama-70b --type Q4_K_M).\n"
    "The devices are sizes (--devices 24GiB,24GiB) or live workers (--workers,\n"
    "asked for their free memory). Prints the split, per stage weights / KV\n"
    "cache / scratch / headroom / weight bytes read per token (the work the\n"
    "automatic split balances), the KV cache per token by the formula\n"
    "2 x layers x kv_heads x head_dim x bytes per element, and the largest\n"
    "context that fits. When it does not fit: by how much, and what would.\n"
    "Exit status 0 when it fits, 3 when it does not, 1 on errors.";

struct Model {
  std::string name;
  HParams hp;
  std::vector<gguf::TensorInfo> tensors;
  double bits_per_weight = 0;
};

absl::StatusOr<Model> LoadModel(const std::string& path, const std::string& shape,
                                const std::string& type) {
  Model m;
  if (!path.empty()) {
    LP_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::Open(path, {.map_data = false}));
    LP_ASSIGN_OR_RETURN(m.hp, ReadHParams(*file), path);
    m.tensors = file->tensors();
    m.name = path;
  } else {
    SynthOptions o;
    LP_ASSIGN_OR_RETURN(o.shape, SynthPreset(shape), "--shape");
    o.file_type = type;
    LP_ASSIGN_OR_RETURN(m.hp, SynthHParams(o), "--shape");
    LP_ASSIGN_OR_RETURN(m.tensors, SynthTensorTable(o), "--shape");
    m.name = absl::StrCat(shape, " (", type, ")");
  }
  uint64_t bytes = 0;
  int64_t elements = 0;
  for (const gguf::TensorInfo& t : m.tensors) {
    bytes += t.size_bytes;
    elements += t.n_elements;
  }
  m.bits_per_weight = elements > 0 ? 8.0 * static_cast<double>(bytes) / elements : 0;
  return m;
}

// Scales every weight to another bits-per-weight, to estimate what a
// smaller quantization of the same model would need.
ModelCosts Requantized(const ModelCosts& c, double factor) {
  ModelCosts r = c;
  for (uint64_t& b : r.layer_weight_bytes) b = static_cast<uint64_t>(b * factor);
  r.embedding_bytes = static_cast<uint64_t>(c.embedding_bytes * factor);
  r.output_bytes = static_cast<uint64_t>(c.output_bytes * factor);
  return r;
}

// The largest context (a multiple of 256, at most `limit`) with which the
// request still plans; 0 when not even 256 tokens fit.
int64_t LargestContext(PlanRequest r, int64_t limit) {
  int64_t lo = 0, hi = limit / 256;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    r.context_tokens = mid * 256;
    if (PlanSplit(r).ok()) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo * 256;
}

uint64_t TotalNeed(const PlanRequest& r) {
  uint64_t need = r.costs.embedding_bytes + r.costs.output_bytes;
  for (uint64_t b : r.costs.layer_weight_bytes) need += b;
  need += static_cast<uint64_t>(r.costs.layer_weight_bytes.size()) * r.costs.kv_bytes_per_token_per_layer *
          static_cast<uint64_t>(r.context_tokens) * static_cast<uint64_t>(r.max_sequences);
  need += r.scratch_bytes_per_stage * r.workers.size();
  return need;
}

}  // namespace

int RunPlan(std::span<char* const> args) {
  std::string model_path, shape, type = "Q4_K_M", devices, workers, kv_type = "f16";
  std::string split = "auto", tensor_split, output = "text";
  int64_t ctx = 0, batch = 512, max_sequences = 8;
  FlagSet flags(
      "plan (--model FILE.gguf | --shape NAME [--type T]) (--devices SIZE,... | --workers "
      "HOST:PORT,...) [--ctx N] [--kv-type f16|f32|q8_0] [--batch N] [--max-sequences N] "
      "[--split ... | --tensor-split ...] [--output json]",
      kDescription);
  flags.String("model", "FILE", &model_path, "GGUF file (only its header is read)");
  flags.String("shape", "NAME", &shape,
               absl::StrCat("a built-in shape instead: ", absl::StrJoin(SynthPresetNames(), ", ")));
  flags.String("type", "T", &type,
               absl::StrCat("quantization of --shape: ", absl::StrJoin(SynthFileTypes(), ", ")));
  flags.String("devices", "SIZE,...", &devices, "memory of each device, in stage order (24GiB)");
  flags.String("workers", "HOST:PORT,...", &workers, "ask these workers for their free memory");
  std::string token_file, tls_dir;
  flags.String("token-file", "FILE", &token_file, "with --workers: their shared secret");
  flags.String("tls-dir", "DIR", &tls_dir, "with --workers: mutual TLS (ca.pem, cert.pem, key.pem)");
  flags.Int("ctx", "N", &ctx, "context per sequence (default: serve's, the model's up to 4096)");
  flags.String("kv-type", "TYPE", &kv_type, "KV cache element type: f16, f32 or q8_0");
  flags.Int("batch", "N", &batch, "token rows per micro-batch (sizes the scratch buffers)");
  flags.Int("max-sequences", "N", &max_sequences, "sequences in flight, each with its own KV cache");
  flags.String("split", "auto|N,N,...", &split, "layers per device, or auto (work per token by free memory)");
  flags.String("tensor-split", "R,R,...", &tensor_split, "ratios per device (llama.cpp's)");
  flags.String("output", "FORMAT", &output, "text or json");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (model_path.empty() == shape.empty()) {
    std::cerr << "error: give --model FILE.gguf or --shape NAME\n";
    return 2;
  }
  if (devices.empty() == workers.empty()) {
    std::cerr << "error: give --devices SIZE,... or --workers HOST:PORT,...\n";
    return 2;
  }
  if (output != "text" && output != "json") {
    std::cerr << "error: --output must be text or json\n";
    return 2;
  }
  if (ctx < 0 || batch < 1 || max_sequences < 1) {
    std::cerr << "error: --ctx must not be negative, --batch and --max-sequences positive\n";
    return 2;
  }
  auto model = LoadModel(model_path, shape, type);
  if (!model.ok()) return ReportError(model.status());
  auto kv = ParseKvCacheType(kv_type);
  if (!kv.ok()) return ReportError(Annotate(kv.status(), "--kv-type"));
  const HParams& hp = model->hp;

  PlanRequest request;
  auto costs = ModelCostsFromTensors(model->tensors, hp, BytesPerElement(*kv));
  if (!costs.ok()) return ReportError(costs.status());
  request.costs = *costs;
  if (!devices.empty()) {
    int i = 0;
    for (absl::string_view d : absl::StrSplit(devices, ',', absl::SkipWhitespace())) {
      auto bytes = ParseBytes(d);
      if (!bytes.ok()) return ReportError(Annotate(bytes.status(), "--devices"));
      request.workers.push_back({absl::StrCat("device", i++), *bytes});
    }
  } else {
    std::string token;
    if (!token_file.empty()) {
      auto read = ReadPeerToken(token_file);
      if (!read.ok()) return ReportError(Annotate(read.status(), "--token-file"));
      token = *read;
    }
    std::optional<TlsFiles> tls;
    if (!tls_dir.empty()) {
      auto read = ReadTlsDir(tls_dir);
      if (!read.ok()) return ReportError(Annotate(read.status(), "--tls-dir"));
      tls = *read;
    }
    for (absl::string_view w : absl::StrSplit(workers, ',', absl::SkipWhitespace())) {
      auto link = WorkerLink::Connect(std::string(w), token, tls);
      if (!link.ok()) return ReportError(link.status());
      request.workers.push_back({std::string(w), (*link)->hello().free_memory_bytes()});
    }
  }
  request.context_tokens = ctx > 0 ? ctx : DefaultContext(hp);  // serve's default
  request.max_sequences = max_sequences;
  request.scratch_bytes_per_stage = StageScratchBytes(hp, batch);
  if (split != "auto" && !tensor_split.empty()) {
    std::cerr << "error: give --split or --tensor-split, not both\n";
    return 2;
  }
  if (split != "auto") {
    auto counts = ParseLayerCounts(split);
    if (!counts.ok()) return ReportError(Annotate(counts.status(), "--split"));
    request.layer_counts = *counts;
  }
  if (!tensor_split.empty()) {
    auto ratios = ParseRatios(tensor_split);
    if (!ratios.ok()) return ReportError(Annotate(ratios.status(), "--tensor-split"));
    request.ratios = *ratios;
  }

  // The formula people know, and the planner's own figure must agree.
  const double kv_bytes_element = BytesPerElement(*kv);
  const double kv_per_token = 2.0 * hp.n_layer * hp.n_head_kv * hp.head_dim * kv_bytes_element;
  uint64_t weights = request.costs.embedding_bytes + request.costs.output_bytes;
  for (uint64_t b : request.costs.layer_weight_bytes) weights += b;
  const absl::StatusOr<std::vector<StagePlan>> plan = PlanSplit(request);
  if (!plan.ok() && plan.status().code() != absl::StatusCode::kResourceExhausted) {
    return ReportError(plan.status());
  }
  // Memory's limit, up to a million tokens; the training context is said
  // beside it (going past it needs RoPE scaling).
  const int64_t largest = LargestContext(request, int64_t{1} << 20);
  uint64_t free_total = 0, largest_device = 0;
  for (const WorkerMemory& w : request.workers) {
    free_total += w.free_bytes;
    largest_device = std::max(largest_device, w.free_bytes);
  }

  std::vector<std::string> suggestions;
  Json j = Json::object();
  j["model"] = model->name;
  j["n_layer"] = hp.n_layer;
  j["bits_per_weight"] = model->bits_per_weight;
  j["weights_bytes"] = weights;
  j["kv_type"] = kv_type;
  j["kv_bytes_per_token"] = kv_per_token;
  j["context_tokens"] = request.context_tokens;
  j["max_sequences"] = max_sequences;
  j["kv_bytes"] = kv_per_token * request.context_tokens * max_sequences;
  j["scratch_bytes_per_stage"] = request.scratch_bytes_per_stage;
  j["fits"] = plan.ok();
  j["largest_context"] = largest;
  j["n_ctx_train"] = hp.n_ctx_train;
  Json stages = Json::array();
  if (plan.ok()) {
    for (const StagePlan& s : *plan) {
      Json st = Json::object();
      st["device"] = request.workers[s.worker].name;
      st["layers"] = Json::array({s.first_layer, s.end_layer - 1});
      st["weights_bytes"] = s.weight_bytes;
      st["kv_bytes"] = s.kv_bytes;
      st["scratch_bytes"] = s.total_bytes - s.weight_bytes - s.kv_bytes;
      st["total_bytes"] = s.total_bytes;
      st["free_bytes"] = request.workers[s.worker].free_bytes;
      st["headroom_bytes"] = static_cast<int64_t>(request.workers[s.worker].free_bytes) -
                             static_cast<int64_t>(s.total_bytes);
      st["read_bytes_per_token"] = s.read_bytes_per_token;
      stages.push_back(std::move(st));
    }
  } else {
    const uint64_t need = TotalNeed(request);
    j["shortfall_bytes"] = need > free_total ? need - free_total : 0;
    j["error"] = std::string(plan.status().message());
    if (largest >= 256) {
      suggestions.push_back(absl::StrFormat("--ctx %d (the largest context that fits)", largest));
    }
    for (const auto& [name, bpw] : std::vector<std::pair<const char*, double>>{
             {"Q4_K_M", 4.89}, {"Q3_K_M", 3.91}, {"IQ3_XXS", 3.06}, {"Q2_K", 2.96},
             {"IQ2_XS", 2.31}}) {
      if (bpw >= model->bits_per_weight - 0.05) continue;
      PlanRequest smaller = request;
      smaller.costs = Requantized(request.costs, bpw / model->bits_per_weight);
      if (PlanSplit(smaller).ok()) {  // the largest quantization that fits
        suggestions.push_back(absl::StrFormat(
            "a %s file (about %.2f bits per weight, %s of weights; estimated)", name, bpw,
            HumanBytes(static_cast<uint64_t>(weights * bpw / model->bits_per_weight))));
        break;
      }
    }
    if (max_sequences > 1) {
      PlanRequest fewer = request;
      for (fewer.max_sequences = max_sequences - 1; fewer.max_sequences >= 1; --fewer.max_sequences) {
        if (PlanSplit(fewer).ok()) {
          suggestions.push_back(absl::StrFormat("--max-sequences %d", fewer.max_sequences));
          break;
        }
      }
    }
    if (request.layer_counts.empty() && request.ratios.empty()) {
      for (int extra = 1; extra <= 64; ++extra) {
        PlanRequest more = request;
        for (int k = 0; k < extra; ++k) {
          more.workers.push_back({absl::StrCat("another ", HumanBytes(largest_device)), largest_device});
        }
        if (PlanSplit(more).ok()) {
          suggestions.push_back(absl::StrFormat("%d more %s device%s", extra,
                                                HumanBytes(largest_device), extra > 1 ? "s" : ""));
          break;
        }
      }
    }
  }
  j["stages"] = std::move(stages);
  j["suggestions"] = suggestions;

  if (output == "json") {
    std::cout << j.dump(2) << "\n";
    return plan.ok() ? 0 : 3;
  }
  std::cout << absl::StrFormat(
      "model: %s: %d layers, %.2f bits per weight, %s of weights\n"
      "KV cache per token: 2 x %d layers x %d kv heads x %d head dim x %g bytes (%s) = %s\n"
      "context: %d tokens x %d sequences = %s of KV cache; scratch %s per stage\n",
      model->name, hp.n_layer, model->bits_per_weight, HumanBytes(weights), hp.n_layer,
      hp.n_head_kv, hp.head_dim, kv_bytes_element, kv_type,
      HumanBytes(static_cast<uint64_t>(kv_per_token)), request.context_tokens, max_sequences,
      HumanBytes(static_cast<uint64_t>(kv_per_token * request.context_tokens * max_sequences)),
      HumanBytes(request.scratch_bytes_per_stage));
  if (plan.ok()) {
    std::cout << "\n" << DescribePlan(*plan, request) << "\n";
    std::cout << absl::StrFormat("fits. The largest context that fits: %d tokens per sequence "
                                 "(%d sequences); the model was trained on %d.\n",
                                 largest, max_sequences, hp.n_ctx_train);
    return 0;
  }
  std::cout << "\ndoes not fit: " << plan.status().message() << "\n";
  if (j.contains("shortfall_bytes") && j["shortfall_bytes"].get<uint64_t>() > 0) {
    std::cout << "short by " << HumanBytes(j["shortfall_bytes"].get<uint64_t>())
              << " in all (" << HumanBytes(TotalNeed(request)) << " needed, "
              << HumanBytes(free_total) << " free)\n";
  }
  if (suggestions.empty()) {
    std::cout << "nothing simple fits: fewer sequences (--max-sequences) or more devices\n";
  } else {
    std::cout << "would fit with any one of:\n";
    for (const std::string& s : suggestions) std::cout << "  - " << s << "\n";
  }
  return 3;
}

}  // namespace layerpool::cli
