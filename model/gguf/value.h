// GGUF metadata values: the typed scalars, strings and (nested) arrays that
// make up a file's key/value section.
//
// A Value keeps its exact on-disk type, so a file read and written back
// carries the same bytes. Integers are held widened (uint64_t or int64_t)
// and narrowed again on write; accessors convert with range checks.
#ifndef LAYERPOOL_MODEL_GGUF_VALUE_H_
#define LAYERPOOL_MODEL_GGUF_VALUE_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"
#include <variant>
#include <vector>

namespace layerpool::gguf {

// On-disk value type tags (gguf_type).
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "uint32", "string", "array", ...; "unknown" for values outside the enum.
absl::string_view ValueTypeName(ValueType type);

struct Value;

struct Array {
  ValueType element_type = ValueType::kUint8;
  std::vector<Value> elements;
};

struct Value {
  ValueType type = ValueType::kUint8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  // Constructors for each on-disk type.
  static Value Uint8(uint8_t v) { return {ValueType::kUint8, uint64_t{v}}; }
  static Value Int8(int8_t v) { return {ValueType::kInt8, int64_t{v}}; }
  static Value Uint16(uint16_t v) { return {ValueType::kUint16, uint64_t{v}}; }
  static Value Int16(int16_t v) { return {ValueType::kInt16, int64_t{v}}; }
  static Value Uint32(uint32_t v) { return {ValueType::kUint32, uint64_t{v}}; }
  static Value Int32(int32_t v) { return {ValueType::kInt32, int64_t{v}}; }
  static Value Uint64(uint64_t v) { return {ValueType::kUint64, v}; }
  static Value Int64(int64_t v) { return {ValueType::kInt64, v}; }
  static Value Float32(float v) { return {ValueType::kFloat32, double{v}}; }
  static Value Float64(double v) { return {ValueType::kFloat64, v}; }
  static Value Bool(bool v) { return {ValueType::kBool, v}; }
  static Value String(std::string v) {
    return {ValueType::kString, std::move(v)};
  }
  static Value MakeArray(ValueType element_type, std::vector<Value> elements) {
    return {ValueType::kArray, Array{element_type, std::move(elements)}};
  }

  bool is_integer() const;
  bool is_float() const {
    return type == ValueType::kFloat32 || type == ValueType::kFloat64;
  }

  // Short human-readable rendering for `inspect`: scalars in full, strings
  // quoted and cut at `max_chars`, arrays as "[type x N]" plus a few items.
  std::string DebugString(size_t max_chars = 60) const;
};

struct KeyValue {
  std::string key;
  Value value;
};

}  // namespace layerpool::gguf

#endif  // LAYERPOOL_MODEL_GGUF_VALUE_H_
