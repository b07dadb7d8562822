// Turning a stream of token pieces into text a client can show: whole UTF-8
// characters only, and stop strings cut out.
//
// A token may end inside a UTF-8 character; its bytes wait for the next
// piece. With stop strings, text that could be the start of one waits until
// the following text rules it out; when a stop string appears, the text
// before it is released and the match is reported. Flush() releases what is
// left at the end of generation (an incomplete character becomes U+FFFD).
#ifndef LAYERPOOL_COORDINATOR_TEXT_STREAM_H_
#define LAYERPOOL_COORDINATOR_TEXT_STREAM_H_

#include <string>
#include <vector>

namespace layerpool {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Appends a token's bytes; returns the text that can be released now.
  // After a stop string matched, returns "" and ignores further input.
  std::string Add(const std::string& piece);
  std::string Flush();

  bool stopped() const { return !matched_.empty(); }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_bytes_;  // an incomplete UTF-8 character
  std::string held_;           // valid text that may begin a stop string
  std::string matched_;
};

// The length of the longest prefix of `bytes` made of whole UTF-8
// characters, leaving out an incomplete one at the end; invalid bytes count
// as whole (they are replaced when sent).
size_t CompleteUtf8Prefix(const std::string& bytes);

// `bytes` with every invalid UTF-8 sequence replaced by U+FFFD.
std::string SanitizeUtf8(const std::string& bytes);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_TEXT_STREAM_H_
