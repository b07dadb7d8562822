// The data plane's framing: ActivationChunks in, micro-batches out, and back
// into chunks for the next stage.
//
// Micro-batch ids are not required to increase: a middle stage's link to
// the next stage outlives the streams that feed it, and a coordinator that
// reopens its stream may count from 1 again. Ids only pair acks with sends.
//
// Everything here treats the chunks as hostile: a ChunkAssembler checks each
// field before it allocates anything for it, holds at most
// ChunkLimits::max_rows rows however many chunks a sender announces, and
// names the field and the micro-batch in every error.
//
// Not thread-safe; one assembler per upstream stream.
#ifndef LAYERPOOL_WORKER_ACTIVATION_CHUNKS_H_
#define LAYERPOOL_WORKER_ACTIVATION_CHUNKS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "layerpool/v1/worker.pb.h"
#include "transport/hidden_wire.h"

namespace layerpool {

// One micro-batch once all its chunks arrived, rows in chunk order.
struct AssembledBatch {
  uint64_t id = 0;
  uint32_t last_chunk_index = 0;
  std::vector<uint64_t> seq_ids;
  std::vector<int32_t> positions;
  std::vector<int32_t> tokens;  // first stage: one id per row
  std::vector<float> hidden;    // other stages: [rows][n_embd]
  // Each spec's row is rebased to index the whole micro-batch.
  std::vector<v1::SampleSpec> samples;
  // Sequences of embedding requests with rows here (ActivationChunk's).
  std::vector<uint64_t> embed_seq_ids;
  // ActivationChunk.one_token_rows, rebased to index the whole micro-batch.
  std::vector<int64_t> one_token_rows;
  // When its last chunk was read: the start of its queueing time.
  std::chrono::steady_clock::time_point arrived;

  size_t rows() const { return seq_ids.size(); }
};

struct ChunkLimits {
  bool first_stage = false;  // token ids in; otherwise hidden states
  bool last_stage = false;   // sampling parameters are checked here
  int64_t n_embd = 0;
  int64_t n_vocab = 0;
  int64_t max_rows = 0;     // token rows per micro-batch
  int64_t max_samples = 0;  // SampleSpecs per micro-batch
};

// Largest message a worker accepts (HelloResponse.max_message_bytes):
// senders chunk below it, and its gRPC server is configured with it.
inline constexpr uint32_t kMaxMessageBytes = 64u << 20;
// Unacked chunks a sender may have in flight to a worker
// (HelloResponse.max_inflight_chunks).
inline constexpr uint32_t kMaxInflightChunks = 8;

// Chunks one micro-batch may be cut into.
inline constexpr uint32_t kMaxChunksPerMicroBatch = 4096;

class ChunkAssembler {
 public:
  explicit ChunkAssembler(const ChunkLimits& limits) : limits_(limits) {}

  // Checks `chunk` and appends it to the micro-batch being assembled
  // (`chunk` is left in an unspecified state). Returns true when it was the
  // micro-batch's last chunk: take the batch with Take(). InvalidArgument,
  // naming the micro-batch, the chunk and the field, when the chunk breaks
  // the contract of worker.proto; the assembler must then be dropped.
  [[nodiscard]] absl::StatusOr<bool> Add(v1::ActivationChunk& chunk);

  // The completed micro-batch. Precondition: Add returned true.
  AssembledBatch Take();

 private:
  absl::Status AddPayload(v1::ActivationChunk& chunk, size_t rows);

  ChunkLimits limits_;
  AssembledBatch batch_;
  bool in_progress_ = false;
  uint32_t chunk_count_ = 0;
  uint32_t next_chunk_ = 0;
};

// Cuts the output of `batch` (hidden states [rows][n_embd]) into chunks for
// the next stage, each under `max_message_bytes` when serialized, with the
// batch's id, rows and samples (rebased to their chunk). `type` is one
// WireRowBytes takes. ResourceExhausted when a single row with its samples
// does not fit.
[[nodiscard]] absl::StatusOr<std::vector<v1::ActivationChunk>> EncodeChunks(
    const AssembledBatch& batch, std::span<const float> hidden, int64_t n_embd,
    v1::ElementType type, size_t max_message_bytes);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_ACTIVATION_CHUNKS_H_
