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
#include <utility>
#include <vector>

#include "model/tokenizer/split.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

// What the collapsed text makes of one code point.
struct Cpt {
  bool crlf, space, letter, upper, lower, number, blank, slash;  // blank: ' '
};

Cpt Classify(uint32_t c) {
  Cpt k{};
  k.crlf = c == '\r' || c == '\n';
  k.blank = c == ' ';
  k.slash = c == '/';
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

// One segment, classified once; positions past its end read as nothing.
class Matcher {
 public:
  explicit Matcher(std::vector<Cpt> k) : k_(std::move(k)) {}

  // The end of the word starting at `i`.
  size_t Match(size_t i) const {
    const size_t j = i + (Prefix(i) ? 1 : 0);
    // U*W+ (backtracking U* until a W follows), then U+W*.
    const size_t u = Run(j, &Matcher::U);
    for (size_t k = j + u + 1; k-- > j;) {
      if (W(k)) return k + Run(k, &Matcher::W);
    }
    if (u > 0) return j + u + Run(j + u, &Matcher::W);
    if (At(i).number) return i + 1;
    // " ?" then others, then [\r\n/]*.
    const size_t o = i + (At(i).blank && Other(i + 1) ? 1 : 0);
    if (Other(o)) {
      size_t e = o + Run(o, &Matcher::Other);
      while (At(e).crlf || At(e).slash) ++e;
      return e;
    }
    const size_t w = Run(i, &Matcher::Space);  // >= 1: nothing else is left
    for (size_t k = i + w; k-- > i;) {         // \s*[\r\n]+
      if (At(k).crlf) return k + 1;
    }
    if (i + w == k_.size() || w == 1) return i + w;  // \s+(?!\S), else \s+
    return i + w - 1;
  }

  size_t size() const { return k_.size(); }

 private:
  Cpt At(size_t p) const { return p < k_.size() ? k_[p] : Cpt{}; }
  bool Prefix(size_t p) const {
    return p < k_.size() && !k_[p].crlf && !k_[p].letter && !k_[p].number;
  }
  bool U(size_t p) const { return At(p).letter && !At(p).lower; }
  bool W(size_t p) const { return At(p).letter && !At(p).upper; }
  bool Other(size_t p) const {
    return p < k_.size() && !k_[p].space && !k_[p].letter && !k_[p].number;
  }
  bool Space(size_t p) const { return At(p).space; }
  size_t Run(size_t p, bool (Matcher::*in)(size_t) const) const {
    size_t n = 0;
    while ((this->*in)(p + n)) ++n;
    return n;
  }

  std::vector<Cpt> k_;
};

}  // namespace

Segments SplitTekken(std::span<const uint32_t> cpts, const Segments& segments) {
  Segments out;
  size_t begin = 0;
  for (size_t length : segments) {
    std::vector<Cpt> classes(length);
    for (size_t p = 0; p < length; ++p) classes[p] = Classify(cpts[begin + p]);
    const Matcher m(std::move(classes));
    for (size_t i = 0; i < m.size();) {
      const size_t next = m.Match(i);
      out.push_back(next - i);
      i = next;
    }
    begin += length;
  }
  return out;
}

}  // namespace layerpool::tokenizer
