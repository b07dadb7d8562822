#include "model/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool::jinja {

const Value* Dict::Find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Dict::Set(std::string key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

Value Value::None() {
  Value v;
  v.v_ = std::monostate{};
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.v_ = b;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.v_ = i;
  return v;
}
Value Value::Float(double f) {
  Value v;
  v.v_ = f;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.v_ = std::move(s);
  return v;
}
Value Value::List(std::vector<Value> items) {
  Value v;
  v.v_ = std::make_shared<std::vector<Value>>(std::move(items));
  return v;
}
Value Value::MakeDict(Dict dict) {
  Value v;
  v.v_ = std::make_shared<Dict>(std::move(dict));
  return v;
}
Value Value::MakeFunction(Function f) {
  Value v;
  v.v_ = std::make_shared<Function>(std::move(f));
  return v;
}

Value Value::FromJson(const nlohmann::ordered_json& json) {
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::boolean: return Bool(json.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer: return Int(json.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Int(static_cast<int64_t>(json.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float: return Float(json.get<double>());
    case nlohmann::ordered_json::value_t::string: return String(json.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      for (const auto& e : json) items.push_back(FromJson(e));
      return List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Dict d;
      for (const auto& [k, e] : json.items()) d.items.emplace_back(k, FromJson(e));
      return MakeDict(std::move(d));
    }
    default: return None();
  }
}

int64_t Value::AsInt() const {
  switch (kind()) {
    case Kind::kBool: return bool_value() ? 1 : 0;
    case Kind::kInt: return std::get<int64_t>(v_);
    case Kind::kFloat: {
      const double f = std::get<double>(v_);
      if (std::isnan(f)) return 0;
      // 2^63 is exact in a double; every double below it converts.
      if (f >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
      if (f < -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
      return static_cast<int64_t>(f);
    }
    default: return 0;
  }
}

double Value::AsDouble() const {
  return kind() == Kind::kFloat ? std::get<double>(v_) : static_cast<double>(AsInt());
}

bool Value::Truthy() const {
  switch (kind()) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return bool_value();
    case Kind::kInt: return AsInt() != 0;
    case Kind::kFloat: return AsDouble() != 0;
    case Kind::kString: return !str().empty();
    case Kind::kList: return !list().empty();
    case Kind::kDict: return dict().is_namespace || !dict().items.empty();
    case Kind::kFunction: return true;
  }
  return false;
}

const char* Value::TypeName() const {
  switch (kind()) {
    case Kind::kUndefined: return "undefined";
    case Kind::kNone: return "none";
    case Kind::kBool: return "boolean";
    case Kind::kInt: return "integer";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kList: return "list";
    case Kind::kDict: return dict().is_namespace ? "namespace" : "dict";
    case Kind::kFunction: return "function";
  }
  return "?";
}

std::string FloatRepr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  if (f == 0) return std::signbit(f) ? "-0.0" : "0.0";
  // The shortest %e precision that reads back exactly.
  char buf[40];
  for (int p = 0; p < 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  // buf is [-]d[.ddd]e[+-]XX: split it into digits and exponent.
  std::string s = buf;
  const bool negative = s[0] == '-';
  if (negative) s.erase(0, 1);
  const size_t e = s.find('e');
  const int exponent = std::atoi(s.c_str() + e + 1);
  std::string digits = s.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  std::string out;
  if (exponent >= -4 && exponent < 16) {
    // Fixed notation, as Python's repr for 1e-4 <= |f| < 1e16.
    if (exponent < 0) {
      out = "0." + std::string(-exponent - 1, '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out = digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += absl::StrFormat("e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  }
  return negative ? "-" + out : out;
}

namespace {

std::string PyQuote(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == q || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

void JsonString(const std::string& s, std::string* out) {
  *out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        if (c < 0x20) {
          *out += absl::StrFormat("\\u%04x", c);
        } else {
          *out += static_cast<char>(c);
        }
    }
  }
  *out += '"';
}

absl::Status Json(const Value& v, int indent, bool sort_keys, int depth, std::string* out) {
  if (depth > 100) return absl::InvalidArgumentError("tojson: nesting deeper than 100");
  if (out->size() > kMaxValueBytes) {
    return absl::ResourceExhaustedError("tojson: the text passed 16 MiB");
  }
  const std::string item_sep = indent < 0 ? ", " : ",";
  auto newline = [&](int level) {
    if (indent >= 0) *out += "\n" + std::string(static_cast<size_t>(indent * level), ' ');
  };
  switch (v.kind()) {
    case Value::Kind::kNone: *out += "null"; return absl::OkStatus();
    case Value::Kind::kBool: *out += v.bool_value() ? "true" : "false"; return absl::OkStatus();
    case Value::Kind::kInt: *out += absl::StrCat(v.AsInt()); return absl::OkStatus();
    case Value::Kind::kFloat: {
      const double f = v.AsDouble();
      *out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity")
                                                    : FloatRepr(f);
      return absl::OkStatus();
    }
    case Value::Kind::kString: JsonString(v.str(), out); return absl::OkStatus();
    case Value::Kind::kList: {
      if (v.list().empty()) {
        *out += "[]";
        return absl::OkStatus();
      }
      *out += '[';
      bool first = true;
      for (const Value& e : v.list()) {
        if (!first) *out += item_sep;
        first = false;
        newline(depth + 1);
        if (absl::Status s = Json(e, indent, sort_keys, depth + 1, out); !s.ok()) return s;
      }
      newline(depth);
      *out += ']';
      return absl::OkStatus();
    }
    case Value::Kind::kDict: {
      if (v.dict().items.empty()) {
        *out += "{}";
        return absl::OkStatus();
      }
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& item : v.dict().items) items.push_back(&item);
      if (sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](auto* a, auto* b) { return a->first < b->first; });
      }
      *out += '{';
      bool first = true;
      for (const auto* item : items) {
        if (!first) *out += item_sep;
        first = false;
        newline(depth + 1);
        JsonString(item->first, out);
        *out += ": ";
        if (absl::Status s = Json(item->second, indent, sort_keys, depth + 1, out); !s.ok()) {
          return s;
        }
      }
      newline(depth);
      *out += '}';
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tojson: a ", v.TypeName(), " is not JSON serializable"));
  }
}

}  // namespace

std::string Value::Repr() const {
  switch (kind()) {
    case Kind::kString: return PyQuote(str());
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < list().size(); ++i) {
        if (i > 0) out += ", ";
        out += list()[i].Repr();
      }
      return out + "]";
    }
    case Kind::kDict: {
      if (dict().is_namespace) return "<Namespace>";
      std::string out = "{";
      for (size_t i = 0; i < dict().items.size(); ++i) {
        if (i > 0) out += ", ";
        out += PyQuote(dict().items[i].first) + ": " + dict().items[i].second.Repr();
      }
      return out + "}";
    }
    default: return Str();
  }
}

std::string Value::Str() const {
  switch (kind()) {
    case Kind::kUndefined: return "";
    case Kind::kNone: return "None";
    case Kind::kBool: return bool_value() ? "True" : "False";
    case Kind::kInt: return absl::StrCat(AsInt());
    case Kind::kFloat: return FloatRepr(AsDouble());
    case Kind::kString: return str();
    case Kind::kFunction: return "<function>";
    default: return Repr();
  }
}

absl::StatusOr<std::string> Value::ToJson(int indent, bool sort_keys) const {
  std::string out;
  if (absl::Status s = Json(*this, indent, sort_keys, 0, &out); !s.ok()) return s;
  return out;
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integer() && b.is_integer()) return a.AsInt() == b.AsInt();
    return a.AsDouble() == b.AsDouble();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      if (a.list().size() != b.list().size()) return false;
      for (size_t i = 0; i < a.list().size(); ++i) {
        if (!Equal(a.list()[i], b.list()[i])) return false;
      }
      return true;
    }
    case Value::Kind::kDict: {
      if (&a.dict() == &b.dict()) return true;
      if (a.dict().is_namespace || b.dict().is_namespace) return false;
      if (a.dict().items.size() != b.dict().items.size()) return false;
      for (const auto& [k, v] : a.dict().items) {
        const Value* other = b.dict().Find(k);
        if (other == nullptr || !Equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kFunction: return &a.function() == &b.function();
    default: return false;
  }
}

absl::StatusOr<bool> Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integer() && b.is_integer()) return a.AsInt() < b.AsInt();
    return a.AsDouble() < b.AsDouble();
  }
  // UTF-8 byte order is code point order.
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list()) {
    const auto& x = a.list();
    const auto& y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equal(x[i], y[i])) continue;
      return Less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'<' not supported between a ", a.TypeName(), " and a ", b.TypeName()));
}

namespace {

size_t FootprintAt(const Value& v, size_t limit, int depth) {
  constexpr size_t kItem = 32;
  if (depth > 100) return limit + 1;
  size_t total = 0;
  auto add = [&](size_t n) {
    total += std::min(n, limit + 1);
    return total <= limit;
  };
  switch (v.kind()) {
    case Value::Kind::kString: return v.str().size();
    case Value::Kind::kList:
      for (const Value& e : v.list()) {
        if (!add(kItem) || !add(FootprintAt(e, limit, depth + 1))) break;
      }
      return total;
    case Value::Kind::kDict:
      for (const auto& [k, e] : v.dict().items) {
        if (!add(kItem + k.size()) || !add(FootprintAt(e, limit, depth + 1))) break;
      }
      return total;
    default: return 0;
  }
}

}  // namespace

size_t Footprint(const Value& v, size_t limit) { return FootprintAt(v, limit, 0); }

}  // namespace layerpool::jinja
