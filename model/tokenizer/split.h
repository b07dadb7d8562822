// The pre-tokenizer's splitters (internal to pretokenize.cc and its tests).
//
// A splitter refines a segmentation: the text is a vector of code points cut
// into consecutive segments, given as lengths; each segment is split on its
// own, and no word ever crosses a segment boundary. Lengths are never 0.
#ifndef LAYERPOOL_MODEL_TOKENIZER_SPLIT_H_
#define LAYERPOOL_MODEL_TOKENIZER_SPLIT_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace layerpool::tokenizer {

using Segments = std::vector<size_t>;

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
Segments SplitGpt2(std::span<const uint32_t> cpts, const Segments& segments);

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with D = max_digits: 3 for Llama 3, 1 for Qwen 2.
Segments SplitLlama3(std::span<const uint32_t> cpts, const Segments& segments,
                     size_t max_digits);

// Mistral-Nemo's tekken expression as llama.cpp's std::regex runs it on
// category-collapsed text (split_tekken.cc).
Segments SplitTekken(std::span<const uint32_t> cpts, const Segments& segments);

// A class of code points as a bracket expression of the source regexes sees
// it: any of the categories in `flags` (kNumber, kLetter, kPunctuation of a
// non-whitespace code point, or kWhitespace for \s), or any code point in
// `ranges`. Like llama.cpp's std::wregex input, a non-ASCII whitespace code
// point is compared with the ranges as U+000B.
struct CodepointRange {
  uint32_t first;
  uint32_t last;
};
struct CharClass {
  uint16_t flags = 0;
  std::span<const CodepointRange> ranges;
};

// The expression \s?C{min,max} (prefix optional), or C{min,max}$ when
// `at_end`: leftmost matches, greedy, each match and each gap between
// matches a word of its own.
struct RunPattern {
  bool optional_space_prefix = false;  // a leading \s?
  CharClass cls;
  size_t min_count = 1;
  size_t max_count = SIZE_MAX;
  bool at_end = false;
};
Segments SplitPattern(std::span<const uint32_t> cpts, const Segments& segments,
                      const RunPattern& pattern);

}  // namespace layerpool::tokenizer

#endif  // LAYERPOOL_MODEL_TOKENIZER_SPLIT_H_
