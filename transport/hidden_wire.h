// Hidden states on the wire (HiddenStates.element_type): F32, F16, BF16 and
// Q8_0, each row encoded on its own with ggml's conversions (model/quant),
// so that what a stage boundary does to the values can be reproduced in
// one process (RoundTripWire: `layerpool perplexity --split`).
#ifndef LAYERPOOL_TRANSPORT_HIDDEN_WIRE_H_
#define LAYERPOOL_TRANSPORT_HIDDEN_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "layerpool/v1/worker.pb.h"

namespace layerpool {

// Bytes of one row of `n_embd` values; 0 when `type` is none of those four,
// or Q8_0 and n_embd is not a multiple of 32.
size_t WireRowBytes(v1::ElementType type, int64_t n_embd);

// "f32", "f16", "bf16", "q8_0", or "?".
const char* WireTypeName(v1::ElementType type);

// `rows` rows of `n_embd` floats to rows * WireRowBytes bytes and back.
// `wire` must be 2-byte aligned (heap memory is). False for a type or
// n_embd that WireRowBytes refuses. Any bytes decode to some floats.
[[nodiscard]] bool EncodeWireRows(v1::ElementType type, const float* values, size_t rows,
                                  int64_t n_embd, char* wire);
[[nodiscard]] bool DecodeWireRows(v1::ElementType type, const char* wire, size_t rows,
                                  int64_t n_embd, float* values);

// What sending `values` ([rows][n_embd]) as `type` does to them: encoded
// and decoded in place. False as above, or for a partial row.
[[nodiscard]] bool RoundTripWire(v1::ElementType type, std::span<float> values, int64_t n_embd);

}  // namespace layerpool

#endif  // LAYERPOOL_TRANSPORT_HIDDEN_WIRE_H_
