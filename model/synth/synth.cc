#include "model/synth/synth.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/hparams/arch.h"
#include "model/quant/quantize.h"
#include "model/synth/synth_vocab.h"

namespace layerpool {
namespace {

struct Preset {
  const char* name;
  SynthShape shape;
};

// {n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, rope base, eps}
const Preset kPresets[] = {
    {"synth-12L", {256, 12, 8, 4, 768, 2048, 512, 10000.0, 1e-5}},
    {"llama-1b", {2048, 16, 32, 8, 8192, 32000, 4096, 10000.0, 1e-5}},
    {"llama-8b", {4096, 32, 32, 8, 14336, 128256, 8192, 500000.0, 1e-5}},
    {"llama-70b", {8192, 80, 64, 8, 28672, 128256, 8192, 500000.0, 1e-5}},
    {"llama-405b", {16384, 126, 128, 8, 53248, 128256, 8192, 500000.0, 1e-5}},
    {"mixtral-8x7b", {.n_embd = 4096, .n_layer = 32, .n_head = 32, .n_head_kv = 8, .n_ff = 14336,
                      .n_vocab = 32000, .n_ctx = 32768, .rope_freq_base = 1e6, .rms_eps = 1e-5,
                      .n_expert = 8, .n_expert_used = 2}},
};

// How llama-quantize types each tensor for a file type (llama_ftype).
struct Recipe {
  const char* name;
  int64_t ftype;
  GgmlType base;    // token_embd and the layer matrices
  GgmlType output;  // output.weight, or token_embd when there is none
  bool more_bits;   // Q6_K for attn_v / ffn_down of use_more_bits layers
  GgmlType fused_qkv = GgmlType::kF32;  // attn_qkv when not base (F32: base)
};

const Recipe kRecipes[] = {
    {"F32", 0, GgmlType::kF32, GgmlType::kF32, false},
    {"F16", 1, GgmlType::kF16, GgmlType::kF16, false},
    {"BF16", 32, GgmlType::kBF16, GgmlType::kBF16, false},
    {"Q8_0", 7, GgmlType::kQ8_0, GgmlType::kQ8_0, false},
    {"Q4_0", 2, GgmlType::kQ4_0, GgmlType::kQ6_K, false},
    {"Q4_K_M", 15, GgmlType::kQ4_K, GgmlType::kQ6_K, true, GgmlType::kQ5_K},
    {"Q6_K", 18, GgmlType::kQ6_K, GgmlType::kQ6_K, false},
};

const Recipe* FindRecipe(absl::string_view name) {
  for (const Recipe& r : kRecipes) {
    if (absl::EqualsIgnoreCase(r.name, name)) return &r;
  }
  return nullptr;
}

// llama.cpp's use_more_bits(i_layer, n_layers).
bool UseMoreBits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// A type whose block fits rows of length `row`; llama-quantize also falls
// back when 256 does not divide a row (it picks Q5_0/Q8_0; we have Q8_0).
GgmlType FitRow(GgmlType type, int64_t row) {
  if (RowBytes(type, row)) return type;
  if (RowBytes(GgmlType::kQ8_0, row)) return GgmlType::kQ8_0;
  return GgmlType::kF16;
}

// splitmix64: a fast, well-mixed generator; one stream per row.
uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fills `out` with N(mean, std) by Box-Muller.
void Gaussian(uint64_t seed, float mean, float std, std::span<float> out) {
  uint64_t state = seed;
  for (size_t i = 0; i < out.size(); i += 2) {
    const double u1 = (static_cast<double>(SplitMix(state) >> 11) + 1.0) * 0x1p-53;
    const double u2 = static_cast<double>(SplitMix(state) >> 11) * 0x1p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    out[i] = mean + std * static_cast<float>(r * std::cos(2 * M_PI * u2));
    if (i + 1 < out.size()) {
      out[i + 1] = mean + std * static_cast<float>(r * std::sin(2 * M_PI * u2));
    }
  }
}

struct TensorPlan {
  std::string name;
  GgmlType type;
  std::vector<int64_t> shape;  // ggml order
  float mean, std;
};

std::vector<TensorPlan> PlanTensors(const SynthShape& s, const Recipe& r, const ArchSpec& arch) {
  const int64_t head_dim = SynthHeadDim(s);
  const int64_t q_dim = s.n_head * head_dim, kv_dim = s.n_head_kv * head_dim;
  std::vector<TensorPlan> plan;
  auto matrix = [&](std::string name, GgmlType type, int64_t cols, int64_t rows) {
    plan.push_back({std::move(name), FitRow(type, cols), {cols, rows}, 0.0f, 0.02f});
  };
  auto norm = [&](std::string name) {
    plan.push_back({std::move(name), GgmlType::kF32, {s.n_embd}, 1.0f, 0.05f});
  };
  // Gemma's head is always the embedding table, which llama-quantize then
  // types as an output head.
  const bool tied = arch.scale_embeddings;
  matrix("token_embd.weight", tied ? r.output : r.base, s.n_embd, s.n_vocab);
  norm("output_norm.weight");
  if (!tied) matrix("output.weight", r.output, s.n_embd, s.n_vocab);
  for (int64_t i = 0; i < s.n_layer; ++i) {
    const std::string b = absl::StrCat("blk.", i, ".");
    const GgmlType more =
        r.more_bits && UseMoreBits(i, s.n_layer) ? GgmlType::kQ6_K : r.base;
    // llama.cpp gives the 70B shape (80 layers, 8 query heads per kv head)
    // more bits on attn_v, which is 8x smaller than attn_q.
    GgmlType v_type = more;
    if (s.n_layer == 80 && v_type == GgmlType::kQ4_K) v_type = GgmlType::kQ5_K;
    // And an 8-expert model (Mixtral) Q8_0 attn_k and attn_v, Q5_K attn_output.
    const bool mixtral_mix = s.n_expert == 8 && r.more_bits;
    GgmlType k_type = r.base, o_type = r.base;
    if (mixtral_mix) {
      k_type = v_type = GgmlType::kQ8_0;
      o_type = GgmlType::kQ5_K;
    }
    norm(b + "attn_norm.weight");
    if (arch.fused_qkv) {
      matrix(b + "attn_qkv.weight", r.fused_qkv != GgmlType::kF32 ? r.fused_qkv : r.base,
             s.n_embd, q_dim + 2 * kv_dim);
    } else {
      matrix(b + "attn_q.weight", r.base, s.n_embd, q_dim);
      matrix(b + "attn_k.weight", k_type, s.n_embd, kv_dim);
      matrix(b + "attn_v.weight", v_type, s.n_embd, kv_dim);
    }
    if (arch.qkv_bias) {
      // Large: rotated by position, q and k biases make attention depend
      // sharply on relative position, so the RoPE variant shows in outputs.
      plan.push_back({b + "attn_q.bias", GgmlType::kF32, {q_dim}, 0.0f, 2.0f});
      plan.push_back({b + "attn_k.bias", GgmlType::kF32, {kv_dim}, 0.0f, 2.0f});
      plan.push_back({b + "attn_v.bias", GgmlType::kF32, {kv_dim}, 0.0f, 0.5f});
    }
    matrix(b + "attn_output.weight", o_type, q_dim, s.n_embd);
    norm(b + "ffn_norm.weight");
    if (s.n_expert > 0) {
      // The router stays F32 (llama-quantize leaves ffn_gate_inp alone);
      // each expert's matrices are stacked along a third dimension.
      plan.push_back({b + "ffn_gate_inp.weight", GgmlType::kF32, {s.n_embd, s.n_expert}, 0.0f,
                      0.5f});
      auto experts = [&](std::string name, GgmlType type, int64_t cols, int64_t rows) {
        plan.push_back({std::move(name), FitRow(type, cols), {cols, rows, s.n_expert}, 0.0f,
                        0.02f});
      };
      experts(b + "ffn_gate_exps.weight", r.base, s.n_embd, s.n_ff);
      experts(b + "ffn_up_exps.weight", r.base, s.n_embd, s.n_ff);
      experts(b + "ffn_down_exps.weight", more, s.n_ff, s.n_embd);
    } else if (arch.fused_gate_up) {
      matrix(b + "ffn_up.weight", r.base, s.n_embd, 2 * s.n_ff);  // gate rows, then up rows
    } else {
      matrix(b + "ffn_gate.weight", r.base, s.n_embd, s.n_ff);
      matrix(b + "ffn_up.weight", r.base, s.n_embd, s.n_ff);
    }
    if (s.n_expert == 0) matrix(b + "ffn_down.weight", more, s.n_ff, s.n_embd);
    if (arch.post_norms) {
      norm(b + "post_attention_norm.weight");
      norm(b + "post_ffw_norm.weight");
    }
  }
  return plan;
}

// Draws and quantizes rows [first, first + n) of `t`, split over threads.
absl::Status FillRows(const TensorPlan& t, uint64_t tensor_seed, int threads,
                      int64_t first, int64_t n, std::span<uint8_t> out) {
  const int64_t row_len = t.shape[0];
  const size_t row_bytes = out.size() / static_cast<size_t>(n);
  std::vector<int> failed(threads, 0);
  auto work = [&](int worker) {
    std::vector<float> row(static_cast<size_t>(row_len));
    for (int64_t r = worker; r < n; r += threads) {
      Gaussian(tensor_seed ^ static_cast<uint64_t>((first + r) * 0x2545F4914F6CDD1Dull),
               t.mean, t.std, row);
      if (!QuantizeRow(t.type, row.data(), out.data() + r * row_bytes, row_len)) {
        failed[worker] = 1;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (std::thread& th : pool) th.join();
  if (std::count(failed.begin(), failed.end(), 1) > 0) {
    return absl::InternalError(absl::StrCat(
        "cannot quantize to ", std::string(GetTypeTraits(t.type)->name)));
  }
  return absl::OkStatus();
}

void SetArchitecture(const SynthOptions& o, gguf::GgufWriter& w) {
  using gguf::Value;
  const SynthShape& s = o.shape;
  auto u32 = [](int64_t v) { return Value::Uint32(static_cast<uint32_t>(v)); };
  w.Set("general.architecture", Value::String(o.arch));
  const std::string a = o.arch + ".";
  w.Set("general.type", Value::String("model"));
  w.Set("general.name", Value::String(o.name));
  w.Set(a + "block_count", u32(s.n_layer));
  w.Set(a + "context_length", u32(s.n_ctx));
  w.Set(a + "embedding_length", u32(s.n_embd));
  w.Set(a + "feed_forward_length", u32(s.n_ff));
  w.Set(a + "attention.head_count", u32(s.n_head));
  w.Set(a + "attention.head_count_kv", u32(s.n_head_kv));
  w.Set(a + "rope.freq_base", Value::Float32(static_cast<float>(s.rope_freq_base)));
  w.Set(a + "attention.layer_norm_rms_epsilon",
        Value::Float32(static_cast<float>(s.rms_eps)));
  w.Set("general.file_type", u32(FindRecipe(o.file_type)->ftype));
  w.Set(a + "vocab_size", u32(s.n_vocab));
  w.Set(a + "rope.dimension_count", u32(SynthHeadDim(s)));
  const ArchSpec& arch = *FindArch(o.arch);
  if (arch.window_layers != WindowLayers::kNone) {
    // llama.cpp requires the key for phi3.
    w.Set(a + "attention.sliding_window", u32(s.sliding_window > 0 ? s.sliding_window : s.n_ctx));
  }
  if (s.longrope_original_ctx > 0) {
    // As Phi-3's converter: sqrt(1 + ln(scale) / ln(original)) past it.
    const double scale = static_cast<double>(s.n_ctx) / static_cast<double>(s.longrope_original_ctx);
    const double attn_factor =
        scale <= 1 ? 1.0
                   : std::sqrt(1 + std::log(scale) / std::log(double(s.longrope_original_ctx)));
    w.Set(a + "rope.scaling.original_context_length", u32(s.longrope_original_ctx));
    w.Set(a + "rope.scaling.attn_factor", Value::Float32(static_cast<float>(attn_factor)));
  }
  if (s.n_expert > 0) {
    w.Set(a + "expert_count", u32(s.n_expert));
    w.Set(a + "expert_used_count", u32(s.n_expert_used));
  }
  if (arch.softcap) {  // Gemma 2's values
    w.Set(a + "attn_logit_softcapping", Value::Float32(50.0f));
    w.Set(a + "final_logit_softcapping", Value::Float32(30.0f));
  }
  if (SynthHeadDim(s) * s.n_head != s.n_embd) {
    w.Set(a + "attention.key_length", u32(SynthHeadDim(s)));
    w.Set(a + "attention.value_length", u32(SynthHeadDim(s)));
  }
}

}  // namespace

absl::StatusOr<SynthShape> SynthPreset(absl::string_view name) {
  for (const Preset& p : kPresets) {
    if (p.name == name) return p.shape;
  }
  return absl::NotFoundError(absl::StrCat("unknown preset '", name, "' (known: ",
                                          absl::StrJoin(SynthPresetNames(), ", "), ")"));
}

std::vector<std::string> SynthPresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

std::vector<std::string> SynthFileTypes() {
  std::vector<std::string> names;
  for (const Recipe& r : kRecipes) names.push_back(r.name);
  return names;
}

absl::Status ValidateSynthOptions(const SynthOptions& o) {
  const SynthShape& s = o.shape;
  auto bad = [](absl::string_view what) {
    return absl::InvalidArgumentError(std::string(what));
  };
  if (s.n_embd <= 0) return bad("--dim must be positive");
  if (s.n_layer <= 0) return bad("--layers must be positive");
  if (s.n_head <= 0) return bad("--heads must be positive");
  if (s.n_head_kv <= 0) return bad("--kv-heads must be positive");
  if (s.n_ff <= 0) return bad("--ffn must be positive");
  if (s.n_ctx <= 0) return bad("--ctx must be positive");
  if (o.vocab_from.empty() && s.n_vocab < kMinSynthVocab) {
    return bad(absl::StrCat("--vocab must be at least ", kMinSynthVocab,
                            " (256 bytes and the special tokens)"));
  }
  if (s.head_dim < 0) return bad("--head-dim must not be negative");
  if (s.head_dim == 0 && s.n_embd % s.n_head != 0) {
    return bad(absl::StrCat("--heads ", s.n_head, " does not divide --dim ", s.n_embd,
                            " (or give --head-dim)"));
  }
  if (s.n_head % s.n_head_kv != 0) {
    return bad(absl::StrCat("--kv-heads ", s.n_head_kv, " does not divide --heads ",
                            s.n_head));
  }
  if (SynthHeadDim(s) % 2 != 0) return bad("the head dimension must be even");
  if (FindArch(o.arch) == nullptr) {
    return bad(absl::StrCat("--arch ", o.arch, " is not one synth writes (", ArchNames(), ")"));
  }
  if (s.n_expert < 0 || s.n_expert_used < 0 || (s.n_expert > 0) != (s.n_expert_used > 0) ||
      s.n_expert_used > s.n_expert) {
    return bad("--experts-used must be between 1 and --experts (both or neither)");
  }
  if (s.longrope_original_ctx < 0 || (s.longrope_original_ctx > 0 && !FindArch(o.arch)->long_short_rope)) {
    return bad(absl::StrCat("--longrope-original-ctx is for phi3 (and not negative)"));
  }
  if (s.n_expert > 0 && !FindArch(o.arch)->experts) {
    return bad(absl::StrCat("--arch ", o.arch, " has no experts (Mixtral is --arch llama)"));
  }
  if (FindRecipe(o.file_type) == nullptr) {
    return bad(absl::StrCat("--type ", o.file_type, " is not one synth writes (",
                            absl::StrJoin(SynthFileTypes(), ", "), ")"));
  }
  return absl::OkStatus();
}

int64_t SynthHeadDim(const SynthShape& s) {
  return s.head_dim > 0 ? s.head_dim : s.n_head > 0 ? s.n_embd / s.n_head : 0;
}

std::vector<float> Llama3RopeFactors(const SynthShape& s) {
  std::vector<float> factors;
  if (s.llama3_rope_factor <= 0) return factors;
  const int64_t dim = SynthHeadDim(s);  // rope.dimension_count
  const double old_ctx = static_cast<double>(s.llama3_original_ctx);
  const double low_wavelen = old_ctx / s.llama3_low_freq_factor;
  const double high_wavelen = old_ctx / s.llama3_high_freq_factor;
  for (int64_t i = 0; i < dim; i += 2) {
    // As the converter: freqs in float32, the rest in double.
    const float freq = 1.0f / std::pow(static_cast<float>(s.rope_freq_base),
                                       static_cast<float>(i) / static_cast<float>(dim));
    const double wavelen = 2 * M_PI / static_cast<double>(freq);
    double f;
    if (wavelen < high_wavelen) {
      f = 1;
    } else if (wavelen > low_wavelen) {
      f = s.llama3_rope_factor;
    } else {
      const double smooth = (old_ctx / wavelen - s.llama3_low_freq_factor) /
                            (s.llama3_high_freq_factor - s.llama3_low_freq_factor);
      f = 1 / ((1 - smooth) / s.llama3_rope_factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

std::vector<std::pair<std::string, std::vector<float>>> RopeFactorTensors(const SynthShape& s) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  if (std::vector<float> f = Llama3RopeFactors(s); !f.empty()) {
    out.emplace_back("rope_freqs.weight", std::move(f));
  }
  if (s.longrope_original_ctx > 0) {
    std::vector<float> long_factors, short_factors;
    for (int64_t i = 0; i < SynthHeadDim(s) / 2; ++i) {
      long_factors.push_back(1.0f + 0.5f * static_cast<float>(i));
      short_factors.push_back(1.0f + 0.05f * static_cast<float>(i));
    }
    out.emplace_back("rope_factors_long.weight", std::move(long_factors));
    out.emplace_back("rope_factors_short.weight", std::move(short_factors));
  }
  return out;
}

absl::StatusOr<std::vector<gguf::TensorInfo>> SynthTensorTable(const SynthOptions& o) {
  LP_RETURN_IF_ERROR(ValidateSynthOptions(o));
  std::vector<gguf::TensorInfo> table;
  for (const TensorPlan& t : PlanTensors(o.shape, *FindRecipe(o.file_type), *FindArch(o.arch))) {
    gguf::TensorInfo info;
    info.name = t.name;
    info.type = t.type;
    info.shape = t.shape;
    info.n_elements = 1;
    for (int64_t d : t.shape) info.n_elements *= d;
    info.size_bytes = static_cast<uint64_t>(*RowBytes(t.type, t.shape[0])) *
                      static_cast<uint64_t>(info.n_elements / t.shape[0]);
    table.push_back(std::move(info));
  }
  for (const auto& [name, f] : RopeFactorTensors(o.shape)) {
    gguf::TensorInfo info;
    info.name = name;
    info.shape = {static_cast<int64_t>(f.size())};
    info.n_elements = static_cast<int64_t>(f.size());
    info.size_bytes = 4 * f.size();
    table.push_back(std::move(info));
  }
  return table;
}

absl::StatusOr<HParams> SynthHParams(const SynthOptions& o) {
  LP_RETURN_IF_ERROR(ValidateSynthOptions(o));
  const SynthShape& s = o.shape;
  HParams hp;
  hp.architecture = o.arch;
  hp.n_layer = s.n_layer;
  hp.n_embd = s.n_embd;
  hp.n_ff = s.n_ff;
  hp.n_head = s.n_head;
  hp.n_head_kv = s.n_head_kv;
  hp.head_dim = SynthHeadDim(s);
  hp.n_rot = hp.head_dim;
  hp.n_ctx_train = s.n_ctx;
  hp.n_vocab = s.n_vocab;
  hp.rope_freq_base = s.rope_freq_base;
  hp.rms_eps = s.rms_eps;
  hp.file_type = FindRecipe(o.file_type)->ftype;
  hp.n_expert = s.n_expert;
  hp.n_expert_used = s.n_expert_used;
  return hp;
}

absl::Status WriteSynthModel(const SynthOptions& options, const std::string& path,
                             const gguf::GgufWriter::Progress& progress) {
  SynthOptions o = options;
  gguf::GgufWriter w;
  std::vector<gguf::KeyValue> vocab;
  if (!o.vocab_from.empty()) {
    LP_ASSIGN_OR_RETURN(vocab, CopyTokenizer(o.vocab_from), "--vocab-from");
    for (const gguf::KeyValue& kv : vocab) {
      if (kv.key == "tokenizer.ggml.tokens") {
        o.shape.n_vocab = static_cast<int64_t>(
            std::get<gguf::Array>(kv.value.data).elements.size());
      }
    }
  } else {
    vocab = ByteLevelVocab(o.shape.n_vocab);
  }
  LP_RETURN_IF_ERROR(ValidateSynthOptions(o));
  SetArchitecture(o, w);
  for (gguf::KeyValue& kv : vocab) w.Set(std::move(kv.key), std::move(kv.value));
  w.Set("general.quantization_version", gguf::Value::Uint32(2));

  const int threads = o.threads > 0
                          ? o.threads
                          : std::max(1u, std::thread::hardware_concurrency());
  std::vector<TensorPlan> plan = PlanTensors(o.shape, *FindRecipe(o.file_type), *FindArch(o.arch));
  for (size_t i = 0; i < plan.size(); ++i) {
    const uint64_t tensor_seed = o.seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull;
    const TensorPlan* t = &plan[i];
    LP_RETURN_IF_ERROR(w.AddTensor(
        t->name, t->type, t->shape,
        [t, tensor_seed, threads](int64_t first, int64_t n, std::span<uint8_t> out) {
          return FillRows(*t, tensor_seed, threads, first, n, out);
        }));
  }
  for (const auto& [name, f] : RopeFactorTensors(o.shape)) {
    std::vector<uint8_t> bytes(4 * f.size());
    std::memcpy(bytes.data(), f.data(), bytes.size());
    LP_RETURN_IF_ERROR(
        w.AddTensor(name, GgmlType::kF32, {static_cast<int64_t>(f.size())}, std::move(bytes)));
  }
  return w.WriteFile(path, progress);
}

}  // namespace layerpool
