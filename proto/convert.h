// Conversions between wire messages and the model-side types they carry,
// shared by the worker and the coordinator so that both read a request the
// same way.
//
// SamplingParams: every field of v1::SamplingParams is optional on the wire;
// an unset field takes layerpool::SamplingParams' default (llama.cpp's). A
// set field outside the range its .proto comment gives is refused with
// InvalidArgument naming the field as the wire spells it, e.g.
//   "sampling.top_p must be in (0, 1], got 1.5"
// min_keep has no wire field and stays 0. n_probs is capped at kMaxNProbs:
// every token carries that many alternatives through the Results stream,
// whose messages must stay far below gRPC's limits.
//
// Pure functions, thread-safe.
#ifndef LAYERPOOL_PROTO_CONVERT_H_
#define LAYERPOOL_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "layerpool/v1/common.pb.h"
#include "model/sampling/sampler.h"

namespace layerpool {

inline constexpr int32_t kMaxNProbs = 1024;

// The sampling a request asks for. The result always passes
// ValidateSamplingParams, so it may go straight into a Sampler.
[[nodiscard]] absl::StatusOr<SamplingParams> SamplingFromProto(
    const v1::SamplingParams& proto);

// Every field set, so the receiver never falls back to its own defaults.
// seed kRandomSeed goes out as is and means "random" on the other side too.
v1::SamplingParams SamplingToProto(const SamplingParams& params);

}  // namespace layerpool

#endif  // LAYERPOOL_PROTO_CONVERT_H_
