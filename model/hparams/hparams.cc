#include "model/hparams/hparams.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/hparams/arch.h"

namespace layerpool {
namespace {

// Reads an optional unsigned key into `out`; absent keys leave it unchanged.
absl::Status ReadCount(const gguf::GgufFile& file, const std::string& key,
                       int64_t* out) {
  if (file.FindValue(key) == nullptr) return absl::OkStatus();
  LP_ASSIGN_OR_RETURN(uint64_t v, file.GetUint(key));
  if (v > (uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata key ", key, " = ", v, " is implausibly large"));
  }
  *out = static_cast<int64_t>(v);
  return absl::OkStatus();
}

absl::Status ReadReal(const gguf::GgufFile& file, const std::string& key,
                      double* out) {
  if (file.FindValue(key) == nullptr) return absl::OkStatus();
  LP_ASSIGN_OR_RETURN(*out, file.GetFloat(key));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HParams> ReadHParams(const gguf::GgufFile& file) {
  HParams hp;
  if (file.FindValue("general.architecture") != nullptr) {
    LP_ASSIGN_OR_RETURN(hp.architecture, file.GetString("general.architecture"));
  }
  if (file.FindValue("general.name") != nullptr) {
    LP_ASSIGN_OR_RETURN(hp.name, file.GetString("general.name"));
  }
  if (file.FindValue("general.file_type") != nullptr) {
    LP_ASSIGN_OR_RETURN(hp.file_type, file.GetInt("general.file_type"));
  }
  const std::string a = hp.architecture + ".";
  LP_RETURN_IF_ERROR(ReadCount(file, a + "block_count", &hp.n_layer));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "embedding_length", &hp.n_embd));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "feed_forward_length", &hp.n_ff));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "attention.head_count", &hp.n_head));
  hp.n_head_kv = hp.n_head;
  LP_RETURN_IF_ERROR(
      ReadCount(file, a + "attention.head_count_kv", &hp.n_head_kv));
  if (hp.n_head > 0) hp.head_dim = hp.n_embd / hp.n_head;
  LP_RETURN_IF_ERROR(ReadCount(file, a + "attention.key_length", &hp.head_dim));
  hp.n_rot = hp.head_dim;
  LP_RETURN_IF_ERROR(ReadCount(file, a + "rope.dimension_count", &hp.n_rot));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "context_length", &hp.n_ctx_train));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "pooling_type", &hp.pooling_type));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "vocab_size", &hp.n_vocab));
  if (hp.n_vocab == 0) {
    if (auto tokens = file.GetArray("tokenizer.ggml.tokens"); tokens.ok()) {
      hp.n_vocab = static_cast<int64_t>((*tokens)->elements.size());
    }
  }
  LP_RETURN_IF_ERROR(ReadReal(file, a + "rope.freq_base", &hp.rope_freq_base));
  double scaling_factor = 0;
  LP_RETURN_IF_ERROR(ReadReal(file, a + "rope.scaling.factor", &scaling_factor));
  if (scaling_factor > 0) hp.rope_freq_scale = 1.0 / scaling_factor;
  if (file.FindValue(a + "rope.scaling.type") != nullptr) {
    LP_ASSIGN_OR_RETURN(hp.rope_scaling_type, file.GetString(a + "rope.scaling.type"));
  }
  if (hp.rope_scaling_type == "none") hp.rope_freq_scale = 1.0;  // as llama.cpp
  LP_RETURN_IF_ERROR(
      ReadCount(file, a + "rope.scaling.original_context_length", &hp.rope_yarn_orig_ctx));
  LP_RETURN_IF_ERROR(ReadReal(file, a + "rope.scaling.attn_factor", &hp.rope_attn_factor));
  if (const ArchSpec* arch = FindArch(hp.architecture); arch != nullptr) {
    if (arch->window_layers != WindowLayers::kNone) {
      hp.n_swa = arch->default_window;
      LP_RETURN_IF_ERROR(ReadCount(file, a + "attention.sliding_window", &hp.n_swa));
    }
    if (arch->softcap) {  // llama.cpp's defaults
      hp.attn_softcap = 50.0;
      hp.final_softcap = 30.0;
      LP_RETURN_IF_ERROR(ReadReal(file, a + "attn_logit_softcapping", &hp.attn_softcap));
      LP_RETURN_IF_ERROR(ReadReal(file, a + "final_logit_softcapping", &hp.final_softcap));
    }
  }
  LP_RETURN_IF_ERROR(
      ReadReal(file, a + "attention.layer_norm_rms_epsilon", &hp.rms_eps));

  LP_RETURN_IF_ERROR(ReadCount(file, a + "expert_count", &hp.n_expert));
  LP_RETURN_IF_ERROR(ReadCount(file, a + "expert_used_count", &hp.n_expert_used));
  if (hp.n_expert > 0 && (hp.n_expert_used < 1 || hp.n_expert_used > hp.n_expert)) {
    return absl::InvalidArgumentError(absl::StrCat(
        a, "expert_used_count ", hp.n_expert_used, " is not between 1 and expert_count ",
        hp.n_expert));
  }
  if (hp.n_head > 0 && hp.n_head_kv > 0 && hp.n_head % hp.n_head_kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        a, "attention.head_count ", hp.n_head,
        " is not a multiple of head_count_kv ", hp.n_head_kv));
  }
  if (hp.n_rot > hp.head_dim && hp.head_dim > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        a, "rope.dimension_count ", hp.n_rot, " exceeds the head dimension ",
        hp.head_dim));
  }
  return hp;
}

absl::Status ValidateForInference(const HParams& hp) {
  auto missing = [&](const char* key) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model metadata lacks ", hp.architecture, ".", key));
  };
  if (hp.architecture.empty()) {
    return absl::FailedPreconditionError(
        "model metadata lacks general.architecture");
  }
  if (hp.n_layer <= 0) return missing("block_count");
  if (hp.n_embd <= 0) return missing("embedding_length");
  if (hp.n_ff <= 0) return missing("feed_forward_length");
  if (hp.n_head <= 0) return missing("attention.head_count");
  if (hp.n_vocab <= 0) return missing("vocab_size");
  return absl::OkStatus();
}

int64_t AttentionWindow(const HParams& hp, int64_t layer) {
  const ArchSpec* arch = FindArch(hp.architecture);
  if (arch == nullptr || hp.n_swa <= 0) return 0;
  switch (arch->window_layers) {
    case WindowLayers::kNone: return 0;
    case WindowLayers::kAll: return hp.n_swa;
    case WindowLayers::kEven: return layer % 2 == 0 ? hp.n_swa : 0;
  }
  return 0;
}

int64_t DefaultContext(const HParams& hp) {
  return hp.n_ctx_train > 0 ? std::min<int64_t>(hp.n_ctx_train, 4096) : 4096;
}

double KvBytesPerToken(const HParams& hp, int64_t n_layers,
                       double bytes_per_element) {
  return 2.0 * static_cast<double>(n_layers) *
         static_cast<double>(hp.n_head_kv) * static_cast<double>(hp.head_dim) *
         bytes_per_element;
}

std::string FileTypeName(int64_t file_type) {
  // llama_ftype values (llama.h).
  switch (file_type) {
    case 0: return "all F32";
    case 1: return "mostly F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K - Medium";
    case 11: return "Q3_K - Small";
    case 12: return "Q3_K - Medium";
    case 13: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 21: return "Q2_K - Small";
    case 25: return "IQ4_NL";
    case 30: return "IQ4_XS";
    case 32: return "BF16";
    default: return "unknown";
  }
}

}  // namespace layerpool
