// Mistral-Nemo's "tekken" pre-tokenizer as llama.cpp runs it: its expression
//
//   [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+
//  |[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*
//  |\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// through std::regex on its "collapsed" text, where every non-ASCII code
// point becomes one byte for its category: a non-ASCII letter is then both
// "not a-z" and "not A-Z", so case only separates ASCII letters (llama.cpp
// splits "ÉCOLE" as "É" + "COLE"; Hugging Face keeps it whole). The
// alternatives are tried in order at each position, each with ECMAScript's
// greedy-then-backtrack matching, which the code below reproduces.
#include <cstdint>

#include "model/tokenizer/split.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

// What the collapsed text makes of one code point.
struct Cpt {
  bool crlf, space, letter, upper, lower, number;
};

Cpt Classify(uint32_t c) {
  Cpt k{};
  k.crlf = c == '\r' || c == '\n';
  const uint16_t flags = CodepointFlags(c);
  k.space = (flags & kWhitespace) != 0;
  if (c < 128) {
    k.upper = c >= 'A' && c <= 'Z';
    k.lower = c >= 'a' && c <= 'z';
    k.letter = k.upper || k.lower;
    k.number = c >= '0' && c <= '9';
  } else if (!k.space) {
    k.letter = (flags & kLetter) != 0;
    k.number = !k.letter && (flags & kNumber) != 0;
  }
  return k;
}

class Matcher {
 public:
  Matcher(std::span<const uint32_t> cpts, size_t end) : cpts_(cpts), end_(end) {}

  // The end of the word starting at `i`.
  size_t Match(size_t i) const {
    const bool prefix = Prefix(i);
    const size_t j = i + (prefix ? 1 : 0);
    // U*W+ (backtracking U* until a W follows), then U+W*.
    const size_t u = Run(j, &Matcher::U);
    for (size_t k = j + u + 1; k-- > j;) {
      if (W(k)) return k + Run(k, &Matcher::W);
    }
    if (u > 0) return j + u + Run(j + u, &Matcher::W);
    if (At(i).number) return i + 1;
    // " ?" then others, then [\r\n/]*.
    const size_t o = i + (cpts_[i] == ' ' && Other(i + 1) ? 1 : 0);
    if (Other(o)) {
      size_t e = o + Run(o, &Matcher::Other);
      while (e < end_ && (At(e).crlf || cpts_[e] == '/')) ++e;
      return e;
    }
    const size_t w = Run(i, &Matcher::Space);  // >= 1: nothing else is left
    for (size_t k = i + w; k-- > i;) {         // \s*[\r\n]+
      if (At(k).crlf) return k + 1;
    }
    if (i + w == end_ || w == 1) return i + w;  // \s+(?!\S), else \s+
    return i + w - 1;
  }

 private:
  Cpt At(size_t p) const { return p < end_ ? Classify(cpts_[p]) : Cpt{}; }
  bool InText(size_t p) const { return p < end_; }
  bool Prefix(size_t p) const {
    const Cpt k = At(p);
    return InText(p) && !k.crlf && !k.letter && !k.number;
  }
  bool U(size_t p) const { return At(p).letter && !At(p).lower; }
  bool W(size_t p) const { return At(p).letter && !At(p).upper; }
  bool Other(size_t p) const {
    const Cpt k = At(p);
    return InText(p) && !k.space && !k.letter && !k.number;
  }
  bool Space(size_t p) const { return At(p).space; }
  size_t Run(size_t p, bool (Matcher::*in)(size_t) const) const {
    size_t n = 0;
    while ((this->*in)(p + n)) ++n;
    return n;
  }

  std::span<const uint32_t> cpts_;
  size_t end_;
};

}  // namespace

Segments SplitTekken(std::span<const uint32_t> cpts, const Segments& segments) {
  Segments out;
  size_t begin = 0;
  for (size_t length : segments) {
    const size_t end = begin + length;
    const Matcher m(cpts, end);
    for (size_t i = begin; i < end;) {
      const size_t next = m.Match(i);
      out.push_back(next - i);
      i = next;
    }
    begin = end;
  }
  return out;
}

}  // namespace layerpool::tokenizer
