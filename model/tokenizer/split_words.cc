// The GPT-2 and Llama-3 word splitters, step for step as llama.cpp's
// unicode_regex_split_custom_gpt2 / _llama3 emulate those expressions. Their
// quirks are kept on purpose: the ids must match llama.cpp's, not the regex.
#include <cstdint>

#include "model/tokenizer/split.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

constexpr uint32_t kOutOfRange = 0xFFFFFFFF;

// One segment [begin, end) being cut into words. Positions past the end read
// as kOutOfRange with no flags, which is what stops every run.
class Segment {
 public:
  Segment(std::span<const uint32_t> cpts, size_t begin, size_t end,
          Segments* out)
      : cpts_(cpts), end_(end), word_start_(begin), out_(out) {}

  uint32_t cpt(size_t pos) const { return pos < end_ ? cpts_[pos] : kOutOfRange; }
  uint16_t flags(size_t pos) const {
    return pos < end_ ? CodepointFlags(cpts_[pos]) : 0;
  }
  size_t end() const { return end_; }

  // Ends the current word at `pos`; returns its length (0 adds nothing).
  size_t Cut(size_t pos) {
    const size_t length = pos - word_start_;
    if (length > 0) out_->push_back(length);
    word_start_ = pos;
    return length;
  }

 private:
  std::span<const uint32_t> cpts_;
  size_t end_;
  size_t word_start_;
  Segments* out_;
};

bool IsLetter(uint16_t flags) { return (flags & kLetter) != 0; }
bool IsNumber(uint16_t flags) { return (flags & kNumber) != 0; }
bool IsSpace(uint16_t flags) { return (flags & kWhitespace) != 0; }
// [^\s\p{L}\p{N}], and a real code point (not past the end).
bool IsOther(uint16_t flags) {
  return !(flags & (kWhitespace | kLetter | kNumber)) && flags != 0;
}
bool IsCrLf(uint32_t cpt) { return cpt == '\r' || cpt == '\n'; }

// Length of the contraction 's 't 'm 'd 're 've 'll at `pos`, or 0.
size_t Contraction(const Segment& s, size_t pos, bool ignore_case) {
  if (s.cpt(pos) != '\'' || pos + 1 >= s.end()) return 0;
  auto at = [&](size_t p) {
    return ignore_case ? ToLower(s.cpt(p)) : s.cpt(p);
  };
  const uint32_t next = at(pos + 1);
  if (next == 's' || next == 't' || next == 'm' || next == 'd') return 2;
  if (pos + 2 >= s.end()) return 0;
  const uint32_t next2 = at(pos + 2);
  if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') ||
      (next == 'l' && next2 == 'l')) {
    return 3;
  }
  return 0;
}

template <typename SplitOne>
Segments ForEachSegment(std::span<const uint32_t> cpts,
                        const Segments& segments, SplitOne split_one) {
  Segments out;
  out.reserve(segments.size());
  size_t begin = 0;
  for (size_t length : segments) {
    Segment segment(cpts, begin, begin + length, &out);
    split_one(segment, begin);
    begin += length;
  }
  return out;
}

}  // namespace

Segments SplitGpt2(std::span<const uint32_t> cpts, const Segments& segments) {
  return ForEachSegment(cpts, segments, [](Segment& s, size_t pos) {
    while (pos < s.end()) {
      const uint32_t cpt = s.cpt(pos);
      if (size_t n = Contraction(s, pos, /*ignore_case=*/false); n > 0) {
        pos += s.Cut(pos + n);
        continue;
      }
      // " ?X+" for X in letters, numbers, others: the space joins the run.
      uint16_t flags = cpt == ' ' ? s.flags(pos + 1) : s.flags(pos);
      bool (*in_run)(uint16_t) = IsLetter(flags)   ? IsLetter
                                 : IsNumber(flags) ? IsNumber
                                 : IsOther(flags)  ? IsOther
                                                   : nullptr;
      if (in_run != nullptr) {
        pos += (cpt == ' ');
        while (in_run(flags)) flags = s.flags(++pos);
        s.Cut(pos);
        continue;
      }
      size_t spaces = 0;
      while (IsSpace(s.flags(pos + spaces))) ++spaces;
      if (spaces > 1 && s.cpt(pos + spaces) != kOutOfRange) {
        pos += spaces - 1;  // \s+(?!\S): the last space joins the next word
        s.Cut(pos);
      } else if (spaces > 0) {
        pos += spaces;
        s.Cut(pos);
      } else {
        s.Cut(++pos);
      }
    }
  });
}

Segments SplitLlama3(std::span<const uint32_t> cpts, const Segments& segments,
                     size_t max_digits) {
  return ForEachSegment(cpts, segments, [max_digits](Segment& s, size_t pos) {
    while (pos < s.end()) {
      const uint32_t cpt = s.cpt(pos);
      const uint16_t flags = s.flags(pos);
      if (size_t n = Contraction(s, pos, /*ignore_case=*/true); n > 0) {
        pos += s.Cut(pos + n);
        continue;
      }
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!IsCrLf(cpt) && !IsNumber(flags) &&
          (IsLetter(flags) || IsLetter(s.flags(pos + 1)))) {
        ++pos;
        while (IsLetter(s.flags(pos))) ++pos;
        s.Cut(pos);
        continue;
      }
      // \p{N}{1,max_digits}
      if (IsNumber(flags)) {
        size_t run_start = pos;
        while (IsNumber(s.flags(pos))) {
          if (++pos - run_start >= max_digits) {
            s.Cut(pos);
            run_start = pos;
          }
        }
        s.Cut(pos);
        continue;
      }
      // " ?[^\s\p{L}\p{N}]+[\r\n]*". llama.cpp tests the current code point's
      // flags for "is real", not the one after the space; kept as is.
      uint16_t flags2 = cpt == ' ' ? s.flags(pos + 1) : flags;
      if (!(flags2 & (kWhitespace | kLetter | kNumber)) && flags != 0) {
        pos += (cpt == ' ');
        while (IsOther(flags2)) flags2 = s.flags(++pos);
        while (IsCrLf(s.cpt(pos))) ++pos;
        s.Cut(pos);
        continue;
      }
      size_t spaces = 0;
      size_t after_last_crlf = 0;
      while (IsSpace(s.flags(pos + spaces))) {
        if (IsCrLf(s.cpt(pos + spaces))) after_last_crlf = pos + spaces + 1;
        ++spaces;
      }
      if (after_last_crlf > 0) {  // \s*[\r\n]+
        pos = after_last_crlf;
        s.Cut(pos);
      } else if (spaces > 1 && s.cpt(pos + spaces) != kOutOfRange) {
        pos += spaces - 1;  // \s+(?!\S)
        s.Cut(pos);
      } else if (spaces > 0) {  // \s+
        pos += spaces;
        s.Cut(pos);
      } else {
        s.Cut(++pos);
      }
    }
  });
}

}  // namespace layerpool::tokenizer
