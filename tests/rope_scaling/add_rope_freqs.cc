// add_rope_freqs IN.gguf OUT.gguf FACTOR ORIGINAL_CTX [LOW HIGH]: a copy of a
// llama GGUF with Llama 3.1's rope_freqs.weight added, computed as
// convert_hf_to_gguf.py does (model/synth's Llama3RopeFactors).
// add_rope_freqs --yarn IN.gguf OUT.gguf FACTOR ORIGINAL_CTX: a copy with
// YaRN metadata instead (rope.scaling.type yarn, .factor,
// .original_context_length).
// On a trained model these make files whose outputs depend on the scaling,
// for holding the engine to llama.cpp (check_rope_scaling.py).
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "model/gguf/gguf.h"
#include "model/gguf/writer.h"
#include "model/hparams/hparams.h"
#include "model/synth/synth.h"

int main(int argc, char** argv) {
  using namespace layerpool;
  const bool yarn = argc > 1 && std::strcmp(argv[1], "--yarn") == 0;
  if (yarn) {
    ++argv;
    --argc;
  }
  if (argc != 5 && argc != 7) {
    std::cerr << "usage: add_rope_freqs IN.gguf OUT.gguf FACTOR ORIGINAL_CTX [LOW HIGH]\n";
    return 2;
  }
  auto file = gguf::GgufFile::Open(argv[1]);
  if (!file.ok()) {
    std::cerr << "error: " << file.status().message() << "\n";
    return 1;
  }
  auto hp = ReadHParams(**file);
  if (!hp.ok()) {
    std::cerr << "error: " << hp.status().message() << "\n";
    return 1;
  }
  SynthShape shape;
  shape.n_embd = hp->n_rot * hp->n_head;  // Llama3RopeFactors reads n_embd / n_head
  shape.n_head = hp->n_head;
  shape.rope_freq_base = hp->rope_freq_base;
  shape.llama3_rope_factor = std::atof(argv[3]);
  shape.llama3_original_ctx = std::atoll(argv[4]);
  if (argc == 7) {
    shape.llama3_low_freq_factor = std::atof(argv[5]);
    shape.llama3_high_freq_factor = std::atof(argv[6]);
  }
  const std::vector<float> factors = Llama3RopeFactors(shape);
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : (*file)->metadata()) {
    if (kv.key != "general.alignment") w.Set(kv.key, kv.value);
  }
  if (yarn) {
    const std::string a = hp->architecture + ".";
    w.Set(a + "rope.scaling.type", gguf::Value::String("yarn"));
    w.Set(a + "rope.scaling.factor", gguf::Value::Float32(static_cast<float>(std::atof(argv[3]))));
    w.Set(a + "rope.scaling.original_context_length",
          gguf::Value::Uint32(static_cast<uint32_t>(std::atoll(argv[4]))));
  }
  for (const gguf::TensorInfo& t : (*file)->tensors()) {
    auto data = (*file)->TensorData(t);
    if (!data.ok() || !w.AddTensor(t.name, t.type, t.shape,
                                   std::vector<uint8_t>(data->begin(), data->end())).ok()) {
      std::cerr << "error: copying " << t.name << "\n";
      return 1;
    }
  }
  std::vector<uint8_t> bytes(4 * factors.size());
  std::memcpy(bytes.data(), factors.data(), bytes.size());
  if (!yarn && !w.AddTensor("rope_freqs.weight", GgmlType::kF32,
                            {static_cast<int64_t>(factors.size())}, std::move(bytes)).ok()) {
    std::cerr << "error: adding rope_freqs.weight\n";
    return 1;
  }
  if (absl::Status s = w.WriteFile(argv[2]); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
