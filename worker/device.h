// The device a worker computes on: the `--device` flag's values ("cpu",
// "cuda:N") and the startup check that the device can be used.
//
// This build runs stages on the CPU only; the CUDA backend (issue 5) is on
// its way, so a CUDA device is checked for existence and then refused with a
// message that says so. A build without CUDA refuses every CUDA device.
#ifndef LAYERPOOL_WORKER_DEVICE_H_
#define LAYERPOOL_WORKER_DEVICE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace layerpool {

struct DeviceSpec {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  // "cpu" or "cuda:N", as parsed.
  std::string ToString() const;
};

// "cpu" or "cuda:N" with N a decimal ordinal (no sign, at most 4 digits).
// InvalidArgument otherwise, naming the accepted forms.
[[nodiscard]] absl::StatusOr<DeviceSpec> ParseDeviceSpec(
    absl::string_view text);

// OK for the CPU. For cuda:N, FailedPrecondition when this build has no
// CUDA backend or the machine has no device N ("no CUDA device 1: the
// machine has 1 device"); Unimplemented when the device exists, since
// stages do not run on CUDA yet. Touches the CUDA runtime only for cuda:N.
[[nodiscard]] absl::Status CheckDeviceUsable(const DeviceSpec& device);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_DEVICE_H_
