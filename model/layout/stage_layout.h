// Which tensors of a llama-family GGUF file a pipeline stage holds, and a
// fingerprint of them that the coordinator and a worker can compare without
// either reading the weights.
//
// A stage holding layers [first, end) of an n_layer model holds the tensors
// "blk.<i>.*" for i in [first, end); the first stage (first == 0) also holds
// token_embd.weight; the last (end == n_layer) holds output_norm.weight and
// output.weight, or token_embd.weight again when the model ties its output
// head to the embedding (no output.weight).
#ifndef LAYERPOOL_MODEL_LAYOUT_STAGE_LAYOUT_H_
#define LAYERPOOL_MODEL_LAYOUT_STAGE_LAYOUT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"

namespace layerpool {

// The layer index of "blk.<i>.<rest>", or -1 for any other name.
int64_t LayerOfTensor(absl::string_view name);

// True when the model has no output.weight and reuses token_embd.weight.
bool HasTiedOutput(const gguf::GgufFile& file);

// Whether the stage of layers [first, end) of an n_layer model holds the
// tensor `name`.
bool StageHoldsTensor(absl::string_view name, int64_t first, int64_t end,
                      int64_t n_layer, bool tied_output);

// Work buffers a stage holds besides weights and KV cache, for a micro-batch
// of up to `batch` token rows: the activations of one layer (residual, norm,
// q/k/v, attention output, gate/up), the logits of the last stage, and a
// fixed allowance for thread-local scratch. Planning and the worker's memory
// check use the same figure.
uint64_t StageScratchBytes(const HParams& hp, int64_t batch);

// "sha256:" + 64 hex digits over the stage's tensors in file order: each
// tensor's name, type, shape and size, and three 4 KiB windows of its data
// (start, middle, end; the whole tensor when smaller). It tells apart two
// files whose headers agree but whose weights differ (two fine-tunes of one
// base), while reading at most 12 KiB per tensor: a 70B coordinator reads
// about 10 MB, not 40 GB. It is a fingerprint, not a full checksum: damage
// between the windows goes unseen.
//
// Reads the windows with pread from file.path(); works whether or not the
// file's data is mapped. InvalidArgument for a bad layer range; the I/O
// error, with the path, when a read fails.
[[nodiscard]] absl::StatusOr<std::string> StageFingerprint(
    const gguf::GgufFile& file, int64_t first, int64_t end, int64_t n_layer);

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_LAYOUT_STAGE_LAYOUT_H_
