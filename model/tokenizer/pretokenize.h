// BPE pre-tokenization: splitting text into words before merging.
//
// Each pre-tokenizer is llama.cpp's list of regular expressions for that
// tokenizer.ggml.pre value, applied one after the other, each splitting the
// pieces the previous ones left. llama.cpp runs the GPT-2 and Llama-3
// expressions through hand-written splitters and the rest through std::regex
// on a text where every code point is collapsed to one byte of its category;
// here every expression is a hand-written splitter that reproduces the same
// matches (leftmost, greedy, backtracking where the expression needs it).
#ifndef LAYERPOOL_MODEL_TOKENIZER_PRETOKENIZE_H_
#define LAYERPOOL_MODEL_TOKENIZER_PRETOKENIZE_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace layerpool::tokenizer {

// One per distinct list of expressions.
enum class PreType {
  kDefault,        // "default" and absent: gpt-neox and other older files
  kGpt2,           // gpt-2, mpt, olmo, phi-2, roberta-bpe, jina-*, ...
  kLlama3,         // llama3 / llama-bpe, dbrx, smaug-bpe, chatglm-bpe
  kQwen2,          // qwen2, deepseek-r1-qwen, stablelm2, megrez
  kDeepseekLlm,    // deepseek-llm
  kDeepseekCoder,  // deepseek-coder
  kFalcon,         // falcon
  kStarcoder,      // starcoder, refact, command-r, smollm, codeshell, ...
  kTekken,         // tekken (Mistral-Nemo)
};

// What a tokenizer.ggml.pre name selects, with the vocabulary flags llama.cpp
// sets alongside it.
struct PreTokenizerConfig {
  PreType type = PreType::kDefault;
  bool ignore_merges = false;  // a word that is a token is taken whole
  bool clean_spaces = true;    // Decode removes " ," style spaces
  bool force_add_bos = false;  // add BOS whatever the file says
  bool no_bos = false;         // the vocabulary has no BOS token
};

// nullopt for a name llama.cpp does not know or this port does not support.
std::optional<PreTokenizerConfig> FindPreTokenizer(std::string_view name);

// Splits `text` into words, each in GPT-2's byte-level alphabet (see
// ByteToUnicode), ready for merging. Invalid UTF-8 reads as U+FFFD.
std::vector<std::string> PreTokenize(PreType type, std::string_view text);

// The same split as code-point counts per word, for tests.
std::vector<size_t> PreTokenizeLengths(PreType type, std::string_view text);

}  // namespace layerpool::tokenizer

#endif  // LAYERPOOL_MODEL_TOKENIZER_PRETOKENIZE_H_
