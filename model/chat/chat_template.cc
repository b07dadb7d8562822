#include "model/chat/chat_template.h"

#include <fstream>
#include <iterator>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"

namespace layerpool {

absl::StatusOr<ChatTemplate> ChatTemplate::FromSource(std::string source, std::string bos_token,
                                                      std::string eos_token) {
  LP_ASSIGN_OR_RETURN(jinja::Template t, jinja::Template::Parse(source), "chat template");
  ChatTemplate c;
  c.wants_parts_ = absl::StrContains(source, "['type']") ||
                   absl::StrContains(source, "[\"type\"]") || absl::StrContains(source, ".type");
  c.source_ = std::move(source);
  c.template_ = std::move(t);
  c.bos_ = std::move(bos_token);
  c.eos_ = std::move(eos_token);
  return c;
}

absl::StatusOr<ChatTemplate> ChatTemplate::FromFile(const std::string& path,
                                                    std::string bos_token,
                                                    std::string eos_token) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the chat template ", path));
  std::string source(std::istreambuf_iterator<char>(in), {});
  LP_ASSIGN_OR_RETURN(ChatTemplate t,
                      FromSource(std::move(source), std::move(bos_token), std::move(eos_token)),
                      path);
  return t;
}

absl::StatusOr<std::optional<ChatTemplate>> ChatTemplate::ForModel(
    const std::string& model_path, const Tokenizer& tokenizer, const std::string& override_file) {
  if (!override_file.empty()) {
    LP_ASSIGN_OR_RETURN(ChatTemplate t,
                        FromFile(override_file, BosText(tokenizer), EosText(tokenizer)));
    return t;
  }
  LP_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::Open(model_path, {.map_data = false}));
  return FromGguf(*file, tokenizer);
}

std::string ChatTemplate::BosText(const Tokenizer& tokenizer) {
  return tokenizer.bos_id() >= 0 ? std::string(tokenizer.TokenText(tokenizer.bos_id())) : "";
}

std::string ChatTemplate::EosText(const Tokenizer& tokenizer) {
  return tokenizer.eos_id() >= 0 ? std::string(tokenizer.TokenText(tokenizer.eos_id())) : "";
}

absl::StatusOr<std::optional<ChatTemplate>> ChatTemplate::FromGguf(const gguf::GgufFile& file,
                                                                   const Tokenizer& tokenizer) {
  if (file.FindValue("tokenizer.chat_template") == nullptr) return std::nullopt;
  LP_ASSIGN_OR_RETURN(std::string source, file.GetString("tokenizer.chat_template"));
  LP_ASSIGN_OR_RETURN(ChatTemplate t, FromSource(std::move(source), BosText(tokenizer),
                                                 EosText(tokenizer)),
                      "tokenizer.chat_template");
  return t;
}

absl::StatusOr<std::string> ChatTemplate::Apply(const nlohmann::ordered_json& messages,
                                                bool add_generation_prompt) const {
  if (!messages.is_array() || messages.empty()) {
    return absl::InvalidArgumentError("messages: must be a non-empty array");
  }
  nlohmann::ordered_json normalized = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::ordered_json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("messages[%d]: needs a string 'role'", i));
    }
    nlohmann::ordered_json copy = m;
    if (!m.contains("content") || m["content"].is_null()) {
      copy["content"] = m.contains("tool_calls") ? nlohmann::ordered_json() : "";
    } else if (m["content"].is_array()) {
      std::string joined;
      for (size_t j = 0; j < m["content"].size(); ++j) {
        const nlohmann::ordered_json& part = m["content"][j];
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
            !part.contains("text") || !part["text"].is_string()) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "messages[%d].content[%d]: only {\"type\": \"text\", \"text\": \"...\"} parts "
              "are supported (this model reads text only)", i, j));
        }
        if (j > 0) joined += "\n";
        joined += part["text"].get<std::string>();
      }
      if (!wants_parts_) copy["content"] = joined;
    } else if (!m["content"].is_string()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("messages[%d].content: must be a string or an array of text parts", i));
    }
    normalized.push_back(std::move(copy));
  }
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  variables["messages"] = std::move(normalized);
  variables["add_generation_prompt"] = add_generation_prompt;
  return Render(variables);
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& variables) const {
  if (!variables.is_object()) return absl::InvalidArgumentError("variables: must be an object");
  jinja::Value context = jinja::Value::FromJson(variables);
  jinja::Dict& d = context.mutable_dict();
  if (d.Find("bos_token") == nullptr) d.Set("bos_token", jinja::Value::String(bos_));
  if (d.Find("eos_token") == nullptr) d.Set("eos_token", jinja::Value::String(eos_));
  return template_.Render(d);
}

namespace {

// The texts of a message as a template may print them: its content, or
// each text part.
std::vector<std::string> MessageTexts(const nlohmann::ordered_json& m) {
  std::vector<std::string> out;
  if (!m.is_object() || !m.contains("content")) return out;
  const nlohmann::ordered_json& c = m["content"];
  if (c.is_string()) out.push_back(c.get<std::string>());
  if (c.is_array()) {
    for (const auto& part : c) {
      if (part.is_object() && part.contains("text") && part["text"].is_string()) {
        out.push_back(part["text"].get<std::string>());
      }
    }
  }
  return out;
}

}  // namespace

std::vector<int32_t> TokenizeChatPrompt(const Tokenizer& tokenizer, const std::string& prompt,
                                        const nlohmann::ordered_json& messages) {
  const std::string bos = ChatTemplate::BosText(tokenizer);
  const bool add_bos = tokenizer.add_bos() && !(bos.size() > 0 && prompt.starts_with(bos));
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(tokenizer.bos_id());

  // Where message text that would parse as special tokens sits in the prompt.
  std::vector<std::pair<size_t, size_t>> plain;  // [begin, end) byte ranges
  size_t from = 0;
  for (const auto& m : messages) {
    for (std::string text : MessageTexts(m)) {
      if (tokenizer.Encode(text, false, true) == tokenizer.Encode(text, false, false)) continue;
      size_t at = prompt.find(text, from);
      if (at == std::string::npos) {  // a template that trimmed it
        const size_t b = text.find_first_not_of(" \t\n\r");
        const size_t e = text.find_last_not_of(" \t\n\r");
        if (b == std::string::npos) continue;
        text = text.substr(b, e - b + 1);
        at = prompt.find(text, from);
      }
      if (at == std::string::npos) continue;
      plain.emplace_back(at, at + text.size());
      from = at + text.size();
    }
  }
  if (plain.empty()) {
    std::vector<int32_t> rest = tokenizer.Encode(prompt, false, true);
    ids.insert(ids.end(), rest.begin(), rest.end());
    return ids;
  }
  size_t pos = 0;
  for (const auto& [b, e] : plain) {
    for (int32_t id : tokenizer.Encode(prompt.substr(pos, b - pos), false, true)) ids.push_back(id);
    for (int32_t id : tokenizer.Encode(prompt.substr(b, e - b), false, false)) ids.push_back(id);
    pos = e;
  }
  for (int32_t id : tokenizer.Encode(prompt.substr(pos), false, true)) ids.push_back(id);
  return ids;
}

}  // namespace layerpool
