// The tensor element types of GGML/GGUF files and their storage geometry.
//
// Numbering is the on-disk `ggml_type` value, so a GgmlType read from a file
// can be compared with these constants directly. Types are stored in blocks:
// `block_size` elements packed into `type_size` bytes (1 and sizeof(element)
// for plain types). A row of n elements needs n / block_size blocks, and n
// must be a multiple of block_size.
//
// This header has no dependencies beyond the standard library: the kernels
// include it, and they know nothing of Abseil.
#ifndef LAYERPOOL_MODEL_QUANT_TYPES_H_
#define LAYERPOOL_MODEL_QUANT_TYPES_H_

#include <cstdint>
#include <optional>
#include <string_view>

namespace layerpool {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

struct TypeTraits {
  std::string_view name;  // as llama.cpp prints it: "q4_K", "f16", ...
  int64_t block_size;     // elements per block
  int64_t type_size;      // bytes per block
  // True when layerpool can turn this type into floats (dequantize) and so
  // compute with it. Files may hold other known types; they are described
  // but not computed on.
  bool supported;
};

// Traits of `type`, or nullopt for a value that is no known ggml type
// (including the retired 4, 5 and 31..33).
std::optional<TypeTraits> GetTypeTraits(GgmlType type);

// Same, from a raw on-disk value.
std::optional<TypeTraits> GetTypeTraits(uint32_t raw_type);

// Parses a type name case-insensitively ("Q4_K", "q8_0", "bf16").
std::optional<GgmlType> ParseTypeName(std::string_view name);

// Bytes per element, block overhead included (2 for f16, 34/32 for q8_0);
// 0 for an unknown type.
double BytesPerElement(GgmlType type);

// Bytes occupied by a row of `n` elements; nullopt when n is negative, not a
// multiple of the block size, the type is unknown, or the size overflows.
std::optional<int64_t> RowBytes(GgmlType type, int64_t n);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_QUANT_TYPES_H_
