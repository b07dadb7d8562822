// A small Jinja2 interpreter for the templates models ship: chat templates
// in GGUF metadata (`tokenizer.chat_template`) and tokenizer_config.json.
//
// It renders what Python's jinja2 renders, byte for byte, in the environment
// Hugging Face transformers uses for chat templates: trim_blocks and
// lstrip_blocks on, loop controls (break, continue), a `tojson` that is
// json.dumps(ensure_ascii=False), the globals raise_exception() and
// strftime_now(). tests/chat_templates holds the templates and conversations
// it is checked on against python3-jinja2.
//
// Supported: text, {{ }}, {% %}, {# #} with `-`/`+` whitespace control;
// if/elif/else, for (with unpacking, an `if` filter, else, the `loop`
// variable, break, continue), set (also `ns.attr` and the block form), macro;
// literals, lists, dicts, attribute/item access, slices, calls, filters,
// tests, arithmetic, comparisons, `in`, `~`, `and`/`or`/`not`, inline if.
// The filters, tests and string/dict methods are those listed in
// builtins.cc. Anything else (include, extends, call blocks, ...) is refused
// at parse time with the line it is on.
//
// Rendering is bounded: a template that loops or recurses without end,
// builds a string or list of more than 16 MiB, or writes more than that,
// stops with ResourceExhausted. Integers are 64-bit: arithmetic past that is
// an InvalidArgument ("integer overflow"), where Python would grow a big
// int. Nothing a template does can crash the process.
//
// Thread safety: a parsed Template is immutable; Render may be called from
// several threads at once.
#ifndef LAYERPOOL_MODEL_JINJA_JINJA_H_
#define LAYERPOOL_MODEL_JINJA_JINJA_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "model/jinja/value.h"

namespace layerpool::jinja {

struct Node;

class Template {
 public:
  // InvalidArgument naming the line for a syntax error or an unsupported
  // construct.
  [[nodiscard]] static absl::StatusOr<Template> Parse(std::string_view source);

  // Renders with the variables of `context` (a dict). Errors:
  // FailedPrecondition carrying the message of raise_exception(...);
  // InvalidArgument for a type error (with its line); ResourceExhausted
  // past the bounds above.
  [[nodiscard]] absl::StatusOr<std::string> Render(const Dict& context) const;

 private:
  std::shared_ptr<const std::vector<Node>> body_;
};

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_JINJA_H_
