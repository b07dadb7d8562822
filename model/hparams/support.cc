#include "model/hparams/support.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/hparams/arch.h"
#include "model/quant/types.h"

namespace layerpool {
namespace {

absl::Status Unsupported(const std::string& what) {
  return absl::UnimplementedError(absl::StrCat(what, " is not supported yet"));
}

}  // namespace

absl::Status CheckSupported(const gguf::GgufFile& file, const HParams& hp) {
  const ArchSpec* arch = FindArch(hp.architecture);
  if (arch == nullptr) {
    return absl::UnimplementedError(absl::StrCat("architecture '", hp.architecture,
                                                 "' is not supported yet (layerpool runs ",
                                                 ArchNames(), ")"));
  }
  const std::string a = hp.architecture + ".";
  if (file.FindValue(a + "rope.scaling.type") != nullptr) {
    auto type = file.GetString(a + "rope.scaling.type");
    if (!type.ok()) return type.status();
    if (*type != "linear" && *type != "none" && *type != "yarn") {
      return Unsupported(absl::StrCat("RoPE scaling '", *type, "' (", a, "rope.scaling.type)"));
    }
  }
  if (file.FindValue(a + "expert_count") != nullptr && !arch->experts) {
    return Unsupported(absl::StrCat("mixture of experts in ", hp.architecture, " (", a,
                                    "expert_count)"));
  }
  if (file.FindValue(a + "attention.value_length") != nullptr) {
    auto v = file.GetUint(a + "attention.value_length");
    if (v.ok() && static_cast<int64_t>(*v) != hp.head_dim) {
      return Unsupported(absl::StrCat("a value head size (", *v, ") other than the key's (",
                                      hp.head_dim, ")"));
    }
  }
  for (const gguf::TensorInfo& t : file.tensors()) {
    const bool routed_expert = absl::EndsWith(t.name, ".ffn_gate_inp.weight") ||
                               absl::EndsWith(t.name, ".ffn_gate_exps.weight") ||
                               absl::EndsWith(t.name, ".ffn_up_exps.weight") ||
                               absl::EndsWith(t.name, ".ffn_down_exps.weight");
    if ((routed_expert || absl::StrContains(t.name, "exp")) &&
        !(routed_expert && arch->experts && hp.n_expert > 0)) {
      return Unsupported(absl::StrCat("this kind of mixture of experts (", t.name, ")"));
    }
    if (absl::StrContains(t.name, "attn_qkv") && !arch->fused_qkv) {
      return Unsupported(absl::StrCat("fused QKV (", t.name, ")"));
    }
    if (absl::StrContains(t.name, "rope_factors") && !arch->long_short_rope) {
      return Unsupported(absl::StrCat("long/short RoPE factors in ", hp.architecture, " (",
                                      t.name, ")"));
    }
    const bool qkv_bias = absl::EndsWith(t.name, ".attn_q.bias") ||
                          absl::EndsWith(t.name, ".attn_k.bias") ||
                          absl::EndsWith(t.name, ".attn_v.bias");
    if (absl::EndsWith(t.name, ".bias") && !(qkv_bias && arch->qkv_bias)) {
      return Unsupported(absl::StrCat("bias tensors (", t.name, ")"));
    }
    const std::optional<TypeTraits> traits = GetTypeTraits(t.type);
    if (!traits || !traits->supported) {
      return Unsupported(absl::StrCat("tensor type ", traits ? std::string(traits->name) : "?",
                                      " (", t.name, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace layerpool
