// `layerpool embed --model FILE.gguf`: embeddings in this process, one per
// JSON string on stdin: the prompt's final-norm hidden states pooled (mean,
// cls or last) and L2-normalised, exactly as the HTTP API's /v1/embeddings
// computes them through a pipeline (worker/pooling.h).

#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "worker/pooling.h"
#include "worker/stage.h"

namespace layerpool::cli {
namespace {

constexpr char kDescription[] =
    "Computes embeddings in this process (the check for the HTTP API's\n"
    "/v1/embeddings through a pipeline). stdin: one JSON string per line;\n"
    "stdout: one JSON array of n_embd floats per line. BOS is added as the\n"
    "model says. --pooling defaults to the model's pooling_type (cls or last),\n"
    "else mean.";

absl::StatusOr<std::vector<float>> Embed(Stage& stage, const std::vector<int32_t>& tokens,
                                         int64_t batch, Pooling pooling) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  LP_ASSIGN_OR_RETURN(auto cache, stage.NewCache(n));
  EmbeddingPool pool(stage.hparams().n_embd);
  std::vector<float> unused, normed;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t rows = std::min(batch, n - first);
    std::vector<int32_t> positions(rows);
    std::vector<KvCache*> caches(rows, cache.get());
    std::vector<int64_t> embed_rows(rows);
    for (int64_t i = 0; i < rows; ++i) {
      positions[i] = static_cast<int32_t>(first + i);
      embed_rows[i] = i;
    }
    StageBatch b;
    b.tokens = std::span<const int32_t>(tokens.data() + first, rows);
    b.positions = positions;
    b.caches = caches;
    b.embed_rows = embed_rows;
    LP_RETURN_IF_ERROR(stage.Forward(b, &unused, &normed));
    const int64_t d = stage.hparams().n_embd;
    for (int64_t i = 0; i < rows; ++i) pool.Add(std::span<const float>(normed.data() + i * d, d));
  }
  return pool.Result(pooling);
}

}  // namespace

int RunEmbed(std::span<char* const> args) {
  EngineFlags engine;
  std::string pooling_name;
  FlagSet flags("embed --model FILE.gguf [--pooling mean|cls|last] [--threads N] [--batch N]",
                kDescription);
  engine.Register(flags);
  flags.String("pooling", "TYPE", &pooling_name, "mean, cls or last (default: the model's)");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (engine.model.empty()) {
    std::cerr << "error: --model is required\n";
    return 2;
  }
  if (absl::Status s = engine.Validate(); !s.ok()) return ReportError(s);
  auto file = gguf::GgufFile::Open(engine.model, {.map_data = false});
  if (!file.ok()) return ReportError(file.status());
  auto tokenizer = Tokenizer::FromGguf(**file);
  if (!tokenizer.ok()) return ReportError(tokenizer.status());
  auto options = engine.ToStageOptions();
  if (!options.ok()) return ReportError(options.status());
  auto stage = Stage::Create(**file, *options);
  if (!stage.ok()) return ReportError(stage.status());
  const int64_t model_pooling = (*stage)->hparams().pooling_type;
  Pooling pooling = model_pooling == 2 ? Pooling::kCls
                    : model_pooling == 3 ? Pooling::kLast : Pooling::kMean;
  if (pooling_name == "mean") {
    pooling = Pooling::kMean;
  } else if (pooling_name == "cls") {
    pooling = Pooling::kCls;
  } else if (pooling_name == "last") {
    pooling = Pooling::kLast;
  } else if (!pooling_name.empty()) {
    std::cerr << "error: --pooling must be mean, cls or last\n";
    return 2;
  }
  std::string line;
  int line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (line.empty()) continue;
    nlohmann::json text;
    try {
      text = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return ReportError(absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": not valid JSON: ", e.what())));
    }
    if (!text.is_string()) {
      return ReportError(absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": expected a JSON string")));
    }
    const std::vector<int32_t> tokens = (*tokenizer)->Encode(text.get<std::string>(), true);
    if (tokens.empty()) {
      return ReportError(absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": no tokens")));
    }
    auto v = Embed(**stage, tokens, engine.batch, pooling);
    if (!v.ok()) return ReportError(Annotate(v.status(), "line ", line_number));
    std::cout << nlohmann::json(*v).dump() << std::endl;
  }
  return 0;
}

}  // namespace layerpool::cli
