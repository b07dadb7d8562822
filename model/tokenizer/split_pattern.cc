// Run patterns: the simple expressions of the other pre-tokenizers
// ("\p{N}", "[\p{P}\$\+<=>\^~\|]+", "[0-9][0-9][0-9]", "\s?\p{L}+", "\s+$",
// "[一-龥ࠀ-一가-퟿]+", ...), matched as std::regex_iterator matches them.
#include <algorithm>

#include "model/tokenizer/split.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

bool InClass(const CharClass& cls, uint32_t cpt) {
  const uint16_t flags = CodepointFlags(cpt);
  const bool space = (flags & kWhitespace) != 0;
  if (space && (cls.flags & kWhitespace)) return true;
  // In llama.cpp's collapsed text a whitespace code point is never \p{...}.
  if (!space && (cls.flags & flags & (kNumber | kLetter | kPunctuation))) {
    return true;
  }
  const uint32_t unit = (space && cpt >= 0x80) ? 0x0B : cpt;
  return std::any_of(cls.ranges.begin(), cls.ranges.end(),
                     [unit](const CodepointRange& r) {
                       return r.first <= unit && unit <= r.last;
                     });
}

// End of the match of C{min,max} starting at `pos`, or 0 if none.
size_t MatchRun(std::span<const uint32_t> cpts, size_t pos, size_t end,
                const RunPattern& p) {
  size_t count = 0;
  while (pos + count < end && count < p.max_count &&
         InClass(p.cls, cpts[pos + count])) {
    ++count;
  }
  return count >= p.min_count ? pos + count : 0;
}

// End of the leftmost-greedy match of \s?C{min,max} at `pos`, or 0.
size_t MatchAt(std::span<const uint32_t> cpts, size_t pos, size_t end,
               const RunPattern& p) {
  if (p.optional_space_prefix && pos + 1 < end && IsWhitespace(cpts[pos])) {
    if (size_t m = MatchRun(cpts, pos + 1, end, p); m > 0) return m;
  }
  return MatchRun(cpts, pos, end, p);
}

void SplitOne(std::span<const uint32_t> cpts, size_t begin, size_t end,
              const RunPattern& p, Segments* out) {
  auto emit = [out](size_t length) {
    if (length > 0) out->push_back(length);
  };
  if (p.at_end) {
    // Only a run reaching the end can match; the leftmost start wins.
    size_t start = end;
    while (start > begin && end - start < p.max_count &&
           InClass(p.cls, cpts[start - 1])) {
      --start;
    }
    if (p.optional_space_prefix && start > begin &&
        IsWhitespace(cpts[start - 1]) && end - start >= p.min_count) {
      --start;
    }
    if (end - start >= p.min_count && end > start) {
      emit(start - begin);
      emit(end - start);
    } else {
      emit(end - begin);
    }
    return;
  }
  size_t gap_start = begin;
  size_t pos = begin;
  while (pos < end) {
    const size_t match_end = MatchAt(cpts, pos, end, p);
    if (match_end == 0) {
      ++pos;
      continue;
    }
    emit(pos - gap_start);
    emit(match_end - pos);
    pos = gap_start = match_end;
  }
  emit(end - gap_start);
}

}  // namespace

Segments SplitPattern(std::span<const uint32_t> cpts, const Segments& segments,
                      const RunPattern& pattern) {
  Segments out;
  out.reserve(segments.size());
  size_t begin = 0;
  for (size_t length : segments) {
    SplitOne(cpts, begin, begin + length, pattern, &out);
    begin += length;
  }
  return out;
}

}  // namespace layerpool::tokenizer
