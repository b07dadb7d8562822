#include "model/gguf/value.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool::gguf {

absl::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "uint8";
    case ValueType::kInt8: return "int8";
    case ValueType::kUint16: return "uint16";
    case ValueType::kInt16: return "int16";
    case ValueType::kUint32: return "uint32";
    case ValueType::kInt32: return "int32";
    case ValueType::kFloat32: return "float32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "uint64";
    case ValueType::kInt64: return "int64";
    case ValueType::kFloat64: return "float64";
  }
  return "unknown";
}

bool Value::is_integer() const {
  return std::holds_alternative<uint64_t>(data) ||
         std::holds_alternative<int64_t>(data);
}

namespace {

std::string Quote(const std::string& s, size_t max_chars) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == max_chars) {
      absl::StrAppend(&out, "...");
      break;
    }
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string Value::DebugString(size_t max_chars) const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return absl::StrCat(*u);
  if (const auto* i = std::get_if<int64_t>(&data)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&data)) {
    return absl::StrFormat("%g", *d);
  }
  if (const auto* b = std::get_if<bool>(&data)) return *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&data)) {
    return Quote(*s, max_chars);
  }
  const Array& array = std::get<Array>(data);
  std::string out = absl::StrCat("[", ValueTypeName(array.element_type), " x ",
                                 array.elements.size(), "]");
  constexpr size_t kShown = 4;
  if (!array.elements.empty()) {
    absl::StrAppend(&out, " ");
    for (size_t i = 0; i < array.elements.size() && i < kShown; ++i) {
      absl::StrAppend(&out, i ? ", " : "",
                      array.elements[i].DebugString(max_chars / 2));
    }
    if (array.elements.size() > kShown) absl::StrAppend(&out, ", ...");
  }
  return out;
}

}  // namespace layerpool::gguf
