// What layerpool's engine can run today, checked from a GGUF header alone:
// the llama architecture, its tensors and metadata, the tensor types it has
// kernels for. CheckSupported says in one line why a model cannot be run,
// before anything is loaded (the coordinator calls it before planning, the
// worker before mapping, `inspect` shows it), rather than failing later on a
// missing tensor or, worse, running and giving wrong outputs.
#ifndef LAYERPOOL_MODEL_HPARAMS_SUPPORT_H_
#define LAYERPOOL_MODEL_HPARAMS_SUPPORT_H_

#include "absl/status/status.h"
#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"

namespace layerpool {

// OK, or Unimplemented naming the first thing the engine cannot do: an
// architecture not in model/hparams/arch.h, RoPE scaling other than linear,
// YaRN and Llama 3.1's rope_freqs, mixture of experts, biases or fused
// tensors the architecture does not have, a tensor type without kernels.
[[nodiscard]] absl::Status CheckSupported(const gguf::GgufFile& file, const HParams& hp);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_HPARAMS_SUPPORT_H_
