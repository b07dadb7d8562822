#include "model/synth/synth_vocab.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/gguf/gguf.h"

namespace layerpool {
namespace {

constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;

std::string Utf8(uint32_t cp) {
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
// the others are shifted to code points from 256 up.
std::vector<std::string> ByteSymbols() {
  std::vector<std::string> symbols(256);
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable =
        (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    symbols[b] = Utf8(printable ? b : next++);
  }
  return symbols;
}

// Bytes in the order merged tokens are made: space, lowercase, uppercase,
// digits, then everything else.
std::vector<int> ByteOrder() {
  std::vector<int> order;
  std::vector<bool> used(256, false);
  auto take = [&](int b) {
    if (!used[b]) order.push_back(b), used[b] = true;
  };
  take(' ');
  for (int c = 'a'; c <= 'z'; ++c) take(c);
  for (int c = 'A'; c <= 'Z'; ++c) take(c);
  for (int c = '0'; c <= '9'; ++c) take(c);
  for (int b = 0; b < 256; ++b) take(b);
  return order;
}

}  // namespace

std::vector<gguf::KeyValue> ByteLevelVocab(int64_t n_vocab) {
  using gguf::Value;
  using gguf::ValueType;
  const std::vector<std::string> symbols = ByteSymbols();
  const std::vector<int> order = ByteOrder();
  std::vector<Value> tokens, types, merges;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(Value::String(symbols[b]));
    types.push_back(Value::Int32(kTokenNormal));
  }
  const int64_t n_merged = std::max<int64_t>(0, n_vocab - kMinSynthVocab);
  // Pairs of bytes, then a pair followed by a byte: every merge joins two
  // tokens that already exist.
  for (int64_t k = 0; k < n_merged; ++k) {
    std::string left, right;
    if (k < 256 * 256) {
      left = symbols[order[k / 256]];
      right = symbols[order[k % 256]];
    } else {
      const int64_t j = k - 256 * 256;
      const int64_t pair = j / 256;
      left = symbols[order[pair / 256]] + symbols[order[pair % 256]];
      right = symbols[order[j % 256]];
    }
    tokens.push_back(Value::String(left + right));
    types.push_back(Value::Int32(kTokenNormal));
    merges.push_back(Value::String(left + " " + right));
  }
  const int64_t bos = static_cast<int64_t>(tokens.size());
  tokens.push_back(Value::String("<|begin_of_text|>"));
  tokens.push_back(Value::String("<|end_of_text|>"));
  types.push_back(Value::Int32(kTokenControl));
  types.push_back(Value::Int32(kTokenControl));

  std::vector<gguf::KeyValue> kv;
  kv.push_back({"tokenizer.ggml.model", Value::String("gpt2")});
  kv.push_back({"tokenizer.ggml.pre", Value::String("default")});
  kv.push_back({"tokenizer.ggml.tokens",
                Value::MakeArray(ValueType::kString, std::move(tokens))});
  kv.push_back({"tokenizer.ggml.token_type",
                Value::MakeArray(ValueType::kInt32, std::move(types))});
  kv.push_back({"tokenizer.ggml.merges",
                Value::MakeArray(ValueType::kString, std::move(merges))});
  kv.push_back({"tokenizer.ggml.bos_token_id",
                Value::Uint32(static_cast<uint32_t>(bos))});
  kv.push_back({"tokenizer.ggml.eos_token_id",
                Value::Uint32(static_cast<uint32_t>(bos + 1))});
  kv.push_back({"tokenizer.ggml.add_bos_token", Value::Bool(true)});
  return kv;
}

absl::StatusOr<std::vector<gguf::KeyValue>> CopyTokenizer(const std::string& path) {
  LP_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::Open(path, {.map_data = false}));
  std::vector<gguf::KeyValue> kv;
  for (const gguf::KeyValue& entry : file->metadata()) {
    if (entry.key.rfind("tokenizer.", 0) == 0) kv.push_back(entry);
  }
  if (!file->GetArray("tokenizer.ggml.tokens").ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " has no tokenizer.ggml.tokens array"));
  }
  return kv;
}

}  // namespace layerpool
