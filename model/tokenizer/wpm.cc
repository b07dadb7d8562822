// WordPiece, as llama.cpp's llm_tokenizer_wpm_session. GGUF BERT vocabularies
// store word-initial pieces with a "▁" prefix and continuation pieces bare
// (the converter drops the "##"), so a word is matched as "▁" + word.
#include <algorithm>

#include "model/tokenizer/algorithms.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

constexpr std::string_view kWordPrefix = "\xE2\x96\x81";  // ▁

// CJK ideograph blocks as BERT's BasicTokenizer lists them (including its
// 0x2B920 typo for 0x2B820).
bool IsChineseChar(uint32_t cpt) {
  return (cpt >= 0x4E00 && cpt <= 0x9FFF) || (cpt >= 0x3400 && cpt <= 0x4DBF) ||
         (cpt >= 0x20000 && cpt <= 0x2A6DF) ||
         (cpt >= 0x2A700 && cpt <= 0x2B73F) ||
         (cpt >= 0x2B740 && cpt <= 0x2B81F) ||
         (cpt >= 0x2B920 && cpt <= 0x2CEAF) ||
         (cpt >= 0xF900 && cpt <= 0xFAFF) || (cpt >= 0x2F800 && cpt <= 0x2FA1F);
}

}  // namespace

std::vector<std::string> WpmPreprocess(std::string_view text) {
  std::vector<std::string> words(1);
  for (uint32_t cpt : DecodeUtf8(text)) {
    cpt = NfdFirst(cpt);
    const uint16_t flags = CodepointFlags(cpt);
    if (flags & kWhitespace) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    if (cpt == 0 || cpt == kReplacementChar || (flags & kControl)) continue;
    const std::string s = EncodeUtf8(ToLower(cpt));
    if ((flags & kPunctuation) || (cpt < 0x7F && (flags & kSymbol)) ||
        IsChineseChar(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = s;
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

void WpmTokenize(const Vocab& vocab, std::string_view text,
                 std::vector<int32_t>* out) {
  for (const std::string& word : WpmPreprocess(text)) {
    if (word.empty()) continue;
    const std::string prefixed = std::string(kWordPrefix) + word;
    const size_t n = prefixed.size();
    const size_t first = out->size();
    // Longest match at each position; byte positions, as in llama.cpp.
    for (size_t i = 0; i < n;) {
      size_t matched = 0;
      for (size_t j = std::min(n, i + vocab.max_token_len + 1); j > i; --j) {
        const int32_t id = vocab.Find(std::string_view(prefixed).substr(i, j - i));
        if (id != kNoToken) {
          out->push_back(id);
          matched = j;
          break;
        }
      }
      if (matched == 0) {
        out->resize(first);  // one unmatched position discards the word
        break;
      }
      i = matched;
    }
    if (out->size() == first && vocab.unk != kNoToken) {
      out->push_back(vocab.unk);
    }
  }
}

}  // namespace layerpool::tokenizer
