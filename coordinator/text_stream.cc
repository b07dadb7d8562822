#include "coordinator/text_stream.h"

#include <algorithm>

namespace layerpool {
namespace {

// Bytes in the character a lead byte starts, or 0 for a byte that cannot
// start one.
int SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid character at bytes[i], 0 if invalid; -1 if it is
// valid so far but cut off by the end.
int CharAt(const std::string& bytes, size_t i) {
  const auto c0 = static_cast<unsigned char>(bytes[i]);
  const int n = SequenceLength(c0);
  if (n == 0) return 0;
  for (int k = 1; k < n; ++k) {
    if (i + k >= bytes.size()) return -1;
    const auto c = static_cast<unsigned char>(bytes[i + k]);
    if (!IsContinuation(c)) return 0;
    // Overlong forms, surrogates and values past U+10FFFF.
    if (k == 1 && ((c0 == 0xE0 && c < 0xA0) || (c0 == 0xED && c > 0x9F) ||
                   (c0 == 0xF0 && c < 0x90) || (c0 == 0xF4 && c > 0x8F))) {
      return 0;
    }
  }
  return n;
}

}  // namespace

size_t CompleteUtf8Prefix(const std::string& bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    const int n = CharAt(bytes, i);
    if (n < 0) break;
    i += n == 0 ? 1 : static_cast<size_t>(n);
  }
  return i;
}

std::string SanitizeUtf8(const std::string& bytes) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    const int n = CharAt(bytes, i);
    if (n > 0) {
      out.append(bytes, i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

TextStream::TextStream(std::vector<std::string> stop_strings) {
  for (std::string& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string TextStream::Add(const std::string& piece) {
  if (stopped()) return "";
  pending_bytes_ += piece;
  const size_t whole = CompleteUtf8Prefix(pending_bytes_);
  held_ += SanitizeUtf8(pending_bytes_.substr(0, whole));
  pending_bytes_.erase(0, whole);

  // The earliest stop string in the held text ends generation.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t at = held_.find(s);
    if (at != std::string::npos && at < first) {
      first = at;
      matched_ = s;
    }
  }
  if (first != std::string::npos) {
    std::string out = held_.substr(0, first);
    held_.clear();
    pending_bytes_.clear();
    return out;
  }
  // Keep back the longest tail that is a proper prefix of a stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t len = std::min(s.size() - 1, held_.size()); len > keep; --len) {
      if (held_.compare(held_.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string TextStream::Flush() {
  if (stopped()) return "";
  std::string out = held_ + SanitizeUtf8(pending_bytes_);
  held_.clear();
  pending_bytes_.clear();
  return out;
}

}  // namespace layerpool
