// A model's chat template: an OpenAI-style list of messages to the prompt
// text the model was trained on, by the Jinja template the model ships
// (GGUF `tokenizer.chat_template`) or one given by the user.
//
// The template sees `messages` (each with `role` and `content`, plus any
// other fields the request carried, such as tool_calls), `add_generation_prompt`,
// `bos_token` and `eos_token` (the vocabulary's texts for those tokens), and
// the globals of model/jinja. A message whose content is an array of parts
// ({"type": "text", "text": ...}) is given to the template as that array
// only when the template looks at parts (it mentions `['type']` or
// `.type`); otherwise the parts' texts are joined with "\n", as most
// templates expect a string.
//
// The rendered text holds special-token text ("<|start_header_id|>"): the
// caller tokenizes it with parse_special on, and must keep user text from
// being parsed that way only by not rendering it through here (the roles'
// content is data to the template, not template code).
//
// Thread safety: immutable after construction; Apply may run concurrently.
#ifndef LAYERPOOL_MODEL_CHAT_CHAT_TEMPLATE_H_
#define LAYERPOOL_MODEL_CHAT_CHAT_TEMPLATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/jinja/jinja.h"
#include "nlohmann/json.hpp"

namespace layerpool {

namespace gguf {
class GgufFile;
}
class Tokenizer;

class ChatTemplate {
 public:
  // InvalidArgument (with the template's line) when `source` does not parse.
  [[nodiscard]] static absl::StatusOr<ChatTemplate> FromSource(std::string source,
                                                               std::string bos_token,
                                                               std::string eos_token);
  // The template in the file's metadata, std::nullopt when it has none.
  [[nodiscard]] static absl::StatusOr<std::optional<ChatTemplate>> FromGguf(
      const gguf::GgufFile& file, const Tokenizer& tokenizer);
  // The template in a file (a Jinja source); NotFound when it cannot be read.
  [[nodiscard]] static absl::StatusOr<ChatTemplate> FromFile(const std::string& path,
                                                             std::string bos_token,
                                                             std::string eos_token);
  // What a model's requests use: `override_file` when not empty (the
  // --chat-template flag), else the template in the GGUF at `model_path`
  // (std::nullopt when it has none). BOS/EOS texts from `tokenizer`.
  [[nodiscard]] static absl::StatusOr<std::optional<ChatTemplate>> ForModel(
      const std::string& model_path, const Tokenizer& tokenizer,
      const std::string& override_file);
  // The texts of the vocabulary's BOS and EOS tokens ("" when it has none).
  static std::string BosText(const Tokenizer& tokenizer);
  static std::string EosText(const Tokenizer& tokenizer);

  // Renders `messages` (a JSON array of objects with a string `role`).
  // InvalidArgument naming the message for a malformed one;
  // FailedPrecondition with the template's own message when it refuses the
  // conversation (raise_exception, e.g. "roles must alternate").
  [[nodiscard]] absl::StatusOr<std::string> Apply(const nlohmann::ordered_json& messages,
                                                  bool add_generation_prompt) const;

  // Renders with arbitrary variables (a JSON object); bos_token and
  // eos_token are added unless present. For `layerpool chat-template`.
  [[nodiscard]] absl::StatusOr<std::string> Render(const nlohmann::ordered_json& variables) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  jinja::Template template_;
  std::string bos_, eos_;
  bool wants_parts_ = false;
};

// Token ids for a rendered chat prompt: special-token text the template
// wrote ("<|eot_id|>") becomes those tokens, text from the messages does not
// (a user who types "<|eot_id|>" gets the characters, not the token). When
// no message holds special-token text the whole prompt is tokenized in one
// call, exactly as llama.cpp tokenizes it; otherwise the messages' spans are
// tokenized as plain text between the template's parts. BOS is added when
// the vocabulary wants one and the template did not write it.
std::vector<int32_t> TokenizeChatPrompt(const Tokenizer& tokenizer, const std::string& prompt,
                                        const nlohmann::ordered_json& messages);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_CHAT_CHAT_TEMPLATE_H_
