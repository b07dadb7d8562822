// The key/value cache of one sequence for the layers a stage owns.
//
// Keys and values of position p in layer l live in one row each of kv_dim =
// n_head_kv * head_dim elements, stored in the cache's element type: f16
// (the default, as llama.cpp), f32, or q8_0 (half of f16's memory; needs a
// head dimension that is a multiple of 32). The whole context is allocated
// at creation, so running out of memory happens at admission, not midway.
//
// Not thread-safe: one sequence is advanced by one forward pass at a time;
// different caches may be used from different threads.
#ifndef LAYERPOOL_WORKER_KV_CACHE_H_
#define LAYERPOOL_WORKER_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/attention.h"
#include "model/quant/types.h"

namespace layerpool {

// "f16", "f32" or "q8_0" to its type; InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<GgmlType> ParseKvCacheType(absl::string_view name);

class KvCache {
 public:
  // InvalidArgument for a type other than F16/F32/Q8_0, non-positive sizes,
  // or q8_0 with a head_dim not a multiple of 32.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KvCache>> Create(
      GgmlType type, int64_t n_layers, int64_t n_ctx, int64_t n_head_kv,
      int64_t head_dim);

  // Bytes a cache of these dimensions takes (for admission and planning).
  static uint64_t BytesFor(GgmlType type, int64_t n_layers, int64_t n_ctx,
                           int64_t kv_dim);

  // Writes position `pos` of layer `layer` (0-based within the stage).
  // Preconditions: 0 <= layer < n_layers, 0 <= pos < n_ctx.
  void Store(int64_t layer, int64_t pos, const float* k, const float* v);

  kernels::KvLayerView Layer(int64_t layer) const;

  int64_t n_ctx() const { return n_ctx_; }
  uint64_t bytes() const { return keys_.size() + values_.size(); }

 private:
  KvCache() = default;

  GgmlType type_ = GgmlType::kF16;
  int64_t n_layers_ = 0;
  int64_t n_ctx_ = 0;
  int64_t kv_dim_ = 0;
  size_t row_bytes_ = 0;
  std::vector<uint8_t> keys_;
  std::vector<uint8_t> values_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_KV_CACHE_H_
