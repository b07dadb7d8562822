#include "worker/pooling.h"

#include <cmath>

namespace layerpool {

EmbeddingPool::EmbeddingPool(int64_t n_embd)
    : sum_(static_cast<size_t>(n_embd), 0.0f), last_(static_cast<size_t>(n_embd), 0.0f) {}

void EmbeddingPool::Add(std::span<const float> row) {
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += row[i];
  if (rows_ == 0) first_.assign(row.begin(), row.end());
  last_.assign(row.begin(), row.end());
  ++rows_;
}

std::vector<float> EmbeddingPool::Result(Pooling pooling) const {
  std::vector<float> v;
  switch (pooling) {
    case Pooling::kMean:
      v = sum_;
      if (rows_ > 0) {
        const float inv = 1.0f / static_cast<float>(rows_);
        for (float& x : v) x *= inv;
      }
      break;
    case Pooling::kCls: v = rows_ > 0 ? first_ : sum_; break;
    case Pooling::kLast: v = last_; break;
  }
  NormalizeL2(v);
  return v;
}

void NormalizeL2(std::span<float> v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * x;
  sum = std::sqrt(sum);
  const float norm = sum > 0.0 ? static_cast<float>(1.0 / sum) : 0.0f;
  for (float& x : v) x *= norm;
}

}  // namespace layerpool
