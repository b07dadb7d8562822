// `layerpool tokenize --model FILE.gguf`: JSON strings in, token ids out, one
// line each, with the tokenizer stored in the file (llama_tokenize's ids).

#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace layerpool::cli {
namespace {

constexpr char kDescription[] =
    "Tokenizes text with the tokenizer in a GGUF file's metadata, giving the\n"
    "ids llama.cpp's llama_tokenize gives.\n"
    "\n"
    "stdin:  one JSON string per line, e.g. \"Hello world\\n\" (JSON escapes\n"
    "        carry newlines, tabs and any Unicode). Empty lines are skipped.\n"
    "stdout: for each string, one line holding a compact JSON array of token\n"
    "        ids, e.g. [15043,3186], flushed as soon as it is written.\n"
    "\n"
    "A line that is not one JSON string stops the command: \"error: line N:\n"
    "...\" on stderr and exit status 1, after the results of the lines before\n"
    "it. Exit status 2 means bad flags, 1 an unreadable model.";

// The string on one input line, or why there is none.
absl::StatusOr<std::string> ParseLine(const std::string& line) {
  nlohmann::json value;
  try {
    value = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!value.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a JSON string, got ", value.type_name()));
  }
  return value.get<std::string>();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(
    const std::string& path) {
  gguf::GgufFile::Options options;
  options.map_data = false;  // only the metadata is needed
  // Open names the file in its errors already.
  absl::StatusOr<std::unique_ptr<gguf::GgufFile>> file =
      gguf::GgufFile::Open(path, options);
  if (!file.ok()) return file.status();
  LP_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromGguf(**file), path);
  return tokenizer;
}

}  // namespace

int RunTokenize(std::span<char* const> args) {
  std::string model;
  bool add_special = false;
  bool parse_special = false;
  FlagSet flags("tokenize --model FILE.gguf [--add-special] [--parse-special]",
                kDescription);
  flags.String("model", "FILE", &model,
               "GGUF file whose tokenizer.ggml.* metadata to use (vocab-only\n"
               "files work)");
  flags.Bool("add-special", &add_special,
             "add BOS / EOS as the vocabulary's add_bos_token and\n"
             "add_eos_token say ([CLS] ... [SEP] for BERT)");
  flags.Bool("parse-special", &parse_special,
             "read control-token text in the input (<s>, <|endoftext|>) as\n"
             "that token instead of as plain text");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (model.empty() || !flags.positional().empty()) {
    std::cerr << "error: "
              << (model.empty() ? "--model is required"
                                : "unexpected argument '" +
                                      flags.positional()[0] + "'")
              << "\n(run with --help for the contract)\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(model);
  if (!tokenizer.ok()) return ReportError(tokenizer.status());

  std::string line;
  for (int64_t line_number = 1; std::getline(std::cin, line); ++line_number) {
    if (line.empty()) continue;
    absl::StatusOr<std::string> text = ParseLine(line);
    if (!text.ok()) {
      return ReportError(Annotate(text.status(), "line ", line_number));
    }
    const std::vector<int32_t> ids =
        (*tokenizer)->Encode(*text, add_special, parse_special);
    std::cout << "[" << absl::StrJoin(ids, ",") << "]\n" << std::flush;
  }
  if (std::cin.bad()) {
    return ReportError(absl::DataLossError("reading stdin failed"));
  }
  return 0;
}

}  // namespace layerpool::cli
