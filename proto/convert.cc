#include "proto/convert.h"

#include <cmath>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace layerpool {
namespace {

template <typename T>
absl::Status OutOfRange(const char* field, absl::string_view range, T value) {
  return absl::InvalidArgumentError(
      absl::StrCat("sampling.", field, " must be ", range, ", got ", value));
}

// (0, 1]: the "mass" parameters, where 0 would leave no candidate at all and
// 1 switches the stage off.
absl::Status CheckMass(const char* field, float value) {
  if (value > 0.0f && value <= 1.0f) return absl::OkStatus();
  return OutOfRange(field, "in (0, 1]", value);
}

absl::Status CheckFinite(const char* field, float value) {
  if (std::isfinite(value)) return absl::OkStatus();
  return OutOfRange(field, "finite", value);
}

}  // namespace

absl::StatusOr<SamplingParams> SamplingFromProto(
    const v1::SamplingParams& proto) {
  SamplingParams p;
  if (proto.has_temperature()) {
    p.temperature = proto.temperature();
    if (absl::Status s = CheckFinite("temperature", p.temperature); !s.ok()) {
      return s;
    }
  }
  if (proto.has_top_k()) p.top_k = proto.top_k();
  if (proto.has_top_p()) {
    p.top_p = proto.top_p();
    if (absl::Status s = CheckMass("top_p", p.top_p); !s.ok()) return s;
  }
  if (proto.has_min_p()) {
    p.min_p = proto.min_p();
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
      return OutOfRange("min_p", "in [0, 1]", p.min_p);
    }
  }
  if (proto.has_typical_p()) {
    p.typical_p = proto.typical_p();
    if (absl::Status s = CheckMass("typical_p", p.typical_p); !s.ok()) return s;
  }
  if (proto.has_tfs_z()) {
    p.tfs_z = proto.tfs_z();
    if (absl::Status s = CheckMass("tfs_z", p.tfs_z); !s.ok()) return s;
  }
  if (proto.has_repeat_penalty()) {
    p.repeat_penalty = proto.repeat_penalty();
    if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f)) {
      return OutOfRange("repeat_penalty", "finite and > 0", p.repeat_penalty);
    }
  }
  if (proto.has_repeat_last_n()) {
    p.repeat_last_n = proto.repeat_last_n();
    if (p.repeat_last_n < -1) {
      return OutOfRange("repeat_last_n", ">= -1", p.repeat_last_n);
    }
  }
  if (proto.has_frequency_penalty()) {
    p.frequency_penalty = proto.frequency_penalty();
    if (absl::Status s = CheckFinite("frequency_penalty", p.frequency_penalty);
        !s.ok()) {
      return s;
    }
  }
  if (proto.has_presence_penalty()) {
    p.presence_penalty = proto.presence_penalty();
    if (absl::Status s = CheckFinite("presence_penalty", p.presence_penalty);
        !s.ok()) {
      return s;
    }
  }
  if (proto.has_seed()) {
    p.seed = proto.seed();
    if (p.seed > kRandomSeed) {
      return OutOfRange("seed", "in [0, 4294967295] (4294967295 is random)",
                        p.seed);
    }
  }
  if (proto.has_n_probs()) {
    p.n_probs = proto.n_probs();
    if (p.n_probs < 0 || p.n_probs > kMaxNProbs) {
      return OutOfRange("n_probs", absl::StrCat("in [0, ", kMaxNProbs, "]"),
                        p.n_probs);
    }
  }
  // The checks above are at least as strict as the sampler's; this only
  // guards against the two drifting apart.
  if (absl::Status s = ValidateSamplingParams(p); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: ", s.message()));
  }
  return p;
}

v1::SamplingParams SamplingToProto(const SamplingParams& params) {
  v1::SamplingParams proto;
  proto.set_temperature(params.temperature);
  proto.set_top_k(params.top_k);
  proto.set_top_p(params.top_p);
  proto.set_min_p(params.min_p);
  proto.set_typical_p(params.typical_p);
  proto.set_tfs_z(params.tfs_z);
  proto.set_repeat_penalty(params.repeat_penalty);
  proto.set_repeat_last_n(params.repeat_last_n);
  proto.set_frequency_penalty(params.frequency_penalty);
  proto.set_presence_penalty(params.presence_penalty);
  proto.set_seed(params.seed);
  proto.set_n_probs(params.n_probs);
  return proto;
}

}  // namespace layerpool
