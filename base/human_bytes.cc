#include "base/human_bytes.h"

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

}  // namespace layerpool
