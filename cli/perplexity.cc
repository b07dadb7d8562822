// `layerpool perplexity`: llama-perplexity's measure on a text file.

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
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
  std::string text_file, output = "text";
  FlagSet flags(
      "perplexity --model FILE.gguf --file TEXT [--ctx 128] [--batch N] "
      "[--threads N] [--output json]",
      "Measures perplexity as llama-perplexity does: the text is tokenized "
      "with BOS, cut into\nchunks of --ctx tokens (each starting with BOS), "
      "and the second half of each chunk is\nscored. Prints the running value "
      "per chunk and the final one; --output json prints\n{\"ppl\":..,"
      "\"chunks\":..} only.");
  engine.Register(flags);
  flags.String("file", "TEXT", &text_file, "the text to score");
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
    LP_ASSIGN_OR_RETURN(auto stage, Stage::Create(*file, options));
    const std::vector<int32_t> tokens = tokenizer->Encode(text, true);
    if (output == "text") {
      std::cout << absl::StrFormat("%d tokens, %d chunks of %d\n", tokens.size(),
                                   tokens.size() / engine.ctx, engine.ctx);
    }
    return Perplexity(*stage, tokens, tokenizer->bos_id(), engine.ctx, engine.batch,
                      [&](int64_t chunk, double running) {
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
