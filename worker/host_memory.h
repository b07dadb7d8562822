// The host's memory as Linux reports it in /proc/meminfo: what a CPU worker
// can promise a stage.
#ifndef LAYERPOOL_WORKER_HOST_MEMORY_H_
#define LAYERPOOL_WORKER_HOST_MEMORY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace layerpool {

struct HostMemory {
  uint64_t total_bytes = 0;      // MemTotal
  uint64_t available_bytes = 0;  // MemAvailable: free plus reclaimable cache
};

// Parses the text of /proc/meminfo. InvalidArgument when MemTotal or
// MemAvailable is missing or malformed.
[[nodiscard]] absl::StatusOr<HostMemory> ParseMeminfo(absl::string_view text);

// Reads /proc/meminfo now; the I/O error or ParseMeminfo's.
[[nodiscard]] absl::StatusOr<HostMemory> ReadHostMemory();

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_HOST_MEMORY_H_
