// The live sequences of a served stage: each one's KV cache, the position
// its next row must have, and (last stage) its sampler.
//
// Rows arrive from the network, so the table checks that every row
// continues its sequence: a sequence it does not hold must start at
// position 0, a held one continues at exactly its next position, no row
// goes past n_ctx, and no more than max_sequences live at once. A KV cache
// is allocated when a sequence starts and freed by Free.
//
// Not thread-safe: the ServedStage that owns it serialises access.
#ifndef LAYERPOOL_WORKER_SEQUENCE_TABLE_H_
#define LAYERPOOL_WORKER_SEQUENCE_TABLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "layerpool/v1/worker.pb.h"
#include "model/sampling/sampler.h"
#include "worker/kv_cache.h"

namespace layerpool {

class SequenceTable {
 public:
  using CacheFactory =
      std::function<absl::StatusOr<std::unique_ptr<KvCache>>()>;

  SequenceTable(int64_t n_ctx, int64_t max_sequences, CacheFactory new_cache)
      : n_ctx_(n_ctx),
        max_sequences_(max_sequences),
        new_cache_(std::move(new_cache)) {}

  // Checks every row of a micro-batch against the table, then starts the
  // new sequences and advances each sequence past its rows; `caches`
  // receives each row's cache. Nothing changes when a row is refused:
  // InvalidArgument for a row that does not continue its sequence or runs
  // past the context, ResourceExhausted when the new sequences do not fit.
  [[nodiscard]] absl::Status Advance(std::span<const uint64_t> seq_ids,
                                     std::span<const int32_t> positions,
                                     std::vector<KvCache*>* caches);

  // The sampler of `seq_id` (which Advance started), created from
  // spec.sampling with spec.recent_tokens accepted and spec.skip_random
  // skipped on the first call; later calls ignore `spec`. InvalidArgument
  // for sampling parameters out of range or a skip over 2 per context token.
  struct SeqSampler {
    Sampler sampler;
    int32_t n_probs;  // what the client asked for
  };
  [[nodiscard]] absl::StatusOr<SeqSampler*> SamplerFor(
      uint64_t seq_id, const v1::SampleSpec& spec);

  // Drops the sequences held among `seq_ids`; returns how many there were.
  uint32_t Free(std::span<const uint64_t> seq_ids);

  // The sequences held, in no particular order.
  std::vector<uint64_t> ids() const;
  int64_t active() const { return static_cast<int64_t>(sequences_.size()); }
  int64_t max_sequences() const { return max_sequences_; }
  // KV cells (token positions) written, over all sequences.
  uint64_t cells_used() const { return cells_used_; }
  uint64_t kv_bytes() const { return kv_bytes_; }

 private:
  struct Sequence {
    std::unique_ptr<KvCache> cache;
    int32_t next_position = 0;
    std::unique_ptr<SeqSampler> sampler;
  };

  int64_t n_ctx_;
  int64_t max_sequences_;
  CacheFactory new_cache_;
  absl::flat_hash_map<uint64_t, Sequence> sequences_;
  uint64_t cells_used_ = 0;
  uint64_t kv_bytes_ = 0;
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_SEQUENCE_TABLE_H_
