#include "worker/sequence_table.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "proto/convert.h"

namespace layerpool {

absl::Status SequenceTable::Advance(std::span<const uint64_t> seq_ids,
                                    std::span<const int32_t> positions,
                                    std::vector<KvCache*>* caches) {
  if (seq_ids.size() != positions.size()) {
    return absl::InvalidArgumentError("seq_ids and positions differ in length");
  }
  // A dry run first, so that a refused row leaves the table as it was.
  absl::flat_hash_map<uint64_t, int32_t> next;
  int64_t started = 0;
  for (size_t i = 0; i < seq_ids.size(); ++i) {
    const uint64_t id = seq_ids[i];
    const int32_t pos = positions[i];
    auto [it, inserted] = next.try_emplace(id, 0);
    if (inserted) {
      auto held = sequences_.find(id);
      if (held != sequences_.end()) {
        it->second = held->second.next_position;
      } else {
        ++started;
        if (pos != 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "row ", i, ": sequence ", id, " is not held here and starts at ",
              "position ", pos, " (a new sequence starts at 0)"));
        }
      }
    }
    if (pos != it->second) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", i, ": sequence ", id, " continues at position ",
                       pos, ", expected ", it->second));
    }
    if (pos >= n_ctx_) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", i, ": position ", pos, " of sequence ", id,
                       " is past the context of ", n_ctx_, " tokens"));
    }
    ++it->second;
  }
  if (active() + started > max_sequences_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(started, " new sequence(s) with ", active(),
                     " live would exceed the stage's max_sequences of ",
                     max_sequences_, " (free finished sequences first)"));
  }

  // Allocate before touching the table, so that running out of memory
  // midway leaves it unchanged too.
  absl::flat_hash_map<uint64_t, std::unique_ptr<KvCache>> fresh;
  for (const auto& entry : next) {
    if (sequences_.contains(entry.first)) continue;
    absl::StatusOr<std::unique_ptr<KvCache>> cache = new_cache_();
    if (!cache.ok()) {
      return Annotate(cache.status(), "KV cache of sequence ", entry.first);
    }
    fresh.emplace(entry.first, std::move(*cache));
  }
  for (auto& [id, cache] : fresh) {
    kv_bytes_ += cache->bytes();
    sequences_[id].cache = std::move(cache);
  }
  for (const auto& [id, next_position] : next) {
    Sequence& seq = sequences_.at(id);
    cells_used_ += static_cast<uint64_t>(next_position - seq.next_position);
    seq.next_position = next_position;
  }
  caches->resize(seq_ids.size());
  for (size_t i = 0; i < seq_ids.size(); ++i) {
    (*caches)[i] = sequences_.at(seq_ids[i]).cache.get();
  }
  return absl::OkStatus();
}

absl::StatusOr<SequenceTable::SeqSampler*> SequenceTable::SamplerFor(
    uint64_t seq_id, const v1::SampleSpec& spec) {
  auto it = sequences_.find(seq_id);
  if (it == sequences_.end()) {
    return absl::InternalError(absl::StrCat("sequence ", seq_id, " not held"));
  }
  Sequence& seq = it->second;
  if (seq.sampler == nullptr) {
    LP_ASSIGN_OR_RETURN(SamplingParams params,
                        SamplingFromProto(spec.sampling()));
    const int32_t asked = params.n_probs;
    // A sampled token's logprob must be found among the reported ones.
    // Greedy picks the most likely, which always comes first; a drawn token
    // may be any survivor of the filters, so ask for all of them (the
    // sampler has them sorted already).
    if (asked > 0 && params.temperature > 0) {
      params.n_probs = std::numeric_limits<int32_t>::max();
    }
    // Each token draws at most twice (Sampler::random_used), so a larger
    // skip is not a replay but a request for minutes of work.
    if (spec.skip_random() > 2 * static_cast<uint64_t>(n_ctx_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "skip_random ", spec.skip_random(), " is more than 2 per token of the context of ",
          n_ctx_));
    }
    seq.sampler =
        std::make_unique<SeqSampler>(SeqSampler{Sampler(params), asked});
    for (int32_t token : spec.recent_tokens())
      seq.sampler->sampler.Accept(token);
    seq.sampler->sampler.SkipRandom(spec.skip_random());
  }
  return seq.sampler.get();
}

std::vector<uint64_t> SequenceTable::ids() const {
  std::vector<uint64_t> out;
  out.reserve(sequences_.size());
  for (const auto& [id, seq] : sequences_) out.push_back(id);
  return out;
}

uint32_t SequenceTable::Free(std::span<const uint64_t> seq_ids) {
  uint32_t freed = 0;
  for (uint64_t id : seq_ids) {
    auto it = sequences_.find(id);
    if (it == sequences_.end()) continue;
    cells_used_ -= static_cast<uint64_t>(it->second.next_position);
    kv_bytes_ -= it->second.cache->bytes();
    sequences_.erase(it);
    ++freed;
  }
  return freed;
}

}  // namespace layerpool
