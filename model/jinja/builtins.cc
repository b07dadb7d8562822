// Filters, tests, methods and globals, each as jinja2 3.1 and Python 3
// define it. Strings are indexed, sliced and iterated by code point; case
// conversions cover ASCII only.

#include "model/jinja/builtins.h"

#include <algorithm>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace layerpool::jinja {
namespace {

constexpr std::string_view kWhitespace = " \t\n\r\f\v";

absl::Status Bad(const std::string& what) { return absl::InvalidArgumentError(what); }

// The code points of a UTF-8 string, each as its bytes.
std::vector<std::string> Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    n = std::min(n, s.size() - i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

// Argument `index` by position or by `name`, else `fallback`.
Value Arg(const CallArgs& args, size_t index, std::string_view name, Value fallback = Value()) {
  for (const auto& [k, v] : args.named) {
    if (k == name) return v;
  }
  return index < args.positional.size() ? args.positional[index] : fallback;
}

std::string Strip(const std::string& s, const Value& chars, bool left, bool right) {
  const std::string set = chars.is_string() ? chars.str() : std::string(kWhitespace);
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && set.find(s[b]) != std::string::npos) ++b;
  }
  if (right) {
    while (e > b && set.find(s[e - 1]) != std::string::npos) --e;
  }
  return s.substr(b, e - b);
}

absl::StatusOr<Value> Split(const std::string& s, const Value& sep, const Value& maxsplit) {
  int64_t limit = maxsplit.is_integer() ? maxsplit.AsInt() : -1;
  std::vector<Value> parts;
  if (sep.is_undefined() || sep.is_none()) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && kWhitespace.find(s[i]) != std::string::npos) ++i;
      if (i >= s.size()) break;
      if (limit == 0) {
        parts.push_back(Value::String(Strip(s.substr(i), Value(), false, true)));
        break;
      }
      size_t e = i;
      while (e < s.size() && kWhitespace.find(s[e]) == std::string::npos) ++e;
      parts.push_back(Value::String(s.substr(i, e - i)));
      --limit;
      i = e;
    }
    return Value::List(std::move(parts));
  }
  if (!sep.is_string()) return Bad("split: the separator must be a string");
  if (sep.str().empty()) return Bad("split: empty separator");
  size_t i = 0;
  while (true) {
    const size_t at = limit == 0 ? std::string::npos : s.find(sep.str(), i);
    if (at == std::string::npos) {
      parts.push_back(Value::String(s.substr(i)));
      break;
    }
    parts.push_back(Value::String(s.substr(i, at - i)));
    i = at + sep.str().size();
    --limit;
  }
  return Value::List(std::move(parts));
}

std::string Replace(const std::string& s, const std::string& from, const std::string& to,
                    int64_t count) {
  if (from.empty()) return s;  // Python would insert `to` between characters; templates don't
  std::string out;
  size_t i = 0;
  while (count != 0) {
    const size_t at = s.find(from, i);
    if (at == std::string::npos) break;
    out += s.substr(i, at - i) + to;
    i = at + from.size();
    --count;
  }
  return out + s.substr(i);
}

std::string Capitalize(const std::string& s) {
  std::string out = absl::AsciiStrToLower(s);
  if (!out.empty()) out[0] = absl::ascii_toupper(out[0]);
  return out;
}

std::string Title(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    if (absl::ascii_isalpha(c)) {
      c = start ? absl::ascii_toupper(c) : absl::ascii_tolower(c);
      start = false;
    } else {
      start = true;
    }
  }
  return out;
}

std::string Indent(std::string s, int64_t width, bool first, bool blank) {
  const std::string pad(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  s += "\n";
  std::vector<std::string> lines;
  for (size_t i = 0; i < s.size();) {
    const size_t nl = s.find('\n', i);
    lines.push_back(s.substr(i, nl - i));
    i = nl + 1;
  }
  std::string rv;
  if (blank) {
    rv = absl::StrJoin(lines, "\n" + pad);
  } else {
    rv = lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n" + (lines[i].empty() ? "" : pad + lines[i]);
    }
  }
  return first ? pad + rv : rv;
}

absl::StatusOr<Value> Attribute(const Value& item, const Value& attribute) {
  if (!attribute.is_string()) return attribute.is_integer() ? GetItem(item, attribute) : Value();
  Value v = item;
  for (absl::string_view part : absl::StrSplit(attribute.str(), '.')) {
    LP_ASSIGN_OR_RETURN(v, GetAttr(v, std::string_view(part.data(), part.size())));
  }
  return v;
}

// select/reject/selectattr/rejectattr.
absl::StatusOr<Value> SelectFilter(const Value& seq, const CallArgs& args, bool by_attribute,
                                   bool keep) {
  LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(seq));
  size_t next = 0;
  Value attribute;
  if (by_attribute) attribute = Arg(args, next++, "attribute");
  Value test = Arg(args, next++, "test");
  CallArgs test_args;
  for (size_t i = next; i < args.positional.size(); ++i) {
    test_args.positional.push_back(args.positional[i]);
  }
  std::vector<Value> out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attribute) {
      LP_ASSIGN_OR_RETURN(subject, Attribute(item, attribute));
    }
    bool pass = subject.Truthy();
    if (test.is_string()) {
      LP_ASSIGN_OR_RETURN(pass, ApplyTest(test.str(), subject, test_args));
    }
    if (pass == keep) out.push_back(item);
  }
  return Value::List(std::move(out));
}

absl::StatusOr<std::vector<Value>> Sorted(std::vector<Value> items, const Value& attribute,
                                          bool reverse, bool case_sensitive) {
  absl::Status error;
  auto key = [&](const Value& v) -> Value {
    absl::StatusOr<Value> k = attribute.is_undefined() ? v : Attribute(v, attribute);
    if (!k.ok()) {
      error = k.status();
      return Value();
    }
    if (!case_sensitive && k->is_string()) return Value::String(absl::AsciiStrToLower(k->str()));
    return *k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    absl::StatusOr<bool> less = reverse ? Less(key(b), key(a)) : Less(key(a), key(b));
    if (!less.ok()) error = less.status();
    return less.ok() && *less;
  });
  LP_RETURN_IF_ERROR(error);
  return items;
}

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
      return Value::String(Replace(s, from.str(), to.str(), count.is_integer() ? count.AsInt() : -1));
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
        return Value::Int(static_cast<int64_t>(Chars(s.substr(0, at)).size()));
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
      }
      return Value::String(std::move(out));
    });
  }
  return Value();
}

}  // namespace

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
  if ((obj.is_list() || obj.is_string()) && key.is_integer()) {
    std::vector<std::string> chars;
    if (obj.is_string()) chars = Chars(obj.str());
    const int64_t n = obj.is_list() ? static_cast<int64_t>(obj.list().size())
                                    : static_cast<int64_t>(chars.size());
    int64_t i = key.AsInt();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return obj.is_list() ? obj.list()[i] : Value::String(chars[i]);
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

absl::StatusOr<Value> ApplyFilter(std::string_view name, const Value& v, const CallArgs& args) {
  if (name == "trim") {
    return Value::String(Strip(v.Str(), Arg(args, 0, "chars"), true, true));
  }
  if (name == "upper") return Value::String(absl::AsciiStrToUpper(v.Str()));
  if (name == "lower") return Value::String(absl::AsciiStrToLower(v.Str()));
  if (name == "capitalize") return Value::String(Capitalize(v.Str()));
  if (name == "title") return Value::String(Title(v.Str()));
  if (name == "string") return Value::String(v.Str());
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    // Autoescaping is off for chat templates; `safe` is a no-op there. `e`
    // would escape HTML: refuse rather than differ.
    if (name == "safe") return v;
    return Bad(absl::StrCat("the '", std::string(name), "' filter is not supported"));
  }
  if (name == "length" || name == "count") {
    if (v.is_string()) return Value::Int(static_cast<int64_t>(Chars(v.str()).size()));
    if (v.is_dict()) return Value::Int(static_cast<int64_t>(v.dict().items.size()));
    if (v.is_list()) return Value::Int(static_cast<int64_t>(v.list().size()));
    if (v.is_undefined()) return Value::Int(0);
    return Bad(absl::StrCat("a ", std::string(v.TypeName()), " has no length"));
  }
  if (name == "tojson") {
    // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None,
    // sort_keys=False): templates pass indent and sort_keys by name.
    const Value indent = Arg(args, 99, "indent");
    LP_ASSIGN_OR_RETURN(std::string json,
                        v.ToJson(indent.is_integer() ? static_cast<int>(indent.AsInt()) : -1,
                                 Arg(args, 99, "sort_keys").Truthy()));
    return Value::String(std::move(json));
  }
  if (name == "default" || name == "d") {
    const bool boolean = Arg(args, 1, "boolean").Truthy();
    if (v.is_undefined() || (boolean && !v.Truthy())) {
      return Arg(args, 0, "default_value", Value::String(""));
    }
    return v;
  }
  if (name == "first" || name == "last") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    const Value sep = Arg(args, 0, "d", Value::String(""));
    const Value attribute = Arg(args, 1, "attribute");
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) out += sep.Str();
      Value item = items[i];
      if (!attribute.is_undefined()) {
        LP_ASSIGN_OR_RETURN(item, Attribute(item, attribute));
      }
      out += item.Str();
    }
    return Value::String(std::move(out));
  }
  if (name == "list") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    return Value::List(std::move(items));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::List({});
    if (!v.is_dict()) return Bad("items: needs a dict");
    std::vector<Value> out;
    for (const auto& [k, x] : v.dict().items) out.push_back(Value::List({Value::String(k), x}));
    return Value::List(std::move(out));
  }
  if (name == "dictsort") {
    if (!v.is_dict()) return Bad("dictsort: needs a dict");
    std::vector<Value> pairs;
    for (const auto& [k, x] : v.dict().items) pairs.push_back(Value::List({Value::String(k), x}));
    LP_ASSIGN_OR_RETURN(pairs, Sorted(std::move(pairs), Value::Int(0),
                                      Arg(args, 2, "reverse").Truthy(),
                                      Arg(args, 0, "case_sensitive").Truthy()));
    return Value::List(std::move(pairs));
  }
  if (name == "int") {
    if (v.is_number()) return Value::Int(v.AsInt());
    if (v.is_string()) {
      int64_t i = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(v.str()), &i)) return Value::Int(i);
      double d = 0;
      if (absl::SimpleAtod(v.str(), &d)) return Value::Int(static_cast<int64_t>(d));
    }
    return Arg(args, 0, "default", Value::Int(0));
  }
  if (name == "float") {
    if (v.is_number()) return Value::Float(v.AsDouble());
    double d = 0;
    if (v.is_string() && absl::SimpleAtod(v.str(), &d)) return Value::Float(d);
    return Arg(args, 0, "default", Value::Float(0));
  }
  if (name == "abs") {
    if (!v.is_number()) return Bad("abs: needs a number");
    return v.is_integer() ? Value::Int(std::abs(v.AsInt())) : Value::Float(std::abs(v.AsDouble()));
  }
  if (name == "round") {
    if (!v.is_number()) return Bad("round: needs a number");
    const Value precision = Arg(args, 0, "precision", Value::Int(0));
    const double scale = std::pow(10.0, static_cast<double>(precision.AsInt()));
    return Value::Float(std::round(v.AsDouble() * scale) / scale);
  }
  if (name == "replace") {
    const Value from = Arg(args, 0, "old"), to = Arg(args, 1, "new"), count = Arg(args, 2, "count");
    return Value::String(Replace(v.Str(), from.Str(), to.Str(), count.is_integer() ? count.AsInt() : -1));
  }
  if (name == "indent") {
    const Value width = Arg(args, 0, "width", Value::Int(4));
    const Value first = Arg(args, 1, "first"), blank = Arg(args, 2, "blank");
    if (width.is_string()) return Bad("indent: a string width is not supported");
    return Value::String(Indent(v.Str(), width.AsInt(), first.Truthy(), blank.Truthy()));
  }
  if (name == "wordcount") {
    LP_ASSIGN_OR_RETURN(Value words, Split(v.Str(), Value(), Value()));
    return Value::Int(static_cast<int64_t>(words.list().size()));
  }
  if (name == "select" || name == "reject") return SelectFilter(v, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") {
    return SelectFilter(v, args, true, name == "selectattr");
  }
  if (name == "map") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    const Value attribute = Arg(args, 99, "attribute");
    std::vector<Value> out;
    for (const Value& item : items) {
      if (!attribute.is_undefined()) {
        LP_ASSIGN_OR_RETURN(Value x, Attribute(item, attribute));
        if (x.is_undefined()) x = Arg(args, 99, "default");
        out.push_back(std::move(x));
      } else {
        const Value filter = Arg(args, 0, "filter");
        if (!filter.is_string()) return Bad("map: give a filter name or attribute=");
        CallArgs rest;
        rest.positional.assign(args.positional.begin() + 1, args.positional.end());
        LP_ASSIGN_OR_RETURN(Value x, ApplyFilter(filter.str(), item, rest));
        out.push_back(std::move(x));
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "reverse") {
    if (v.is_string()) return Slice(v, Value(), Value(), Value::Int(-1));
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (name == "sort") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    LP_ASSIGN_OR_RETURN(items, Sorted(std::move(items), Arg(args, 2, "attribute"),
                                      Arg(args, 0, "reverse").Truthy(),
                                      Arg(args, 1, "case_sensitive").Truthy()));
    return Value::List(std::move(items));
  }
  if (name == "unique") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    std::vector<Value> out;
    for (const Value& item : items) {
      if (std::none_of(out.begin(), out.end(), [&](const Value& o) { return Equal(o, item); })) {
        out.push_back(item);
      }
    }
    return Value::List(std::move(out));
  }
  if (name == "sum" || name == "min" || name == "max") {
    LP_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v));
    if (name == "sum") {
      Value total = Arg(args, 1, "start", Value::Int(0));
      for (const Value& item : items) {
        if (!item.is_number() || !total.is_number()) return Bad("sum: needs numbers");
        total = total.is_integer() && item.is_integer() ? Value::Int(total.AsInt() + item.AsInt())
                                                        : Value::Float(total.AsDouble() + item.AsDouble());
      }
      return total;
    }
    if (items.empty()) return Value();
    Value best = items[0];
    for (const Value& item : items) {
      LP_ASSIGN_OR_RETURN(bool less, Less(item, best));
      if (less == (name == "min") && !Equal(item, best)) best = item;
    }
    return best;
  }
  return absl::NotFoundError(absl::StrCat("no filter named '", std::string(name), "'"));
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
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (out.size() >= 1'000'000) {
          return absl::ResourceExhaustedError("range: more than a million items");
        }
        out.push_back(Value::Int(i));
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
