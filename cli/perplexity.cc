// `layerpool perplexity`: llama-perplexity's measure on a text file.

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "model/tokenizer/tokenizer.h"
#include "coordinator/planner.h"
#include "nlohmann/json.hpp"
#include "transport/hidden_wire.h"
#include "worker/perplexity.h"

namespace layerpool::cli {
namespace {

absl::StatusOr<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read --file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  // llama.cpp's -f drops one trailing newline.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace

int RunPerplexity(std::span<char* const> args) {
  EngineFlags engine;
  engine.ctx = 128;
  engine.batch = 0;
  std::string text_file, output = "text", split, activation_type = "f32";
  FlagSet flags(
      "perplexity --model FILE.gguf --file TEXT [--ctx 128] [--batch N] "
      "[--threads N] [--split N,N,... --activation-type T] [--output json]",
      "Measures perplexity as llama-perplexity does: the text is tokenized "
      "with BOS, cut into\nchunks of --ctx tokens (each starting with BOS), "
      "and the second half of each chunk is\nscored. Prints the running value "
      "per chunk and the final one; --output json prints\n{\"ppl\":..,"
      "\"chunks\":..} only. With --split, the model runs as that pipeline "
      "would, in this\nprocess: the hidden states between stages are rounded "
      "to --activation-type as the\nlinks send them, so its effect on "
      "perplexity shows.");
  engine.Register(flags);
  flags.String("file", "TEXT", &text_file, "the text to score");
  flags.String("split", "N,N,...", &split,
               "layers per stage of a pipeline to score in this process (default: one stage)");
  flags.String("activation-type", "f32|f16|bf16|q8_0", &activation_type,
               "with --split: the element type of the hidden states between stages");
  flags.String("output", "FORMAT", &output, "text or json");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (engine.model.empty() || text_file.empty()) {
    std::cerr << "error: --model and --file are required\n";
    return 2;
  }
  if (output != "text" && output != "json") {
    std::cerr << "error: --output must be text or json\n";
    return 2;
  }
  if (engine.batch == 0) engine.batch = engine.ctx;  // llama.cpp: one chunk per batch
  if (absl::Status s = engine.Validate(); !s.ok()) return ReportError(s);

  auto run = [&]() -> absl::StatusOr<PerplexityResult> {
    LP_ASSIGN_OR_RETURN(std::string text, ReadText(text_file));
    LP_ASSIGN_OR_RETURN(auto file,
                        gguf::GgufFile::Open(engine.model, {.map_data = false}));
    LP_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromGguf(*file), engine.model);
    LP_ASSIGN_OR_RETURN(StageOptions options, engine.ToStageOptions());
    LP_ASSIGN_OR_RETURN(const v1::ElementType wire, ParseActivationType(activation_type));
    std::vector<int64_t> counts;
    if (!split.empty()) {
      LP_ASSIGN_OR_RETURN(counts, ParseLayerCounts(split), "--split");
    }
    // One stage per layer count, in order; the whole model when none.
    std::vector<std::unique_ptr<Stage>> stages;
    int64_t first = 0;
    for (size_t i = 0; i < std::max<size_t>(counts.size(), 1); ++i) {
      StageOptions o = options;
      o.first_layer = first;
      o.last_layer = counts.empty() ? -1 : first + counts[i];  // one past
      LP_ASSIGN_OR_RETURN(auto stage, Stage::Create(*file, o),
                          absl::StrCat("--split: stage ", i));
      first = o.last_layer;
      stages.push_back(std::move(stage));
    }
    if (!counts.empty() && first != stages.front()->hparams().n_layer) {
      return absl::InvalidArgumentError(absl::StrCat("--split: the stages hold ", first,
                                                     " layers, the model has ",
                                                     stages.front()->hparams().n_layer));
    }
    std::vector<Stage*> chain;
    for (auto& s : stages) chain.push_back(s.get());
    const int64_t n_embd = chain.front()->hparams().n_embd;
    if (WireRowBytes(wire, n_embd) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--activation-type ", activation_type, " needs an n_embd that is a multiple of 32; ",
          "this model's is ", n_embd));
    }
    const std::vector<int32_t> tokens = tokenizer->Encode(text, true);
    if (output == "text") {
      std::cout << absl::StrFormat("%d tokens, %d chunks of %d\n", tokens.size(),
                                   tokens.size() / engine.ctx, engine.ctx);
    }
    auto wire_round_trip = [&](std::span<float> hidden) {
      (void)RoundTripWire(wire, hidden, n_embd);  // checked above
    };
    return Perplexity(chain, tokens, tokenizer->bos_id(), engine.ctx, engine.batch,
                      wire_round_trip, [&](int64_t chunk, double running) {
                        if (output == "text") {
                          std::cout << absl::StrFormat("[%d]%.4f ", chunk + 1, running)
                                    << std::flush;
                        }
                      });
  };
  auto result = run();
  if (!result.ok()) return ReportError(result.status());
  if (output == "json") {
    nlohmann::ordered_json j = {{"ppl", result->ppl}, {"chunks", result->chunks}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << absl::StrFormat("\nperplexity: %.4f +/- %.5f\n", result->ppl,
                                 result->ppl_stderr);
  }
  return 0;
}

}  // namespace layerpool::cli
