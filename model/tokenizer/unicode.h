// Unicode helpers for the tokenizers, with llama.cpp's exact semantics.
//
// Tokenization must match llama.cpp (src/unicode.cpp) code point for code
// point, including on malformed input, so these functions copy its rules
// rather than the strict ones of a UTF-8 library:
//  - a sequence with a bad lead byte, a bad continuation byte or too few bytes
//    decodes to U+FFFD and consumes one byte; overlong forms and surrogates
//    are accepted as llama.cpp accepts them;
//  - character classes are the Unicode general categories (from ICU), with
//    whitespace being the White_Space property;
//  - "NFD" is llama.cpp's one-to-one approximation: a code point maps to the
//    first code point of its canonical decomposition (é -> e, 한 -> ᄒ).
//
// All functions are pure and thread-safe.
#ifndef LAYERPOOL_MODEL_TOKENIZER_UNICODE_H_
#define LAYERPOOL_MODEL_TOKENIZER_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace layerpool::tokenizer {

inline constexpr uint32_t kReplacementChar = 0xFFFD;
inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

// Bytes in the UTF-8 sequence that starts with `lead`, judged by its high
// four bits alone (1 for ASCII, continuation and invalid bytes).
size_t Utf8SequenceLength(char lead);

// Decodes the code point at `*offset` and advances past it. Malformed input
// yields kReplacementChar and advances one byte. Requires *offset < size.
uint32_t DecodeCodepoint(std::string_view text, size_t* offset);

// The whole of `text` as code points.
std::vector<uint32_t> DecodeUtf8(std::string_view text);

// Appends the UTF-8 form of `codepoint`; values above U+10FFFF append U+FFFD.
void AppendUtf8(uint32_t codepoint, std::string* out);
std::string EncodeUtf8(uint32_t codepoint);

// Category bits of a code point (llama.cpp's unicode_cpt_flags). Exactly one
// of the first eight bits is set for any code point; kWhitespace may be set
// in addition.
enum CodepointFlag : uint16_t {
  kUndefined = 1 << 0,    // Cn, and anything above U+10FFFF
  kNumber = 1 << 1,       // \p{N}
  kLetter = 1 << 2,       // \p{L}
  kSeparator = 1 << 3,    // \p{Z}
  kMark = 1 << 4,         // \p{M}
  kPunctuation = 1 << 5,  // \p{P}
  kSymbol = 1 << 6,       // \p{S}
  kControl = 1 << 7,      // Cc, Cf, Co, Cs
  kWhitespace = 1 << 8,   // White_Space: \t-\r, space, U+0085, U+00A0, ...
};
uint16_t CodepointFlags(uint32_t codepoint);

inline bool IsWhitespace(uint32_t codepoint) {
  return (CodepointFlags(codepoint) & kWhitespace) != 0;
}

// Simple (one-to-one) lower-case mapping.
uint32_t ToLower(uint32_t codepoint);

// First code point of the canonical decomposition, or `codepoint` itself.
uint32_t NfdFirst(uint32_t codepoint);

// GPT-2's byte-level alphabet: every byte has a printable code point (the
// printable Latin-1 bytes map to themselves, the others to U+0100...).
// ByteToUnicode returns that code point's UTF-8; UnicodeToByte inverts it and
// returns -1 for a code point that is not in the alphabet.
std::string_view ByteToUnicode(uint8_t byte);
int UnicodeToByte(uint32_t codepoint);

}  // namespace layerpool::tokenizer

#endif  // LAYERPOOL_MODEL_TOKENIZER_UNICODE_H_
