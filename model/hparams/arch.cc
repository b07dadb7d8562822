#include "model/hparams/arch.h"

namespace layerpool {
namespace {

// As llama.cpp's llm_build_* graphs and llama_model_rope_type() have them.
constexpr ArchSpec kArchitectures[] = {
    {.name = "llama", .experts = true},
    {.name = "qwen2", .neox_rope = true, .qkv_bias = true},
    {.name = "phi3", .neox_rope = true, .fused_qkv = true, .fused_gate_up = true,
     .scale_q_before_attention = true, .window_layers = WindowLayers::kAll,
     .long_short_rope = true},
    {.name = "gemma2", .neox_rope = true, .scale_q_before_attention = true,
     .window_layers = WindowLayers::kEven, .default_window = 4096,
     .ffn_activation = FfnActivation::kGelu, .scale_embeddings = true, .post_norms = true,
     .softcap = true},
};

}  // namespace

const ArchSpec* FindArch(std::string_view name) {
  for (const ArchSpec& a : kArchitectures) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string ArchNames() {
  std::string out;
  for (const ArchSpec& a : kArchitectures) {
    if (!out.empty()) out += ", ";
    out += a.name;
  }
  return out;
}

}  // namespace layerpool
