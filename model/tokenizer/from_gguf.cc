// Tokenizer::FromGguf: reading tokenizer.ggml.* into a VocabSpec.
//
// Types are checked strictly enough to name a broken key, and leniently
// where files in the wild differ (ids stored as int32 or uint32, scores as
// float32 or int32).
#include <limits>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"

namespace layerpool {
namespace {

absl::Status TypeError(absl::string_view key, absl::string_view wanted,
                       const gguf::Value& value) {
  return absl::InvalidArgumentError(
      absl::StrCat(key, ": expected ", wanted, ", found ",
                   gguf::ValueTypeName(value.type)));
}

absl::StatusOr<std::optional<std::string>> OptionalString(
    const gguf::GgufFile& file, absl::string_view key) {
  const gguf::Value* v = file.FindValue(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(&v->data)) return *s;
  return TypeError(key, "a string", *v);
}

absl::StatusOr<std::optional<bool>> OptionalBool(const gguf::GgufFile& file,
                                                 absl::string_view key) {
  const gguf::Value* v = file.FindValue(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&v->data)) return *b;
  return TypeError(key, "a bool", *v);
}

// A token id; values that cannot be one (negative, huge) read as -1, which
// the vocabulary ignores like any id outside its range.
absl::StatusOr<std::optional<int64_t>> OptionalId(const gguf::GgufFile& file,
                                                  absl::string_view key) {
  const gguf::Value* v = file.FindValue(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&v->data)) {
    return *u <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
               ? static_cast<int64_t>(*u)
               : int64_t{-1};
  }
  if (const auto* i = std::get_if<int64_t>(&v->data)) return *i;
  return TypeError(key, "an integer", *v);
}

absl::StatusOr<const gguf::Array*> OptionalArray(const gguf::GgufFile& file,
                                                 absl::string_view key) {
  const gguf::Value* v = file.FindValue(key);
  if (v == nullptr) return nullptr;
  if (const auto* a = std::get_if<gguf::Array>(&v->data)) return a;
  return TypeError(key, "an array", *v);
}

absl::Status ReadStrings(const gguf::GgufFile& file, absl::string_view key,
                         std::vector<std::string>* out) {
  absl::StatusOr<const gguf::Array*> array = OptionalArray(file, key);
  if (!array.ok()) return array.status();
  if (*array == nullptr) return absl::OkStatus();
  out->reserve((*array)->elements.size());
  for (const gguf::Value& element : (*array)->elements) {
    const auto* s = std::get_if<std::string>(&element.data);
    if (s == nullptr) return TypeError(key, "an array of strings", element);
    out->push_back(*s);
  }
  return absl::OkStatus();
}

// Numbers of any GGUF numeric type, converted to T.
template <typename T>
absl::Status ReadNumbers(const gguf::GgufFile& file, absl::string_view key,
                         bool allow_float, std::vector<T>* out) {
  absl::StatusOr<const gguf::Array*> array = OptionalArray(file, key);
  if (!array.ok()) return array.status();
  if (*array == nullptr) return absl::OkStatus();
  out->reserve((*array)->elements.size());
  for (const gguf::Value& element : (*array)->elements) {
    if (const auto* u = std::get_if<uint64_t>(&element.data)) {
      out->push_back(static_cast<T>(*u));
    } else if (const auto* i = std::get_if<int64_t>(&element.data)) {
      out->push_back(static_cast<T>(*i));
    } else if (const auto* d = std::get_if<double>(&element.data);
               d != nullptr && allow_float) {
      out->push_back(static_cast<T>(*d));
    } else {
      return TypeError(key, allow_float ? "an array of numbers"
                                        : "an array of integers",
                       element);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<VocabSpec> ReadSpec(const gguf::GgufFile& file) {
  VocabSpec spec;
  auto read_string = [&](absl::string_view key, std::string* out) {
    absl::StatusOr<std::optional<std::string>> s = OptionalString(file, key);
    if (!s.ok()) return s.status();
    if (s->has_value()) *out = **s;
    return absl::OkStatus();
  };
  if (absl::Status s = read_string("tokenizer.ggml.model", &spec.model);
      !s.ok()) {
    return s;
  }
  if (spec.model.empty()) {
    return absl::InvalidArgumentError("tokenizer.ggml.model: missing");
  }
  for (auto [key, out] : {std::pair{"tokenizer.ggml.pre", &spec.pre},
                          std::pair{"general.name", &spec.general_name}}) {
    if (absl::Status s = read_string(key, out); !s.ok()) return s;
  }
  if (absl::Status s = ReadStrings(file, "tokenizer.ggml.tokens", &spec.tokens);
      !s.ok()) {
    return s;
  }
  if (spec.tokens.empty()) {
    return absl::InvalidArgumentError("tokenizer.ggml.tokens: missing or empty");
  }
  if (absl::Status s = ReadNumbers(file, "tokenizer.ggml.scores",
                                   /*allow_float=*/true, &spec.scores);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadNumbers(file, "tokenizer.ggml.token_type",
                                   /*allow_float=*/false, &spec.token_types);
      !s.ok()) {
    return s;
  }
  if (spec.model == "gpt2") {
    if (file.FindValue("tokenizer.ggml.merges") == nullptr) {
      return absl::InvalidArgumentError(
          "tokenizer.ggml.merges: missing (required by a gpt2 tokenizer)");
    }
    if (absl::Status s = ReadStrings(file, "tokenizer.ggml.merges", &spec.merges);
        !s.ok()) {
      return s;
    }
  }
  // Later entries win, as the deprecated fim keys do in llama.cpp.
  const std::pair<const char*, std::optional<int64_t>*> ids[] = {
      {"tokenizer.ggml.bos_token_id", &spec.bos_id},
      {"tokenizer.ggml.eos_token_id", &spec.eos_id},
      {"tokenizer.ggml.eot_token_id", &spec.eot_id},
      {"tokenizer.ggml.eom_token_id", &spec.eom_id},
      {"tokenizer.ggml.unknown_token_id", &spec.unk_id},
      {"tokenizer.ggml.seperator_token_id", &spec.sep_id},  // sic
      {"tokenizer.ggml.padding_token_id", &spec.pad_id},
      {"tokenizer.ggml.cls_token_id", &spec.cls_id},
      {"tokenizer.ggml.mask_token_id", &spec.mask_id},
      {"tokenizer.ggml.fim_pre_token_id", &spec.fim_pre_id},
      {"tokenizer.ggml.fim_suf_token_id", &spec.fim_suf_id},
      {"tokenizer.ggml.fim_mid_token_id", &spec.fim_mid_id},
      {"tokenizer.ggml.fim_pad_token_id", &spec.fim_pad_id},
      {"tokenizer.ggml.fim_rep_token_id", &spec.fim_rep_id},
      {"tokenizer.ggml.fim_sep_token_id", &spec.fim_sep_id},
      {"tokenizer.ggml.prefix_token_id", &spec.fim_pre_id},
      {"tokenizer.ggml.suffix_token_id", &spec.fim_suf_id},
      {"tokenizer.ggml.middle_token_id", &spec.fim_mid_id},
  };
  for (auto [key, out] : ids) {
    absl::StatusOr<std::optional<int64_t>> id = OptionalId(file, key);
    if (!id.ok()) return id.status();
    if (id->has_value()) *out = *id;
  }
  const std::pair<const char*, std::optional<bool>*> flags[] = {
      {"tokenizer.ggml.add_bos_token", &spec.add_bos},
      {"tokenizer.ggml.add_eos_token", &spec.add_eos},
      {"tokenizer.ggml.add_space_prefix", &spec.add_space_prefix},
  };
  for (auto [key, out] : flags) {
    absl::StatusOr<std::optional<bool>> flag = OptionalBool(file, key);
    if (!flag.ok()) return flag.status();
    *out = *flag;
  }
  return spec;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(
    const gguf::GgufFile& file) {
  absl::StatusOr<VocabSpec> spec = ReadSpec(file);
  if (!spec.ok()) return spec.status();
  return FromSpec(*spec);
}

}  // namespace layerpool
