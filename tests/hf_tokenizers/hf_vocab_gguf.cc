// hf_vocab_gguf TOKENIZER.json TOKENIZER_CONFIG.json PRE OUT.gguf: a
// vocabulary-only GGUF from a Hugging Face byte-level BPE tokenizer, written
// the way llama.cpp's convert_hf_to_gguf.py writes one (get_vocab_base and
// gguf's SpecialVocab): tokens in id order (an id no token has becomes
// "[PAD<id>]", unused), added tokens as control tokens when special and as
// user-defined ones (U+2581 read as a space) when not, the merges as
// "left right", bos/eos from tokenizer_config.json, add_bos_token from it or
// else from the post-processor's template, and tokenizer.ggml.pre = PRE (the
// converter picks it by hashing a tokenization; here it is given). With a
// one-layer llama header, so llama.cpp's llama-tokenize loads it too.
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "model/gguf/writer.h"
#include "nlohmann/json.hpp"

namespace {

using layerpool::gguf::Value;
using layerpool::gguf::ValueType;
using nlohmann::json;

constexpr int32_t kNormal = 1, kUnused = 5, kControl = 3, kUserDefined = 4;

json ReadJson(const char* path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(std::string("cannot read ") + path);
  return json::parse(in);
}

// A token in tokenizer_config.json: a string or {"content": ...}.
std::string TokenText(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.at("content").get<std::string>();
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: hf_vocab_gguf TOKENIZER.json TOKENIZER_CONFIG.json PRE OUT.gguf\n";
    return 2;
  }
  try {
    const json hf = ReadJson(argv[1]);
    const json config = ReadJson(argv[2]);
    const json& model = hf.at("model");
    if (model.at("type") != "BPE") throw std::runtime_error("only BPE tokenizers convert");
    std::map<int64_t, std::pair<std::string, int32_t>> by_id;
    for (const auto& [text, id] : model.at("vocab").items()) by_id[id] = {text, kNormal};
    for (const json& added : hf.at("added_tokens")) {
      const std::string text = added.at("content");
      by_id[added.at("id")] = added.at("special").get<bool>()
                                  ? std::pair{text, kControl}
                                  : std::pair{ReplaceAll(text, "\xE2\x96\x81", " "), kUserDefined};
    }
    const int64_t n = by_id.rbegin()->first + 1;
    std::vector<Value> tokens, types, merges;
    std::map<std::string, int64_t> id_of;
    for (int64_t id = 0; id < n; ++id) {
      auto it = by_id.find(id);
      const std::string text = it != by_id.end() ? it->second.first : "[PAD" + std::to_string(id) + "]";
      tokens.push_back(Value::String(text));
      types.push_back(Value::Int32(it != by_id.end() ? it->second.second : kUnused));
      id_of.emplace(text, id);
    }
    for (const json& m : model.at("merges")) {
      merges.push_back(Value::String(m.is_string() ? m.get<std::string>()
                                                   : m[0].get<std::string>() + " " +
                                                         m[1].get<std::string>()));
    }
    layerpool::gguf::GgufWriter w;
    auto u32 = [](int64_t v) { return Value::Uint32(static_cast<uint32_t>(v)); };
    w.Set("general.architecture", Value::String("llama"));
    w.Set("general.name", Value::String("vocab"));
    for (const char* key : {"llama.block_count", "llama.attention.head_count"}) w.Set(key, u32(1));
    for (const char* key : {"llama.embedding_length", "llama.feed_forward_length"}) {
      w.Set(key, u32(64));
    }
    w.Set("llama.context_length", u32(4096));
    w.Set("llama.attention.layer_norm_rms_epsilon", Value::Float32(1e-5f));
    w.Set("llama.vocab_size", u32(n));
    w.Set("tokenizer.ggml.model", Value::String("gpt2"));
    w.Set("tokenizer.ggml.pre", Value::String(argv[3]));
    w.Set("tokenizer.ggml.tokens", Value::MakeArray(ValueType::kString, std::move(tokens)));
    w.Set("tokenizer.ggml.token_type", Value::MakeArray(ValueType::kInt32, std::move(types)));
    w.Set("tokenizer.ggml.merges", Value::MakeArray(ValueType::kString, std::move(merges)));
    for (const auto& [name, key] : {std::pair{"bos_token", "tokenizer.ggml.bos_token_id"},
                                    std::pair{"eos_token", "tokenizer.ggml.eos_token_id"},
                                    std::pair{"unk_token", "tokenizer.ggml.unknown_token_id"},
                                    std::pair{"pad_token", "tokenizer.ggml.padding_token_id"}}) {
      if (!config.contains(name) || config[name].is_null()) continue;
      if (auto it = id_of.find(TokenText(config[name])); it != id_of.end()) {
        w.Set(key, u32(it->second));
      }
    }
    // add_bos_token: the config's, else whether the post-processor's
    // single-sequence template starts with a special token.
    bool add_bos = false;
    if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
      add_bos = config["add_bos_token"];
    } else if (hf.contains("post_processor") && hf["post_processor"].is_object()) {
      std::ostringstream template_text;
      template_text << hf["post_processor"].dump();
      add_bos = template_text.str().find("\"single\":[{\"SpecialToken\"") != std::string::npos;
    }
    w.Set("tokenizer.ggml.add_bos_token", Value::Bool(add_bos));
    if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) {
      w.Set("tokenizer.ggml.add_eos_token", Value::Bool(config["add_eos_token"].get<bool>()));
    }
    if (auto status = w.WriteFile(argv[4]); !status.ok()) {
      std::cerr << "error: " << status << "\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
