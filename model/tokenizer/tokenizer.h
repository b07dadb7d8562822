// Text <-> token ids, built from a GGUF file's tokenizer metadata alone.
//
// Three tokenizer families are supported, selected by tokenizer.ggml.model:
//   "llama"  SPM: SentencePiece-style score-driven merging of adjacent pieces,
//            spaces written as U+2581 "▁", a space prefixed to the text, and
//            bytes without a piece written as <0xNN> byte tokens.
//   "gpt2"   BPE: the text is split into words by the pre-tokenizer named in
//            tokenizer.ggml.pre (gpt-2, llama3 / llama-bpe, qwen2,
//            deepseek-llm, deepseek-coder, falcon, mpt, starcoder, refact,
//            command-r, ... ; none means "default", as for gpt-neox), each
//            word is mapped to GPT-2's byte-level alphabet and merged by the
//            rank of tokenizer.ggml.merges.
//   "bert"   WPM: lower-casing, accent stripping, splitting on whitespace,
//            punctuation and CJK characters, then greedy longest-match
//            WordPiece (word-initial pieces carry "▁" in GGUF vocabularies).
//
// The behaviour is llama.cpp's (src/llama-vocab.cpp and src/unicode.cpp as of
// February 2025, commit c392e509), id for id, including its quirks: Encode is
// llama_tokenize, TokenToPiece is llama_token_to_piece with lstrip = 0 and
// Decode is llama_detokenize with remove_special = false. Where llama.cpp
// throws or aborts instead, this tokenizer carries on: an SPM vocabulary
// without byte tokens meeting a character it has no piece for gives the
// unknown token (nothing if there is none), and a UTF-8 sequence for a code
// point above U+10FFFF reads as U+FFFD. No input text and no vocabulary can
// crash it.
//
// Thread safety: a Tokenizer is immutable once built; all methods are const
// and may be called from any number of threads at once.
#ifndef LAYERPOOL_MODEL_TOKENIZER_TOKENIZER_H_
#define LAYERPOOL_MODEL_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace layerpool {

namespace gguf {
class GgufFile;
}  // namespace gguf

namespace tokenizer {
struct Vocab;
}  // namespace tokenizer

// Token ids are int32_t as in llama.cpp; kNoToken stands for "none".
inline constexpr int32_t kNoToken = -1;

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,       // <s>, </s>, <|endoftext|>: text only with parse_special
  kUserDefined = 4,   // added tokens: always matched as whole strings
  kUnused = 5,
  kByte = 6,          // <0xNN>
};

// The tokenizer metadata of a GGUF file as plain data, key for key
// (tokenizer.ggml.<field> unless noted). FromGguf fills one; tests build
// small ones by hand.
struct VocabSpec {
  std::string model;  // "llama", "gpt2" or "bert"
  std::string pre;    // BPE pre-tokenizer; empty means "default"
  std::string general_name;  // general.name; selects llama.cpp's per-model
                             // token fixups (e.g. Phi-3's right-stripping)
  std::vector<std::string> tokens;
  std::vector<float> scores;            // empty (all 0) or one per token
  std::vector<int32_t> token_types;     // empty (all normal) or one per token
  std::vector<std::string> merges;      // BPE: "left right", by rank

  // *_token_id. An id outside the vocabulary is ignored, as llama.cpp does,
  // and the family's default (e.g. BOS 1 for SPM) stays.
  std::optional<int64_t> bos_id, eos_id, eot_id, eom_id, unk_id, sep_id,
      pad_id, cls_id, mask_id;
  std::optional<int64_t> fim_pre_id, fim_suf_id, fim_mid_id, fim_pad_id,
      fim_rep_id, fim_sep_id;

  std::optional<bool> add_bos;           // add_bos_token
  std::optional<bool> add_eos;           // add_eos_token
  std::optional<bool> add_space_prefix;  // add_space_prefix (SPM)
};

class Tokenizer {
 public:
  // Builds from a GGUF file's tokenizer.ggml.* keys (and general.name).
  // InvalidArgument naming the key when one is missing, has the wrong type
  // or is inconsistent (e.g. "tokenizer.ggml.scores: 10 values for 12
  // tokens", an unknown tokenizer.ggml.model or .pre, a duplicate token).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(
      const gguf::GgufFile& file);

  // Builds from plain metadata, with the same validation.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSpec(
      const VocabSpec& spec);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // llama_tokenize. `add_special` adds BOS (and EOS) as the vocabulary's
  // add_bos / add_eos flags say; for "bert" it wraps the text in CLS ... SEP.
  // `parse_special` lets control-token text in the input ("<s>") become that
  // token; user-defined tokens are matched whatever it says. Any bytes are
  // accepted: invalid UTF-8 is read as U+FFFD where code points matter.
  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special = false) const;

  // llama_token_to_piece(lstrip = 0): the bytes a token stands for ("▁"
  // becomes a space, <0xNN> one byte, byte-level BPE text its bytes).
  // Control and unknown tokens give "" unless `special`. An id outside
  // [0, n_vocab) gives "".
  std::string TokenToPiece(int32_t id, bool special = false) const;

  // llama_detokenize(remove_special = false, unparse_special = special): the
  // pieces joined, minus the space an SPM vocabulary prefixes, with BPE and
  // WPM spacing cleaned up (" ," -> ",") where llama.cpp does it.
  std::string Decode(std::span<const int32_t> ids, bool special = false) const;

  int32_t n_vocab() const;
  std::string_view model_name() const;  // tokenizer.ggml.model
  std::string_view pre_name() const;    // tokenizer.ggml.pre, or "default"

  // Special ids, kNoToken when the vocabulary has none.
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t eot_id() const;
  int32_t unk_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t mask_id() const;
  int32_t nl_id() const;  // the token of "\n"

  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;

  // The stored text of a token ("▁Hello", "Ġworld", "<0x0A>"), "" when out
  // of range; its type; whether it ends generation (EOS, EOT, <|im_end|>...).
  std::string_view TokenText(int32_t id) const;
  TokenType token_type(int32_t id) const;
  bool IsEog(int32_t id) const;
  bool IsControl(int32_t id) const;

 private:
  explicit Tokenizer(std::unique_ptr<const tokenizer::Vocab> vocab);
  std::unique_ptr<const tokenizer::Vocab> vocab_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_TOKENIZER_TOKENIZER_H_
