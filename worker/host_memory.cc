#include "worker/host_memory.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace layerpool {

absl::StatusOr<HostMemory> ParseMeminfo(absl::string_view text) {
  HostMemory memory;
  bool have_total = false, have_available = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    // "MemAvailable:   12345678 kB"
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    uint64_t* target = nullptr;
    if (kv.first == "MemTotal") {
      target = &memory.total_bytes;
      have_total = true;
    } else if (kv.first == "MemAvailable") {
      target = &memory.available_bytes;
      have_available = true;
    } else {
      continue;
    }
    absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    const bool kib = absl::ConsumeSuffix(&value, "kB");
    uint64_t number = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &number) ||
        (kib && number > std::numeric_limits<uint64_t>::max() / 1024)) {
      return absl::InvalidArgumentError(
          absl::StrCat("/proc/meminfo: malformed line '", line, "'"));
    }
    *target = kib ? number * 1024 : number;
  }
  if (!have_total || !have_available) {
    return absl::InvalidArgumentError(
        "/proc/meminfo lacks MemTotal or MemAvailable");
  }
  return memory;
}

absl::StatusOr<HostMemory> ReadHostMemory() {
  std::ifstream in("/proc/meminfo");
  if (!in) return absl::UnavailableError("cannot read /proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  return ParseMeminfo(text.str());
}

}  // namespace layerpool
