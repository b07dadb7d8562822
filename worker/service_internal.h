// Helpers shared by the two files of WorkerService (service.cc: life and
// data plane; service_control.cc: the control plane and the lease). Not a
// public header.
#ifndef LAYERPOOL_WORKER_SERVICE_INTERNAL_H_
#define LAYERPOOL_WORKER_SERVICE_INTERNAL_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "worker/served_stage.h"

namespace layerpool::service_internal {

using Clock = std::chrono::steady_clock;

inline double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

inline uint32_t ClampToU32(double micros) {
  return static_cast<uint32_t>(std::clamp(micros, 0.0, 4294967295.0));
}

inline std::string LayerRange(const ServedStage& stage) {
  return absl::StrCat("[", stage.first_layer(), ", ", stage.last_layer(), "]");
}

}  // namespace layerpool::service_internal

#endif  // LAYERPOOL_WORKER_SERVICE_INTERNAL_H_
