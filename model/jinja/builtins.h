// Internal to model/jinja: the filters, tests, attributes (string, list and
// dict methods) and global functions templates may use, with Python's and
// jinja2's behaviour.
#ifndef LAYERPOOL_MODEL_JINJA_BUILTINS_H_
#define LAYERPOOL_MODEL_JINJA_BUILTINS_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "model/jinja/value.h"

namespace layerpool::jinja {

// Argument `index` of a call by position, else by `name`, else `fallback`.
Value Arg(const CallArgs& args, size_t index, std::string_view name, Value fallback = Value());

// `value | name(args)` (filters.cc). NotFound for an unknown filter.
absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& value, const CallArgs& args);
// `value is name(args)`. NotFound for an unknown test.
absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& value, const CallArgs& args);
// `obj.name`: a method bound to obj, else obj's item `name`, else undefined.
absl::StatusOr<Value> GetAttr(const Value& obj, std::string_view name);
// `obj[key]`: an item (negative list indices count from the end), else
// undefined.
absl::StatusOr<Value> GetItem(const Value& obj, const Value& key);
// `obj[start:stop:step]`, absent parts undefined.
absl::StatusOr<Value> Slice(const Value& obj, const Value& start, const Value& stop,
                            const Value& step);
// The global functions: range, namespace, dict, raise_exception,
// strftime_now; undefined for other names.
Value Global(std::string_view name);
// Iterating: a list's items, a dict's keys, a string's characters.
absl::StatusOr<std::vector<Value>> Iterate(const Value& value);

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_BUILTINS_H_
