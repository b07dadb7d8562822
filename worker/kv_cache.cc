#include "worker/kv_cache.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "model/quant/quantize.h"

namespace layerpool {

absl::StatusOr<GgmlType> ParseKvCacheType(absl::string_view name) {
  if (name == "f16") return GgmlType::kF16;
  if (name == "f32") return GgmlType::kF32;
  if (name == "q8_0") return GgmlType::kQ8_0;
  return absl::InvalidArgumentError(absl::StrCat(
      "KV cache type '", name, "' is not one of f16, f32, q8_0"));
}

uint64_t KvCache::BytesFor(GgmlType type, int64_t n_layers, int64_t n_ctx,
                           int64_t kv_dim) {
  const std::optional<int64_t> row = RowBytes(type, kv_dim);
  if (!row) return 0;
  return 2 * static_cast<uint64_t>(n_layers) * static_cast<uint64_t>(n_ctx) *
         static_cast<uint64_t>(*row);
}

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(
    GgmlType type, int64_t n_layers, int64_t n_ctx, int64_t n_head_kv,
    int64_t head_dim) {
  if (type != GgmlType::kF16 && type != GgmlType::kF32 &&
      type != GgmlType::kQ8_0) {
    return absl::InvalidArgumentError("KV cache type must be f16, f32 or q8_0");
  }
  if (n_layers < 0 || n_ctx <= 0 || n_head_kv <= 0 || head_dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache dimensions must be positive (layers ", n_layers, ", context ",
        n_ctx, ", kv heads ", n_head_kv, ", head dim ", head_dim, ")"));
  }
  if (type == GgmlType::kQ8_0 && head_dim % 32 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a q8_0 KV cache needs a head dimension that is a multiple of 32; "
        "this model's is ", head_dim, " (use f16)"));
  }
  std::unique_ptr<KvCache> cache(new KvCache());
  cache->type_ = type;
  cache->n_layers_ = n_layers;
  cache->n_ctx_ = n_ctx;
  cache->kv_dim_ = n_head_kv * head_dim;
  cache->row_bytes_ = static_cast<size_t>(*RowBytes(type, cache->kv_dim_));
  const size_t half = BytesFor(type, n_layers, n_ctx, cache->kv_dim_) / 2;
  cache->keys_.assign(half, 0);
  cache->values_.assign(half, 0);
  return cache;
}

void KvCache::Store(int64_t layer, int64_t pos, const float* k,
                    const float* v) {
  const size_t offset = (static_cast<size_t>(layer) * n_ctx_ + pos) * row_bytes_;
  // F16/F32/Q8_0 rows of kv_dim elements are always quantizable (checked at
  // creation), so the results need no check.
  (void)QuantizeRow(type_, k, keys_.data() + offset, kv_dim_);
  (void)QuantizeRow(type_, v, values_.data() + offset, kv_dim_);
}

kernels::KvLayerView KvCache::Layer(int64_t layer) const {
  const size_t offset = static_cast<size_t>(layer) * n_ctx_ * row_bytes_;
  return {type_, keys_.data() + offset, values_.data() + offset, row_bytes_};
}

}  // namespace layerpool
