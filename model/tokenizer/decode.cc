// Ids back to text: llama_token_to_piece and llama_detokenize.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/unicode.h"
#include "model/tokenizer/vocab.h"

namespace layerpool {
namespace {

using tokenizer::Vocab;

// Byte-level text back to bytes. A code point outside GPT-2's alphabet is
// written the way llama.cpp's llama_decode_text writes it.
std::string DecodeByteLevel(std::string_view text) {
  std::string out;
  for (uint32_t cpt : tokenizer::DecodeUtf8(text)) {
    const int byte = tokenizer::UnicodeToByte(cpt);
    if (byte >= 0) {
      out.push_back(static_cast<char>(byte));
      continue;
    }
    absl::StrAppend(&out, "[UNK_BYTE_0x");
    for (char c : tokenizer::EncodeUtf8(cpt)) {
      absl::StrAppendFormat(&out, "%02x", static_cast<uint8_t>(c));
    }
    out.append(text).append("]");
  }
  return out;
}

// The value of a <0xNN> token: the hex digits after "<0x", read as strtol
// reads them (up to the first non-digit).
char ByteOfToken(std::string_view text) {
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (digit < 0) break;
    value = value * 16 + digit;
  }
  return static_cast<char>(value);
}

// llama_detokenize's clean-up of spaces before punctuation and around
// apostrophes (clean_spaces vocabularies: most BPE ones, and WPM).
std::string CleanSpaces(std::string text) {
  // " ?", " !", " .", " ," lose the space.
  std::string a;
  for (size_t i = 0; i < text.size(); ++i) {
    const char x = text[i];
    if (i > 0 && text[i - 1] == ' ' && !a.empty() &&
        (x == '?' || x == '!' || x == '.' || x == ',')) {
      a.pop_back();
    }
    a.push_back(x);
  }
  // " ' " loses both spaces.
  std::string b;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = a[i];
    if (i > 0 && x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' &&
        a[i + 1] == ' ') {
      if (!b.empty()) b.pop_back();
      b.push_back(x);
      a[++i] = '\0';  // llama.cpp blanks the next space, then skips it
      continue;
    }
    b.push_back(x);
  }
  // " 's", " 'm", " 're", " 've" lose the space.
  std::string c;
  for (size_t i = 0; i < b.size(); ++i) {
    const char x = b[i];
    if (i > 0 && b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      const bool two = i + 2 < b.size();
      if (x1 == 's' || x1 == 'm' ||
          (x1 != 't' && x1 != 'd' && two &&
           ((x1 == 'r' && b[i + 2] == 'e') || (x1 == 'v' && b[i + 2] == 'e')))) {
        if (!c.empty()) c.pop_back();
      }
    }
    c.push_back(x);
  }
  return c;
}

}  // namespace

std::string Tokenizer::TokenToPiece(int32_t id, bool special) const {
  const Vocab& v = *vocab_;
  if (!v.Valid(id)) return "";
  const tokenizer::TokenData& token = v.tokens[id];
  constexpr uint32_t kSpecial = tokenizer::kAttrUnknown | tokenizer::kAttrControl;
  if (!special && (token.attr & kSpecial)) return "";
  if (token.attr & (kSpecial | tokenizer::kAttrUserDefined)) return token.text;
  if (token.attr & tokenizer::kAttrNormal) {
    if (v.type == tokenizer::VocabType::kBpe) return DecodeByteLevel(token.text);
    return absl::StrReplaceAll(token.text, {{"\xE2\x96\x81", " "}});
  }
  if ((token.attr & tokenizer::kAttrByte) && token.text.size() >= 5 &&
      v.type != tokenizer::VocabType::kWpm) {
    return std::string(1, ByteOfToken(token.text));
  }
  return "";  // unused and undefined tokens print as nothing
}

std::string Tokenizer::Decode(std::span<const int32_t> ids,
                              bool special) const {
  std::string text;
  bool strip_space = vocab_->add_space_prefix;  // only the first piece's
  for (int32_t id : ids) {
    std::string piece = TokenToPiece(id, special);
    if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_space = false;
    text += piece;
  }
  if (vocab_->clean_spaces) text = CleanSpaces(std::move(text));
  return text;
}

}  // namespace layerpool
