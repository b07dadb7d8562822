// Internal to model/jinja: source text to statements (parser.cc).
#ifndef LAYERPOOL_MODEL_JINJA_PARSE_H_
#define LAYERPOOL_MODEL_JINJA_PARSE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "model/jinja/ast.h"

namespace layerpool::jinja {

absl::StatusOr<Body> ParseTemplate(std::string_view source);

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_PARSE_H_
