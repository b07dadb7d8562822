// Tests, attributes and methods, item access and globals, each as jinja2
// 3.1 and Python 3 define them (filters are in filters.cc). Strings are
// indexed, sliced and iterated by code point.

#include <algorithm>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "model/jinja/builtins.h"
#include "model/jinja/strings.h"

namespace layerpool::jinja {
namespace {

// Iterating makes a value of each character.
constexpr size_t kMaxIteratedChars = 1'000'000;

absl::Status Bad(const std::string& what) { return absl::InvalidArgumentError(what); }

Value Bound(Function f) { return Value::MakeFunction(std::move(f)); }

absl::StatusOr<Value> StringMethod(const Value& obj, std::string_view name) {
  const std::string s = obj.str();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const bool left = name != "rstrip", right = name != "lstrip";
    return Bound([s, left, right](const CallArgs& a) -> absl::StatusOr<Value> {
      return Value::String(Strip(s, Arg(a, 0, "chars"), left, right));
    });
  }
  if (name == "split") {
    return Bound([s](const CallArgs& a) { return Split(s, Arg(a, 0, "sep"), Arg(a, 1, "maxsplit")); });
  }
  if (name == "startswith" || name == "endswith") {
    const bool start = name == "startswith";
    return Bound([s, start](const CallArgs& a) -> absl::StatusOr<Value> {
      const Value p = Arg(a, 0, "prefix");
      std::vector<Value> options = p.is_list() ? p.list() : std::vector<Value>{p};
      for (const Value& o : options) {
        if (!o.is_string()) return Bad("startswith/endswith take strings");
        if (start ? absl::StartsWith(s, o.str()) : absl::EndsWith(s, o.str())) return Value::Bool(true);
      }
      return Value::Bool(false);
    });
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    const std::string n(name);
    return Bound([s, n](const CallArgs&) -> absl::StatusOr<Value> {
      if (n == "upper") return Value::String(absl::AsciiStrToUpper(s));
      if (n == "lower") return Value::String(absl::AsciiStrToLower(s));
      if (n == "title") return Value::String(Title(s));
      return Value::String(Capitalize(s));
    });
  }
  if (name == "replace") {
    return Bound([s](const CallArgs& a) -> absl::StatusOr<Value> {
      const Value from = Arg(a, 0, "old"), to = Arg(a, 1, "new"), count = Arg(a, 2, "count");
      if (!from.is_string() || !to.is_string()) return Bad("replace takes strings");
      LP_ASSIGN_OR_RETURN(std::string replaced, Replace(s, from.str(), to.str(),
                                                        count.is_integer() ? count.AsInt() : -1));
      return Value::String(std::move(replaced));
    });
  }
  if (name == "find" || name == "count") {
    const bool find = name == "find";
    return Bound([s, find](const CallArgs& a) -> absl::StatusOr<Value> {
      const Value sub = Arg(a, 0, "sub");
      if (!sub.is_string()) return Bad("find/count take a string");
      if (find) {
        const size_t at = s.find(sub.str());
        if (at == std::string::npos) return Value::Int(-1);
        const std::string_view before = std::string_view(s).substr(0, at);
        return Value::Int(static_cast<int64_t>(CharCount(before)));
      }
      int64_t n = 0;
      for (size_t at = s.find(sub.str()); at != std::string::npos && !sub.str().empty();
           at = s.find(sub.str(), at + sub.str().size())) {
        ++n;
      }
      return Value::Int(n);
    });
  }
  if (name == "join") {
    return Bound([s](const CallArgs& a) -> absl::StatusOr<Value> {
      LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(Arg(a, 0, "iterable")));
      std::string out;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].is_string()) return Bad("str.join takes strings");
        if (i > 0) out += s;
        out += items[i].str();
        if (out.size() > kMaxValueBytes) return TooLarge("str.join");
      }
      return Value::String(std::move(out));
    });
  }
  return Value();
}

}  // namespace

Value Arg(const CallArgs& args, size_t index, std::string_view name, Value fallback) {
  for (const auto& [k, v] : args.named) {
    if (k == name) return v;
  }
  return index < args.positional.size() ? args.positional[index] : fallback;
}

absl::StatusOr<std::vector<Value>> Iterate(const Value& value) {
  switch (value.kind()) {
    case Value::Kind::kUndefined: return std::vector<Value>{};
    case Value::Kind::kList: return value.list();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& [k, v] : value.dict().items) keys.push_back(Value::String(k));
      return keys;
    }
    case Value::Kind::kString: {
      if (value.str().size() > kMaxIteratedChars) {
        return absl::ResourceExhaustedError("iterating over a string of over a million bytes");
      }
      std::vector<Value> chars;
      for (std::string& c : Chars(value.str())) chars.push_back(Value::String(std::move(c)));
      return chars;
    }
    default:
      return Bad(absl::StrCat("a ", std::string(value.TypeName()), " is not iterable"));
  }
}

absl::StatusOr<Value> GetAttr(const Value& obj, std::string_view name) {
  if (obj.is_string()) return StringMethod(obj, name);
  if (obj.is_dict()) {
    const Value dict = obj;
    if (!obj.dict().is_namespace) {
      if (name == "items" || name == "keys" || name == "values") {
        const std::string n(name);
        return Bound([dict, n](const CallArgs&) -> absl::StatusOr<Value> {
          std::vector<Value> out;
          for (const auto& [k, v] : dict.dict().items) {
            if (n == "items") out.push_back(Value::List({Value::String(k), v}));
            if (n == "keys") out.push_back(Value::String(k));
            if (n == "values") out.push_back(v);
          }
          return Value::List(std::move(out));
        });
      }
      if (name == "get") {
        return Bound([dict](const CallArgs& a) -> absl::StatusOr<Value> {
          const Value key = Arg(a, 0, "key");
          const Value* v = key.is_string() ? dict.dict().Find(key.str()) : nullptr;
          return v ? *v : Arg(a, 1, "default", Value::None());
        });
      }
    }
    const Value* v = obj.dict().Find(name);
    return v ? *v : Value();
  }
  return Value();
}

absl::StatusOr<Value> GetItem(const Value& obj, const Value& key) {
  if (obj.is_dict()) {
    if (!key.is_string()) return Value();
    const Value* v = obj.dict().Find(key.str());
    if (v != nullptr) return *v;
    return GetAttr(obj, key.str());  // d['items'] falls back to the method, as in jinja2
  }
  if (obj.is_list() && key.is_integer()) {
    const int64_t n = static_cast<int64_t>(obj.list().size());
    int64_t i = key.AsInt();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return obj.list()[i];
  }
  if (obj.is_string() && key.is_integer()) {
    // One walk over the code points; a negative index needs their count.
    int64_t i = key.AsInt();
    if (i < 0) i += static_cast<int64_t>(CharCount(obj.str()));
    if (i < 0) return Value();
    std::string c = CharAt(obj.str(), static_cast<size_t>(i));
    if (c.empty()) return Value();  // past the end
    return Value::String(std::move(c));
  }
  if (obj.is_string() && key.is_string()) return GetAttr(obj, key.str());
  return Value();
}

absl::StatusOr<Value> Slice(const Value& obj, const Value& start, const Value& stop,
                            const Value& step) {
  std::vector<Value> items;
  if (obj.is_list()) {
    items = obj.list();
  } else if (obj.is_string()) {
    LP_ASSIGN_OR_RETURN(items, Iterate(obj));
  } else {
    return Bad(absl::StrCat("a ", std::string(obj.TypeName()), " cannot be sliced"));
  }
  for (const Value* v : {&start, &stop, &step}) {
    if (!v->is_undefined() && !v->is_none() && !v->is_integer()) {
      return Bad("slice indices must be integers");
    }
  }
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t st = step.is_integer() ? step.AsInt() : 1;
  if (st == 0) return Bad("slice step cannot be zero");
  // Python's PySlice_AdjustIndices.
  auto clamp = [&](const Value& v, int64_t fallback) {
    if (!v.is_integer()) return fallback;
    int64_t i = v.AsInt();
    if (i < 0) i += n;
    if (st > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t b = clamp(start, st > 0 ? 0 : n - 1);
  const int64_t e = clamp(stop, st > 0 ? n : -1);
  std::vector<Value> out;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) out.push_back(items[i]);
  if (obj.is_list()) return Value::List(std::move(out));
  std::string s;
  for (const Value& c : out) s += c.str();
  return Value::String(std::move(s));
}

absl::StatusOr<bool> ApplyTest(std::string_view name, const Value& v, const CallArgs& args) {
  const Value other = Arg(args, 0, "other");
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind() == Value::Kind::kInt;
  if (name == "float") return v.kind() == Value::Kind::kFloat;
  if (name == "boolean") return v.kind() == Value::Kind::kBool;
  if (name == "true") return v.kind() == Value::Kind::kBool && v.bool_value();
  if (name == "false") return v.kind() == Value::Kind::kBool && !v.bool_value();
  if (name == "mapping") return v.is_dict() && !v.dict().is_namespace;
  if (name == "iterable") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
  if (name == "callable") return v.kind() == Value::Kind::kFunction;
  if (name == "lower") return v.is_string() && absl::AsciiStrToLower(v.str()) == v.str();
  if (name == "upper") return v.is_string() && absl::AsciiStrToUpper(v.str()) == v.str();
  if (name == "eq" || name == "equalto" || name == "==") return Equal(v, other);
  if (name == "ne" || name == "!=") return !Equal(v, other);
  if (name == "sameas") {
    if (v.is_dict() && other.is_dict()) return &v.dict() == &other.dict();
    return v.kind() == other.kind() && (v.is_none() || v.is_undefined() ||
                                        (v.kind() == Value::Kind::kBool && Equal(v, other)));
  }
  if (name == "lt" || name == "lessthan" || name == "<") return Less(v, other);
  if (name == "gt" || name == "greaterthan" || name == ">") return Less(other, v);
  if (name == "le" || name == "<=") {
    LP_ASSIGN_OR_RETURN(bool gt, Less(other, v));
    return !gt;
  }
  if (name == "ge" || name == ">=") {
    LP_ASSIGN_OR_RETURN(bool lt, Less(v, other));
    return !lt;
  }
  if (name == "odd" || name == "even") {
    if (!v.is_integer()) return Bad("odd/even: needs an integer");
    return (v.AsInt() % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    if (!v.is_integer() || !other.is_integer() || other.AsInt() == 0) {
      return Bad("divisibleby: needs integers, the divisor not 0");
    }
    return v.AsInt() % other.AsInt() == 0;
  }
  if (name == "in") {
    if (other.is_string()) return v.is_string() && other.str().find(v.str()) != std::string::npos;
    if (other.is_dict()) return v.is_string() && other.dict().Find(v.str()) != nullptr;
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(other));
    return std::any_of(items.begin(), items.end(), [&](const Value& i) { return Equal(i, v); });
  }
  return absl::NotFoundError(absl::StrCat("no test named '", std::string(name), "'"));
}

Value Global(std::string_view name) {
  if (name == "range") {
    return Bound([](const CallArgs& a) -> absl::StatusOr<Value> {
      int64_t start = 0, stop = 0, step = 1;
      const auto& p = a.positional;
      for (const Value& x : p) {
        if (!x.is_integer()) return Bad("range: needs integers");
      }
      if (p.size() == 1) {
        stop = p[0].AsInt();
      } else if (p.size() == 2 || p.size() == 3) {
        start = p[0].AsInt();
        stop = p[1].AsInt();
        if (p.size() == 3) step = p[2].AsInt();
      } else {
        return Bad("range: takes 1 to 3 arguments");
      }
      if (step == 0) return Bad("range: step must not be zero");
      std::vector<Value> out;
      for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        if (out.size() >= 1'000'000) {
          return absl::ResourceExhaustedError("range: more than a million items");
        }
        out.push_back(Value::Int(i));
        if (__builtin_add_overflow(i, step, &i)) break;  // past stop too
      }
      return Value::List(std::move(out));
    });
  }
  if (name == "namespace" || name == "dict") {
    const bool ns = name == "namespace";
    return Bound([ns](const CallArgs& a) -> absl::StatusOr<Value> {
      Dict d;
      d.is_namespace = ns;
      for (const Value& p : a.positional) {
        if (!p.is_dict()) return Bad("namespace()/dict() take a dict or name=value pairs");
        for (const auto& [k, v] : p.dict().items) d.Set(k, v);
      }
      for (const auto& [k, v] : a.named) d.Set(k, v);
      return Value::MakeDict(std::move(d));
    });
  }
  if (name == "raise_exception") {
    return Bound([](const CallArgs& a) -> absl::StatusOr<Value> {
      return absl::FailedPreconditionError(Arg(a, 0, "message").Str());
    });
  }
  if (name == "strftime_now") {
    return Bound([](const CallArgs& a) -> absl::StatusOr<Value> {
      const Value format = Arg(a, 0, "format");
      if (!format.is_string()) return Bad("strftime_now: needs a format string");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, format.str().c_str(), &tm);
      return Value::String(std::string(buf, n));
    });
  }
  return Value();
}

}  // namespace layerpool::jinja
