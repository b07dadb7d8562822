// jinja2 3.1's filters, as templates use them (`value | name(args)`).

#include <algorithm>
#include <cmath>

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

absl::Status Bad(const std::string& what) { return absl::InvalidArgumentError(what); }

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

}  // namespace

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
    if (v.is_string()) return Value::Int(static_cast<int64_t>(CharCount(v.str())));
    if (v.is_dict()) return Value::Int(static_cast<int64_t>(v.dict().items.size()));
    if (v.is_list()) return Value::Int(static_cast<int64_t>(v.list().size()));
    if (v.is_undefined()) return Value::Int(0);
    return Bad(absl::StrCat("a ", std::string(v.TypeName()), " has no length"));
  }
  if (name == "tojson") {
    // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None,
    // sort_keys=False): templates pass indent and sort_keys by name.
    const Value indent = Arg(args, 99, "indent");
    if (indent.is_integer() && indent.AsInt() > 1024) return Bad("tojson: indent over 1024");
    LP_ASSIGN_OR_RETURN(std::string json,
                        v.ToJson(indent.is_integer() ? static_cast<int>(std::max<int64_t>(
                                                           indent.AsInt(), -1))
                                                     : -1,
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
      if (out.size() > kMaxValueBytes) return TooLarge("join");
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
      if (absl::SimpleAtod(v.str(), &d)) return Value::Int(Value::Float(d).AsInt());
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
    if (v.is_integer() && v.AsInt() == std::numeric_limits<int64_t>::min()) {
      return Bad("abs: integer overflow");
    }
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
    LP_ASSIGN_OR_RETURN(std::string replaced, Replace(v.Str(), from.Str(), to.Str(),
                                                      count.is_integer() ? count.AsInt() : -1));
    return Value::String(std::move(replaced));
  }
  if (name == "indent") {
    const Value width = Arg(args, 0, "width", Value::Int(4));
    const Value first = Arg(args, 1, "first"), blank = Arg(args, 2, "blank");
    if (width.is_string()) return Bad("indent: a string width is not supported");
    LP_ASSIGN_OR_RETURN(std::string indented,
                        Indent(v.Str(), width.AsInt(), first.Truthy(), blank.Truthy()));
    return Value::String(std::move(indented));
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
        if (total.is_integer() && item.is_integer()) {
          int64_t sum;
          if (__builtin_add_overflow(total.AsInt(), item.AsInt(), &sum)) {
            return Bad("sum: integer overflow");
          }
          total = Value::Int(sum);
        } else {
          total = Value::Float(total.AsDouble() + item.AsDouble());
        }
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

}  // namespace layerpool::jinja
