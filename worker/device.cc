#include "worker/device.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#if LAYERPOOL_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

namespace layerpool {

std::string DeviceSpec::ToString() const {
  return kind == Kind::kCpu ? "cpu" : absl::StrCat("cuda:", index);
}

absl::StatusOr<DeviceSpec> ParseDeviceSpec(absl::string_view text) {
  if (text == "cpu") return DeviceSpec{};
  absl::string_view ordinal = text;
  // Digits only: SimpleAtoi alone would also take signs and spaces.
  if (absl::ConsumePrefix(&ordinal, "cuda:") && !ordinal.empty() &&
      ordinal.size() <= 4 &&
      std::all_of(ordinal.begin(), ordinal.end(), absl::ascii_isdigit)) {
    DeviceSpec device;
    device.kind = DeviceSpec::Kind::kCuda;
    if (absl::SimpleAtoi(ordinal, &device.index)) return device;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a device: use cpu or cuda:N"));
}

absl::Status CheckDeviceUsable(const DeviceSpec& device) {
  if (device.kind == DeviceSpec::Kind::kCpu) return absl::OkStatus();
#if LAYERPOOL_HAVE_CUDA
  const kernels::cuda::DeviceInfo info =
      kernels::cuda::CudaDeviceInfo(device.index);
  if (!info.error.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(device.ToString(), ": ", info.error));
  }
  return absl::UnimplementedError(absl::StrCat(
      device.ToString(), " (", info.name,
      "): running a stage on a CUDA device is not implemented yet; use "
      "--device cpu"));
#else
  return absl::FailedPreconditionError(absl::StrCat(
      device.ToString(),
      ": this build has no CUDA backend (built without nvcc, or with "
      "-DLAYERPOOL_CUDA=OFF); use --device cpu"));
#endif
}

}  // namespace layerpool
