// The tokenizer's working state, built and validated from a VocabSpec
// (internal to model/tokenizer/).
//
// This is llama.cpp's llama_vocab after load(): token texts, scores and
// attribute bits, special ids with the family defaults applied, the BPE merge
// ranks, and the list of tokens that the special-token pass looks for.
// Immutable once built.
#ifndef LAYERPOOL_MODEL_TOKENIZER_VOCAB_H_
#define LAYERPOOL_MODEL_TOKENIZER_VOCAB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/tokenizer.h"

namespace layerpool::tokenizer {

enum class VocabType { kSpm, kBpe, kWpm };

// llama_token_attr bits.
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1 << 0,
  kAttrUnused = 1 << 1,
  kAttrNormal = 1 << 2,
  kAttrControl = 1 << 3,
  kAttrUserDefined = 1 << 4,
  kAttrByte = 1 << 5,
  kAttrLstrip = 1 << 7,
  kAttrRstrip = 1 << 8,
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
  TokenType type = TokenType::kNormal;
};

struct Vocab {
  VocabType type = VocabType::kSpm;
  std::string model_name;
  std::string pre_name;
  PreTokenizerConfig pre;

  std::vector<TokenData> tokens;
  absl::flat_hash_map<std::string, int32_t> token_to_id;
  // BPE merges: "left right" -> rank (the first of duplicates wins).
  absl::flat_hash_map<std::string, int32_t> merge_ranks;
  size_t max_token_len = 0;  // bytes

  int32_t bos = kNoToken, eos = kNoToken, eot = kNoToken, eom = kNoToken,
          unk = kNoToken, sep = kNoToken, pad = kNoToken, cls = kNoToken,
          mask = kNoToken, nl = kNoToken;
  int32_t fim_pre = kNoToken, fim_suf = kNoToken, fim_mid = kNoToken,
          fim_pad = kNoToken, fim_rep = kNoToken, fim_sep = kNoToken;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: " " before the text
  bool clean_spaces = false;      // Decode: " ," -> ","

  // Control, user-defined and unknown tokens, longest text first.
  std::vector<int32_t> special_tokens;
  absl::flat_hash_set<int32_t> eog;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  bool Valid(int32_t id) const { return id >= 0 && id < n_tokens(); }
  bool HasAttr(int32_t id, uint32_t attr) const {
    return Valid(id) && (tokens[id].attr & attr) != 0;
  }
  // The id of the token with exactly this text, or kNoToken.
  int32_t Find(std::string_view text) const {
    // Debian's Abseil has its own string_view type.
    auto it = token_to_id.find(absl::string_view(text.data(), text.size()));
    return it == token_to_id.end() ? kNoToken : it->second;
  }
  // Rank of merging `left` and `right`, or -1.
  int32_t MergeRank(std::string_view left, std::string_view right) const;
};

[[nodiscard]] absl::StatusOr<std::unique_ptr<Vocab>> BuildVocab(
    const VocabSpec& spec);

}  // namespace layerpool::tokenizer

#endif  // LAYERPOOL_MODEL_TOKENIZER_VOCAB_H_
