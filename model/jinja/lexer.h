// Internal to model/jinja: the template source cut into text and tags,
// each tag's content as tokens, with jinja2's whitespace rules applied
// (trim_blocks, lstrip_blocks, `-` and `+` markers, one trailing newline
// dropped by the caller).
#ifndef LAYERPOOL_MODEL_JINJA_LEXER_H_
#define LAYERPOOL_MODEL_JINJA_LEXER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace layerpool::jinja {

struct Token {
  enum class Type { kName, kString, kInt, kFloat, kOp };
  Type type;
  std::string text;  // name, operator, or the decoded string
  int64_t i = 0;
  double f = 0;
};

// A piece of the template: literal text, or the tokens inside a tag.
struct Piece {
  enum class Type { kText, kOutput, kBlock };
  Type type;
  int line;
  std::string text;
  std::vector<Token> tokens;
};

// InvalidArgument "template line N: message".
absl::Status SyntaxError(int line, absl::string_view message);

// The pieces of `source` (newlines already normalised to \n).
absl::StatusOr<std::vector<Piece>> Lex(std::string source);

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_LEXER_H_
