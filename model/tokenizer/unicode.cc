#include "model/tokenizer/unicode.h"

#include <array>

#include "unicode/normalizer2.h"
#include "unicode/uchar.h"
#include "unicode/unistr.h"

namespace layerpool::tokenizer {
namespace {

uint8_t Byte(std::string_view text, size_t i) {
  return static_cast<uint8_t>(text[i]);
}

bool IsContinuation(std::string_view text, size_t i) {
  return (Byte(text, i) & 0xC0) == 0x80;
}

uint16_t CategoryFlag(int8_t category) {
  switch (category) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_NON_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_COMBINING_SPACING_MARK:
      return kMark;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      return kSeparator;
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_PRIVATE_USE_CHAR:
    case U_SURROGATE:
      return kControl;
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return kPunctuation;
    case U_MATH_SYMBOL:
    case U_CURRENCY_SYMBOL:
    case U_MODIFIER_SYMBOL:
    case U_OTHER_SYMBOL:
      return kSymbol;
    default:  // U_UNASSIGNED
      return kUndefined;
  }
}

// The GPT-2 byte alphabet, built once: bytes that print as themselves keep
// their value, the remaining ones take U+0100, U+0101, ... in byte order.
struct ByteAlphabet {
  std::array<std::string, 256> utf8;
  std::array<int16_t, 512> byte_of;  // code point (< 512) -> byte, or -1

  ByteAlphabet() {
    byte_of.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool prints = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                          (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = prints ? b : next++;
      utf8[b] = EncodeUtf8(cp);
      byte_of[cp] = static_cast<int16_t>(b);
    }
  }
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet* alphabet = new ByteAlphabet();
  return *alphabet;
}

}  // namespace

size_t Utf8SequenceLength(char lead) {
  static constexpr size_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1,
                                          1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(lead) >> 4];
}

uint32_t DecodeCodepoint(std::string_view text, size_t* offset) {
  const size_t i = *offset;
  const uint8_t b0 = Byte(text, i);
  if (b0 < 0x80) {
    *offset += 1;
    return b0;
  }
  // Length from the lead byte's prefix bits, as llama.cpp reads them.
  size_t length = 0;
  uint32_t cp = 0;
  if ((b0 & 0x40) == 0) {
    length = 0;  // a continuation byte cannot start a sequence
  } else if ((b0 & 0x20) == 0) {
    length = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0x10) == 0) {
    length = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0x08) == 0) {
    length = 4;
    cp = b0 & 0x07;
  }
  bool valid = length > 0 && i + length <= text.size();
  for (size_t k = 1; valid && k < length; ++k) {
    valid = IsContinuation(text, i + k);
    cp = (cp << 6) | (Byte(text, i + k) & 0x3F);
  }
  // llama.cpp decodes F5..F7 sequences to values above U+10FFFF and then
  // throws when re-encoding them; treating them as malformed keeps us alive.
  if (!valid || cp > kMaxCodepoint) {
    *offset += 1;
    return kReplacementChar;
  }
  *offset += length;
  return cp;
}

std::vector<uint32_t> DecodeUtf8(std::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) out.push_back(DecodeCodepoint(text, &offset));
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp > kMaxCodepoint) cp = kReplacementChar;
  if (cp <= 0x7F) {
    out->push_back(static_cast<char>(cp));
  } else if (cp <= 0x7FF) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string EncodeUtf8(uint32_t codepoint) {
  std::string out;
  AppendUtf8(codepoint, &out);
  return out;
}

uint16_t CodepointFlags(uint32_t cp) {
  if (cp > kMaxCodepoint) return kUndefined;
  const auto c = static_cast<UChar32>(cp);
  uint16_t flags = CategoryFlag(u_charType(c));
  if (u_isUWhiteSpace(c)) flags |= kWhitespace;
  return flags;
}

uint32_t ToLower(uint32_t cp) {
  if (cp > kMaxCodepoint) return cp;
  return static_cast<uint32_t>(u_tolower(static_cast<UChar32>(cp)));
}

uint32_t NfdFirst(uint32_t cp) {
  if (cp < 0xC0 || cp > kMaxCodepoint) return cp;  // nothing below À decomposes
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status) || nfd == nullptr) return cp;
  icu::UnicodeString decomposition;
  if (!nfd->getDecomposition(static_cast<UChar32>(cp), decomposition) ||
      decomposition.isEmpty()) {
    return cp;
  }
  return static_cast<uint32_t>(decomposition.char32At(0));
}

std::string_view ByteToUnicode(uint8_t byte) { return Alphabet().utf8[byte]; }

int UnicodeToByte(uint32_t codepoint) {
  if (codepoint >= Alphabet().byte_of.size()) return -1;
  return Alphabet().byte_of[codepoint];
}

}  // namespace layerpool::tokenizer
