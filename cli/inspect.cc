// `layerpool inspect FILE.gguf`: what a model file holds and what it costs.

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "model/gguf/gguf.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "model/hparams/hparams.h"
#include "model/hparams/support.h"

namespace layerpool::cli {
namespace {

std::string Bytes(double b) {
  return HumanBytes(static_cast<uint64_t>(std::llround(b)));
}

std::string Shape(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

void PrintTokenizer(const gguf::GgufFile& file) {
  auto model = file.GetString("tokenizer.ggml.model");
  if (!model.ok()) {
    std::cout << "tokenizer: none in metadata\n";
    return;
  }
  std::cout << "tokenizer: " << *model;
  if (auto pre = file.GetString("tokenizer.ggml.pre"); pre.ok()) {
    std::cout << " (pre-tokenizer " << *pre << ")";
  }
  if (auto tokens = file.GetArray("tokenizer.ggml.tokens"); tokens.ok()) {
    std::cout << ", " << (*tokens)->elements.size() << " tokens";
  }
  if (auto merges = file.GetArray("tokenizer.ggml.merges"); merges.ok()) {
    std::cout << ", " << (*merges)->elements.size() << " merges";
  }
  for (const char* id : {"bos", "eos", "unk", "pad"}) {
    if (auto v = file.GetInt(absl::StrCat("tokenizer.ggml.", id, "_token_id"));
        v.ok()) {
      std::cout << ", " << id << " " << *v;
    }
  }
  std::cout << "\n";
}

void PrintHParams(const HParams& hp) {
  std::cout << "architecture: " << hp.architecture;
  if (!hp.name.empty()) std::cout << " (" << hp.name << ")";
  if (hp.file_type >= 0) {
    std::cout << ", file type " << FileTypeName(hp.file_type);
  }
  std::cout << "\n";
  if (hp.n_layer == 0) return;
  std::cout << absl::StrFormat(
      "hyper-parameters: layers %d, embedding %d, feed-forward %d, heads %d "
      "(kv %d), head dim %d, rope dim %d, rope base %g, rope scale %g, "
      "rms eps %g, context %d, vocab %d\n",
      hp.n_layer, hp.n_embd, hp.n_ff, hp.n_head, hp.n_head_kv, hp.head_dim,
      hp.n_rot, hp.rope_freq_base, hp.rope_freq_scale, hp.rms_eps,
      hp.n_ctx_train, hp.n_vocab);
  if (hp.n_swa > 0) std::cout << "sliding window: " << hp.n_swa << " tokens\n";
  if (hp.n_expert > 0) {
    std::cout << "experts: " << hp.n_expert << ", " << hp.n_expert_used << " per token\n";
  }
  if (hp.attn_softcap > 0 || hp.final_softcap > 0) {
    std::cout << absl::StrFormat("soft caps: attention %g, output %g\n", hp.attn_softcap,
                                 hp.final_softcap);
  }
}

void PrintTensors(const gguf::GgufFile& file) {
  size_t width = 4;
  for (const auto& t : file.tensors()) width = std::max(width, t.name.size());
  std::cout << absl::StrFormat("\n%-*s  %-7s  %-22s  %12s\n",
                               static_cast<int>(width), "name", "type",
                               "shape", "bytes");
  for (const auto& t : file.tensors()) {
    std::cout << absl::StrFormat(
        "%-*s  %-7s  %-22s  %12d\n", static_cast<int>(width), t.name,
        GetTypeTraits(t.type)->name, Shape(t.shape), t.size_bytes);
  }
}

void PrintTotals(const gguf::GgufFile& file, const HParams& hp) {
  std::map<std::string, int> by_type;
  for (const auto& t : file.tensors()) {
    ++by_type[std::string(GetTypeTraits(t.type)->name)];
  }
  std::vector<std::string> counts;
  for (const auto& [name, n] : by_type) counts.push_back(absl::StrCat(name, " x", n));
  const double bytes = static_cast<double>(file.total_tensor_bytes());
  const double elements = static_cast<double>(file.total_elements());
  std::cout << absl::StrFormat(
      "\ntotals: %d tensors (%s), %d parameters, %s of weights, %.3f bits "
      "per weight\n",
      file.tensors().size(), absl::StrJoin(counts, ", "), file.total_elements(),
      Bytes(bytes), elements > 0 ? bytes * 8 / elements : 0.0);
  if (hp.n_layer == 0 || hp.head_dim == 0) return;
  const double kv_f16 = KvBytesPerToken(hp, hp.n_layer, 2.0);
  std::cout << absl::StrFormat(
      "memory: weights %s; KV cache (f16) = 2 x %d layers x %d kv heads x %d "
      "head dim x 2 bytes = %s per token, %s at the model's context of %d\n",
      Bytes(bytes), hp.n_layer, hp.n_head_kv, hp.head_dim, Bytes(kv_f16),
      Bytes(kv_f16 * static_cast<double>(hp.n_ctx_train)), hp.n_ctx_train);
}

}  // namespace

int RunInspect(std::span<char* const> args) {
  bool show_metadata = false;
  bool no_tensors = false;
  FlagSet flags("inspect [--metadata] [--no-tensors] FILE.gguf",
                "Describes a GGUF model file: architecture, hyper-parameters, "
                "tokenizer, tensor table,\ntotals, bits per weight, and the "
                "memory it needs (weights; KV cache per token and at the\n"
                "model's context length). Exits 0 on a valid file; on an "
                "invalid one prints one\n'error: ...' line on stderr and "
                "exits 1.");
  flags.Bool("metadata", &show_metadata, "also list every metadata key/value");
  flags.Bool("no-tensors", &no_tensors, "leave out the tensor table");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (flags.positional().size() != 1) {
    std::cerr << "error: inspect takes exactly one FILE.gguf\n";
    return 2;
  }
  const std::string& path = flags.positional()[0];
  auto file = gguf::GgufFile::Open(path, {.map_data = false});
  if (!file.ok()) return ReportError(file.status());
  auto hp = ReadHParams(**file);
  if (!hp.ok()) return ReportError(Annotate(hp.status(), path));

  const gguf::GgufFile& f = **file;
  std::cout << absl::StrFormat(
      "file: %s (%s, GGUF v%d, %d metadata keys, alignment %d)\n", path,
      Bytes(static_cast<double>(f.file_size())), f.version(),
      f.metadata().size(), f.alignment());
  PrintHParams(*hp);
  absl::Status support = ValidateForInference(*hp);
  if (support.ok()) support = CheckSupported(f, *hp);
  std::cout << "runs on layerpool: "
            << (support.ok() ? "yes" : absl::StrCat("no: ", support.message())) << "\n";
  PrintTokenizer(f);
  if (show_metadata) {
    std::cout << "\nmetadata:\n";
    for (const auto& kv : f.metadata()) {
      std::cout << "  " << kv.key << " = " << kv.value.DebugString() << "\n";
    }
  }
  if (!no_tensors) PrintTensors(f);
  PrintTotals(f, *hp);
  return 0;
}

}  // namespace layerpool::cli
