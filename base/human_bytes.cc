#include "base/human_bytes.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool {

std::string HumanBytes(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024 * 1024) {
    return absl::StrFormat("%.1f TiB", b / (1024.0 * 1024 * 1024 * 1024));
  }
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.1f GiB", b / (1 << 30));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.1f MiB", b / (1 << 20));
  if (b >= 1024.0) return absl::StrFormat("%.1f KiB", b / 1024);
  return absl::StrFormat("%d B", bytes);
}

namespace {

// The multiplier of a unit, or 0 when it is not one.
double UnitScale(absl::string_view unit) {
  const std::string u = absl::AsciiStrToLower(unit);
  if (u.empty() || u == "b") return 1;
  constexpr struct {
    char letter;
    int power;
  } kPrefixes[] = {{'k', 1}, {'m', 2}, {'g', 3}, {'t', 4}};
  for (const auto& prefix : kPrefixes) {
    if (u[0] != prefix.letter) continue;
    const absl::string_view rest = absl::string_view(u).substr(1);
    if (rest.empty() || rest == "ib") return std::pow(1024.0, prefix.power);
    if (rest == "b") return std::pow(1000.0, prefix.power);
  }
  return 0;
}

}  // namespace

absl::StatusOr<uint64_t> ParseBytes(absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  size_t end = 0;
  while (end < trimmed.size() &&
         (absl::ascii_isdigit(static_cast<unsigned char>(trimmed[end])) ||
          trimmed[end] == '.')) {
    ++end;
  }
  const absl::string_view number = trimmed.substr(0, end);
  const absl::string_view unit =
      absl::StripLeadingAsciiWhitespace(trimmed.substr(end));
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a byte count: ", why));
  };
  // SimpleAtod alone would also take "1e9", "inf" or "-5"; the digit scan
  // above keeps the accepted language to plain decimals.
  double value = 0;
  if (number.empty() || !absl::SimpleAtod(number, &value)) {
    return invalid("expected a number such as 24GiB, 512MiB or 1.5GB");
  }
  const double scale = UnitScale(unit);
  if (scale == 0) {
    return invalid(absl::StrCat("unknown unit '", unit,
                                "' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"));
  }
  const double bytes = std::floor(value * scale);
  // 2^64 is exactly representable; anything at or above it does not fit.
  if (!(bytes < 18446744073709551616.0)) return invalid("too large");
  return static_cast<uint64_t>(bytes);
}

}  // namespace layerpool
