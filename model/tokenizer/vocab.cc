#include "model/tokenizer/vocab.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/tokenizer/algorithms.h"

namespace layerpool::tokenizer {
namespace {

absl::Status KeyError(absl::string_view key, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("tokenizer.ggml.", key, ": ", message));
}

uint32_t AttrOfType(int32_t type) {
  switch (static_cast<TokenType>(type)) {
    case TokenType::kNormal: return kAttrNormal;
    case TokenType::kUnknown: return kAttrUnknown;
    case TokenType::kControl: return kAttrControl;
    case TokenType::kUserDefined: return kAttrUserDefined;
    case TokenType::kUnused: return kAttrUnused;
    case TokenType::kByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

absl::Status SetModel(const VocabSpec& spec, Vocab* v) {
  v->model_name = spec.model;
  v->pre_name = spec.pre.empty() ? "default" : spec.pre;
  if (spec.model == "llama") {
    v->type = VocabType::kSpm;
    v->bos = 1, v->eos = 2, v->unk = 0;
    v->add_space_prefix = true;
    v->add_bos = true;
  } else if (spec.model == "bert") {
    v->type = VocabType::kWpm;
    v->bos = 101, v->cls = 101, v->unk = 100, v->sep = 102, v->pad = 0,
    v->mask = 103;
    v->clean_spaces = true;
    v->add_bos = true;
  } else if (spec.model == "gpt2") {
    v->type = VocabType::kBpe;
    v->bos = 11, v->eos = 11;  // llama.cpp's defaults (Falcon's ids)
    std::optional<PreTokenizerConfig> pre = FindPreTokenizer(v->pre_name);
    if (!pre) {
      return KeyError("pre", absl::StrCat("unknown or unsupported "
                                          "pre-tokenizer '", spec.pre, "'"));
    }
    v->pre = *pre;
    v->clean_spaces = pre->clean_spaces;
    v->add_bos = pre->force_add_bos;
    if (pre->no_bos) v->bos = kNoToken;
  } else if (spec.model.empty()) {
    return KeyError("model", "missing");
  } else {
    return KeyError("model", absl::StrCat("unsupported tokenizer '",
                                          spec.model,
                                          "' (supported: llama, gpt2, bert)"));
  }
  if (spec.add_space_prefix) v->add_space_prefix = *spec.add_space_prefix;
  return absl::OkStatus();
}

absl::Status SetTokens(const VocabSpec& spec, Vocab* v) {
  const size_t n = spec.tokens.size();
  if (n == 0) return KeyError("tokens", "missing or empty");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return KeyError("tokens", absl::StrCat(n, " tokens is too many"));
  }
  if (!spec.scores.empty() && spec.scores.size() < n) {
    return KeyError("scores", absl::StrCat(spec.scores.size(),
                                           " values for ", n, " tokens"));
  }
  if (!spec.token_types.empty() && spec.token_types.size() < n) {
    return KeyError("token_type", absl::StrCat(spec.token_types.size(),
                                               " values for ", n, " tokens"));
  }
  v->tokens.resize(n);
  v->token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = v->tokens[i];
    t.text = spec.tokens[i].empty() ? absl::StrCat("[EMPTY_", i, "]")
                                    : spec.tokens[i];
    auto [it, inserted] =
        v->token_to_id.try_emplace(t.text, static_cast<int32_t>(i));
    if (!inserted) {
      return KeyError("tokens", absl::StrCat("duplicate token '", t.text,
                                             "' at ids ", it->second, " and ",
                                             i));
    }
    v->max_token_len = std::max(v->max_token_len, t.text.size());
    if (!spec.scores.empty()) t.score = spec.scores[i];
    if (!spec.token_types.empty()) {
      const int32_t type = spec.token_types[i];
      t.type = type >= 0 && type <= static_cast<int32_t>(TokenType::kByte)
                   ? static_cast<TokenType>(type)
                   : TokenType::kUndefined;
      t.attr = AttrOfType(type);
    }
  }
  if (v->type == VocabType::kBpe) {
    for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
      // llama.cpp splits at the first space after the first byte; the key
      // "left right" is then the line itself.
      const std::string& line = spec.merges[rank];
      if (line.find(' ', 1) == std::string::npos) continue;
      v->merge_ranks.try_emplace(line, static_cast<int32_t>(rank));
    }
  }
  return absl::OkStatus();
}

absl::Status SetSpecialIds(const VocabSpec& spec, Vocab* v) {
  const std::pair<const std::optional<int64_t>*, int32_t*> ids[] = {
      {&spec.bos_id, &v->bos},         {&spec.eos_id, &v->eos},
      {&spec.eot_id, &v->eot},         {&spec.eom_id, &v->eom},
      {&spec.unk_id, &v->unk},         {&spec.sep_id, &v->sep},
      {&spec.pad_id, &v->pad},         {&spec.cls_id, &v->cls},
      {&spec.mask_id, &v->mask},       {&spec.fim_pre_id, &v->fim_pre},
      {&spec.fim_suf_id, &v->fim_suf}, {&spec.fim_mid_id, &v->fim_mid},
      {&spec.fim_pad_id, &v->fim_pad}, {&spec.fim_rep_id, &v->fim_rep},
      {&spec.fim_sep_id, &v->fim_sep},
  };
  for (auto [given, id] : ids) {
    if (!v->Valid(*id)) *id = kNoToken;  // a default outside the vocabulary
    // Like llama.cpp, an id outside the vocabulary is ignored.
    if (given->has_value() && **given >= 0 && **given < v->n_tokens()) {
      *id = static_cast<int32_t>(**given);
    }
  }
  if (spec.add_bos) v->add_bos = *spec.add_bos;
  if (spec.add_eos) v->add_eos = *spec.add_eos;
  if (v->add_bos && v->bos == kNoToken) {
    return KeyError("add_bos_token", "true, but there is no BOS token");
  }
  if (v->add_eos && v->eos == kNoToken) {
    return KeyError("add_eos_token", "true, but there is no EOS token");
  }
  return absl::OkStatus();
}

// llama.cpp finds some special tokens by their text and marks them control.
void DetectSpecialTokens(Vocab* v) {
  struct ByText {
    int32_t* id;
    std::vector<std::string_view> texts;
  };
  const ByText detected[] = {
      {&v->eot, {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                 "<|endoftext|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>"}},
      {&v->eom, {"<|eom_id|>"}},
      {&v->fim_pre, {"<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"}},
      {&v->fim_suf, {"<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"}},
      {&v->fim_mid, {"<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"}},
      {&v->fim_pad, {"<|fim_pad|>", "<fim-pad>", "<PAD>"}},
      {&v->fim_rep, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}},
      {&v->fim_sep, {"<|file_sep|>"}},
  };
  for (const ByText& d : detected) {
    for (int32_t id = 0; *d.id == kNoToken && id < v->n_tokens(); ++id) {
      const std::string& text = v->tokens[id].text;
      if (std::find(d.texts.begin(), d.texts.end(), text) == d.texts.end()) {
        continue;
      }
      *d.id = id;
      v->tokens[id].attr |= kAttrControl;
    }
  }
  for (TokenData& t : v->tokens) {
    if ((t.attr & kAttrControl) && absl::StrContains(t.text, "unused")) {
      t.attr |= kAttrUnused;
    }
  }
  // End-of-generation tokens.
  constexpr std::string_view kEogTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
      "<|eom_id|>", "<EOT>",      "_<EOT>"};
  for (int32_t id : {v->fim_pad, v->fim_rep, v->fim_sep, v->eos, v->eot,
                     v->eom}) {
    if (id != kNoToken) v->eog.insert(id);
  }
  for (int32_t id = 0; id < v->n_tokens(); ++id) {
    TokenData& t = v->tokens[id];
    if (std::find(std::begin(kEogTexts), std::end(kEogTexts), t.text) !=
        std::end(kEogTexts)) {
      v->eog.insert(id);
      t.attr |= kAttrControl;
    }
  }
}

// Per-model attribute fixups llama.cpp applies after building its special
// token list (so they change stripping, not membership).
void ApplyModelFixups(const VocabSpec& spec, Vocab* v) {
  auto set = [v](std::string_view text, uint32_t attr, bool on) {
    const int32_t id = v->Find(text);
    if (id == kNoToken) return;
    if (on) {
      v->tokens[id].attr |= attr;
    } else {
      v->tokens[id].attr &= ~attr;
    }
  };
  const std::string name = absl::AsciiStrToLower(spec.general_name);
  if (absl::StrContains(v->pre_name, "jina-v2-de") ||
      absl::StrContains(v->pre_name, "jina-v2-es") ||
      absl::StrContains(v->pre_name, "jina-v2-code")) {
    set("<mask>", kAttrLstrip, true);
  } else if (absl::StrContains(name, "phi-3") ||
             absl::StrContains(name, "phi3")) {
    for (int32_t id : v->special_tokens) v->tokens[id].attr |= kAttrRstrip;
    set("</s>", kAttrRstrip, true);
    for (std::string_view text : {"<unk>", "<s>", "<|endoftext|>"}) {
      set(text, kAttrRstrip, false);
    }
  }
}

void SetNewlineToken(Vocab* v) {
  switch (v->type) {
    case VocabType::kSpm: {
      int32_t id = v->Find("<0x0A>");
      if (id == kNoToken) id = v->Find("\n");
      v->nl = id != kNoToken ? id : v->pad;
      break;
    }
    case VocabType::kWpm:
      v->nl = v->pad;
      break;
    case VocabType::kBpe: {
      std::vector<int32_t> ids;
      BpeTokenize(*v, "\n", &ids);
      v->nl = ids.empty() ? v->pad : ids[0];
      break;
    }
  }
}

}  // namespace

int32_t Vocab::MergeRank(std::string_view left, std::string_view right) const {
  if (left.find(' ') != std::string_view::npos ||
      right.find(' ') != std::string_view::npos) {
    return -1;
  }
  std::string key;
  key.reserve(left.size() + 1 + right.size());
  key.append(left).append(1, ' ').append(right);
  auto it = merge_ranks.find(key);
  return it == merge_ranks.end() ? -1 : it->second;
}

absl::StatusOr<std::unique_ptr<Vocab>> BuildVocab(const VocabSpec& spec) {
  auto v = std::make_unique<Vocab>();
  if (absl::Status s = SetModel(spec, v.get()); !s.ok()) return s;
  if (absl::Status s = SetTokens(spec, v.get()); !s.ok()) return s;
  if (absl::Status s = SetSpecialIds(spec, v.get()); !s.ok()) return s;
  DetectSpecialTokens(v.get());
  for (int32_t id = 0; id < v->n_tokens(); ++id) {
    if (v->HasAttr(id, kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      v->special_tokens.push_back(id);
    }
  }
  std::stable_sort(v->special_tokens.begin(), v->special_tokens.end(),
                   [&v](int32_t a, int32_t b) {
                     return v->tokens[a].text.size() > v->tokens[b].text.size();
                   });
  ApplyModelFixups(spec, v.get());
  SetNewlineToken(v.get());
  return v;
}

}  // namespace layerpool::tokenizer
