// `layerpool chat-template`: renders a chat template, the model's or a
// file's, with variables read as one JSON object on stdin. Shows what
// prompt a conversation becomes, and is how tests/chat_templates holds the
// interpreter to python3-jinja2.

#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "model/chat/chat_template.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"

namespace layerpool::cli {
namespace {

constexpr char kDescription[] =
    "Renders a chat template and prints the result (no newline added).\n"
    "\n"
    "stdin:  one JSON object: the template's variables, e.g.\n"
    "        {\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],\n"
    "         \"add_generation_prompt\": true}\n"
    "        bos_token and eos_token default to the model's token texts.\n"
    "        With --messages the object's messages go through the same path as\n"
    "        an HTTP chat request (text parts joined, roles checked).\n"
    "\n"
    "The template is --chat-template FILE if given, else the model's\n"
    "tokenizer.chat_template. Exit status 1 with \"error: ...\" when the\n"
    "template does not parse or raises (its own message is shown).";

}  // namespace

int RunChatTemplate(std::span<char* const> args) {
  std::string model, template_file;
  bool as_request = false;
  FlagSet flags("chat-template (--model FILE.gguf | --chat-template FILE) [--messages] < vars.json",
                kDescription);
  flags.String("model", "FILE", &model, "GGUF file: its chat template and BOS/EOS texts");
  flags.String("chat-template", "FILE", &template_file, "a Jinja template file instead");
  flags.Bool("messages", &as_request,
             "render {messages, add_generation_prompt} as a chat request would");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (model.empty() && template_file.empty()) {
    std::cerr << "error: give --model or --chat-template\n";
    return 2;
  }
  std::optional<ChatTemplate> chat;
  if (!model.empty()) {
    auto file = gguf::GgufFile::Open(model, {.map_data = false});
    if (!file.ok()) return ReportError(file.status());
    auto tokenizer = Tokenizer::FromGguf(**file);
    if (!tokenizer.ok()) return ReportError(tokenizer.status());
    auto found = ChatTemplate::ForModel(model, **tokenizer, template_file);
    if (!found.ok()) return ReportError(found.status());
    if (!found->has_value()) {
      return ReportError(absl::FailedPreconditionError(
          absl::StrCat(model, " has no tokenizer.chat_template; give --chat-template FILE")));
    }
    chat = std::move(**found);
  } else {
    auto parsed = ChatTemplate::FromFile(template_file, "", "");
    if (!parsed.ok()) return ReportError(parsed.status());
    chat = std::move(*parsed);
  }
  std::stringstream input;
  input << std::cin.rdbuf();
  nlohmann::ordered_json variables;
  try {
    variables = nlohmann::ordered_json::parse(input.str());
  } catch (const nlohmann::json::exception& e) {
    return ReportError(absl::InvalidArgumentError(absl::StrCat("stdin: not JSON: ", e.what())));
  }
  absl::StatusOr<std::string> out =
      as_request && variables.is_object()
          ? chat->Apply(variables.value("messages", nlohmann::ordered_json()),
                        variables.value("add_generation_prompt", true))
          : chat->Render(variables);
  if (!out.ok()) return ReportError(out.status());
  std::cout << *out << std::flush;
  return 0;
}

}  // namespace layerpool::cli
