#include "transport/hidden_wire.h"

#include <cstring>
#include <optional>
#include <vector>

#include "model/quant/dequantize.h"
#include "model/quant/quantize.h"
#include "model/quant/types.h"

namespace layerpool {
namespace {

// The ggml type each wire type is encoded as.
std::optional<GgmlType> WireGgmlType(v1::ElementType type) {
  switch (type) {
    case v1::ELEMENT_TYPE_F32:
      return GgmlType::kF32;
    case v1::ELEMENT_TYPE_F16:
      return GgmlType::kF16;
    case v1::ELEMENT_TYPE_BF16:
      return GgmlType::kBF16;
    case v1::ELEMENT_TYPE_Q8_0:
      return GgmlType::kQ8_0;
    default:
      return std::nullopt;
  }
}

}  // namespace

size_t WireRowBytes(v1::ElementType type, int64_t n_embd) {
  const std::optional<GgmlType> g = WireGgmlType(type);
  if (!g || n_embd <= 0) return 0;
  const std::optional<int64_t> bytes = RowBytes(*g, n_embd);  // none: not whole blocks
  return bytes ? static_cast<size_t>(*bytes) : 0;
}

const char* WireTypeName(v1::ElementType type) {
  switch (type) {
    case v1::ELEMENT_TYPE_F32:
      return "f32";
    case v1::ELEMENT_TYPE_F16:
      return "f16";
    case v1::ELEMENT_TYPE_BF16:
      return "bf16";
    case v1::ELEMENT_TYPE_Q8_0:
      return "q8_0";
    default:
      return "?";
  }
}

bool EncodeWireRows(v1::ElementType type, const float* values, size_t rows, int64_t n_embd,
                    char* wire) {
  const size_t row_bytes = WireRowBytes(type, n_embd);
  if (row_bytes == 0) return false;
  // The wire is little-endian, as is every host layerpool runs on.
  if (type == v1::ELEMENT_TYPE_F32) {
    std::memcpy(wire, values, rows * row_bytes);
    return true;
  }
  for (size_t r = 0; r < rows; ++r) {
    if (!QuantizeRow(*WireGgmlType(type), values + r * static_cast<size_t>(n_embd),
                     wire + r * row_bytes, n_embd)) {
      return false;
    }
  }
  return true;
}

bool DecodeWireRows(v1::ElementType type, const char* wire, size_t rows, int64_t n_embd,
                    float* values) {
  const size_t row_bytes = WireRowBytes(type, n_embd);
  if (row_bytes == 0) return false;
  if (type == v1::ELEMENT_TYPE_F32) {
    std::memcpy(values, wire, rows * row_bytes);
    return true;
  }
  for (size_t r = 0; r < rows; ++r) {
    if (!DequantizeRow(*WireGgmlType(type), wire + r * row_bytes,
                       values + r * static_cast<size_t>(n_embd), n_embd)) {
      return false;
    }
  }
  return true;
}

bool RoundTripWire(v1::ElementType type, std::span<float> values, int64_t n_embd) {
  const size_t row_bytes = WireRowBytes(type, n_embd);
  if (row_bytes == 0 || values.size() % static_cast<size_t>(n_embd) != 0) return false;
  std::vector<uint16_t> row(row_bytes / 2 + 1);  // 2-byte aligned
  char* wire = reinterpret_cast<char*>(row.data());
  for (size_t at = 0; at < values.size(); at += static_cast<size_t>(n_embd)) {
    if (!EncodeWireRows(type, values.data() + at, 1, n_embd, wire) ||
        !DecodeWireRows(type, wire, 1, n_embd, values.data() + at)) {
      return false;
    }
  }
  return true;
}

}  // namespace layerpool
