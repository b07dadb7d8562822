// Internal to model/jinja: Python's str methods that templates call, and
// jinja2's string filters, on UTF-8 (code points where indices matter,
// ASCII for case).
#ifndef LAYERPOOL_MODEL_JINJA_STRINGS_H_
#define LAYERPOOL_MODEL_JINJA_STRINGS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/jinja/value.h"

namespace layerpool::jinja {

inline constexpr std::string_view kWhitespace = " \t\n\r\f\v";

// ResourceExhausted: "WHAT: the result passes 16 MiB" (kMaxValueBytes).
absl::Status TooLarge(absl::string_view what);

// The code points of a UTF-8 string, each as its bytes.
std::vector<std::string> Chars(const std::string& s);
// How many code points Chars(s) would give, and the i-th of them (empty
// past the end), without making a string of each.
size_t CharCount(std::string_view s);
std::string CharAt(const std::string& s, size_t i);
// str.strip/lstrip/rstrip(chars); `chars` undefined or none: whitespace.
std::string Strip(const std::string& s, const Value& chars, bool left, bool right);
// str.split(sep, maxsplit) as a list of strings.
absl::StatusOr<Value> Split(const std::string& s, const Value& sep, const Value& maxsplit);
// str.replace(from, to, count); count < 0: all. TooLarge past
// kMaxValueBytes.
absl::StatusOr<std::string> Replace(const std::string& s, const std::string& from,
                                    const std::string& to, int64_t count);
std::string Capitalize(const std::string& s);
std::string Title(const std::string& s);
// jinja2's indent filter. TooLarge past kMaxValueBytes.
absl::StatusOr<std::string> Indent(std::string s, int64_t width, bool first, bool blank);

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_STRINGS_H_
