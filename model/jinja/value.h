// The values a Jinja template computes with, behaving as Python's do where a
// template can tell: truthiness, equality (1 == 1.0 == True), str() and
// repr() of numbers, lists and dicts, and json.dumps for `tojson`.
//
// Lists and dicts are shared and immutable once built, except a namespace()
// dict, whose attributes `{% set ns.x = ... %}` may change. Copying a Value
// is cheap for every kind but strings.
#ifndef LAYERPOOL_MODEL_JINJA_VALUE_H_
#define LAYERPOOL_MODEL_JINJA_VALUE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace layerpool::jinja {

class Value;

// The largest string or list a template may build (and its output): a
// template is code from a model file, and a few bytes of it can ask for
// terabytes ("x" * 999999 * 999999).
inline constexpr size_t kMaxValueBytes = 16 << 20;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
};
using Function = std::function<absl::StatusOr<Value>(const CallArgs&)>;

// A dict keeps its keys in insertion order, as Python's does. Keys are
// strings: the only kind chat templates and JSON requests use.
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;

  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value value);
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

  Value() = default;  // undefined
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value List(std::vector<Value> items);
  static Value MakeDict(Dict dict);
  static Value MakeFunction(Function f);
  // JSON null, booleans, numbers, strings, arrays and objects, recursively.
  static Value FromJson(const nlohmann::ordered_json& json);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_number() const {
    return kind() == Kind::kInt || kind() == Kind::kFloat || kind() == Kind::kBool;
  }
  bool is_integer() const { return kind() == Kind::kInt || kind() == Kind::kBool; }

  bool bool_value() const { return std::get<bool>(v_); }
  // Int or bool as an integer; a float truncated, saturating at the int64
  // range (NaN: 0).
  int64_t AsInt() const;
  // Any number as a double.
  double AsDouble() const;
  const std::string& str() const { return std::get<std::string>(v_); }
  const std::vector<Value>& list() const { return *std::get<std::shared_ptr<std::vector<Value>>>(v_); }
  const Dict& dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  Dict& mutable_dict() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(v_); }

  bool Truthy() const;
  // Python's str(): strings as they are, None as "None", True as "True",
  // floats as repr() does; undefined prints nothing (Jinja's default).
  std::string Str() const;
  // Python's repr(): strings quoted.
  std::string Repr() const;
  // Python's json.dumps(value, ensure_ascii=False, indent=indent,
  // sort_keys=sort_keys): indent < 0 is None (", " and ": " separators).
  absl::StatusOr<std::string> ToJson(int indent = -1, bool sort_keys = false) const;
  // The Jinja type name used in messages: "string", "list", ...
  const char* TypeName() const;

 private:
  struct Undefined {};
  std::variant<Undefined, std::monostate, bool, int64_t, double, std::string,
               std::shared_ptr<std::vector<Value>>, std::shared_ptr<Dict>,
               std::shared_ptr<Function>>
      v_;
};

// Python ==, with numbers compared by value across int, float and bool.
bool Equal(const Value& a, const Value& b);
// Python <: numbers with numbers, strings with strings (by code point),
// lists element-wise. InvalidArgument for other pairs.
absl::StatusOr<bool> Less(const Value& a, const Value& b);
// Python's repr() of a float: the shortest text that reads back the same.
std::string FloatRepr(double f);
// About the bytes a copy of `v` holds: its strings, and 32 per item of a
// list or dict, nested. Stops counting once past `limit`, returning more
// than it; a namespace that holds itself counts as past it.
size_t Footprint(const Value& v, size_t limit = kMaxValueBytes);

}  // namespace layerpool::jinja

#endif  // LAYERPOOL_MODEL_JINJA_VALUE_H_
