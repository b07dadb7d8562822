#include "model/quant/types.h"

#include <array>
#include <cctype>
#include <limits>

namespace layerpool {
namespace {

struct Entry {
  GgmlType type;
  TypeTraits traits;
};

// Block geometry from ggml's block_* structs (ggml-common.h).
constexpr std::array<Entry, 31> kTypes = {{
    {GgmlType::kF32, {"f32", 1, 4, true}},
    {GgmlType::kF16, {"f16", 1, 2, true}},
    {GgmlType::kQ4_0, {"q4_0", 32, 18, true}},
    {GgmlType::kQ4_1, {"q4_1", 32, 20, true}},
    {GgmlType::kQ5_0, {"q5_0", 32, 22, true}},
    {GgmlType::kQ5_1, {"q5_1", 32, 24, true}},
    {GgmlType::kQ8_0, {"q8_0", 32, 34, true}},
    {GgmlType::kQ8_1, {"q8_1", 32, 36, false}},
    {GgmlType::kQ2_K, {"q2_K", 256, 84, true}},
    {GgmlType::kQ3_K, {"q3_K", 256, 110, true}},
    {GgmlType::kQ4_K, {"q4_K", 256, 144, true}},
    {GgmlType::kQ5_K, {"q5_K", 256, 176, true}},
    {GgmlType::kQ6_K, {"q6_K", 256, 210, true}},
    {GgmlType::kQ8_K, {"q8_K", 256, 292, false}},
    {GgmlType::kIQ2_XXS, {"iq2_xxs", 256, 66, false}},
    {GgmlType::kIQ2_XS, {"iq2_xs", 256, 74, false}},
    {GgmlType::kIQ3_XXS, {"iq3_xxs", 256, 98, false}},
    {GgmlType::kIQ1_S, {"iq1_s", 256, 50, false}},
    {GgmlType::kIQ4_NL, {"iq4_nl", 32, 18, true}},
    {GgmlType::kIQ3_S, {"iq3_s", 256, 110, false}},
    {GgmlType::kIQ2_S, {"iq2_s", 256, 82, false}},
    {GgmlType::kIQ4_XS, {"iq4_xs", 256, 136, true}},
    {GgmlType::kI8, {"i8", 1, 1, false}},
    {GgmlType::kI16, {"i16", 1, 2, false}},
    {GgmlType::kI32, {"i32", 1, 4, false}},
    {GgmlType::kI64, {"i64", 1, 8, false}},
    {GgmlType::kF64, {"f64", 1, 8, false}},
    {GgmlType::kIQ1_M, {"iq1_m", 256, 56, false}},
    {GgmlType::kBF16, {"bf16", 1, 2, true}},
    {GgmlType::kTQ1_0, {"tq1_0", 256, 54, false}},
    {GgmlType::kTQ2_0, {"tq2_0", 256, 66, false}},
}};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<TypeTraits> GetTypeTraits(GgmlType type) {
  for (const Entry& e : kTypes) {
    if (e.type == type) return e.traits;
  }
  return std::nullopt;
}

std::optional<TypeTraits> GetTypeTraits(uint32_t raw_type) {
  return GetTypeTraits(static_cast<GgmlType>(raw_type));
}

std::optional<GgmlType> ParseTypeName(std::string_view name) {
  for (const Entry& e : kTypes) {
    if (EqualsIgnoreCase(e.traits.name, name)) return e.type;
  }
  return std::nullopt;
}

std::optional<int64_t> RowBytes(GgmlType type, int64_t n) {
  std::optional<TypeTraits> traits = GetTypeTraits(type);
  if (!traits || n < 0 || n % traits->block_size != 0) return std::nullopt;
  const int64_t blocks = n / traits->block_size;
  if (blocks > std::numeric_limits<int64_t>::max() / traits->type_size) {
    return std::nullopt;  // a row this long cannot be stored
  }
  return blocks * traits->type_size;
}

double BytesPerElement(GgmlType type) {
  const std::optional<TypeTraits> t = GetTypeTraits(type);
  if (!t) return 0;
  return static_cast<double>(t->type_size) / static_cast<double>(t->block_size);
}

}  // namespace layerpool
