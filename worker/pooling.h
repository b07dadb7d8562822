// Pooling an embedding request: the final-norm hidden states of a
// sequence's rows, in row order, into one vector, L2-normalised as
// llama.cpp's common_embd_normalize(..., 2) does (the sum of squares in
// double, then each element times 1/norm as a float).
//
// The last stage of a pipeline and the in-process `layerpool embed` both
// pool through this, so their vectors agree to the float.
#ifndef LAYERPOOL_WORKER_POOLING_H_
#define LAYERPOOL_WORKER_POOLING_H_

#include <cstdint>
#include <span>
#include <vector>

namespace layerpool {

enum class Pooling { kMean, kCls, kLast };

class EmbeddingPool {
 public:
  explicit EmbeddingPool(int64_t n_embd);

  void Add(std::span<const float> row);  // n_embd floats
  int64_t rows() const { return rows_; }
  // The pooled, normalised vector; all zeros before any row.
  std::vector<float> Result(Pooling pooling) const;

 private:
  std::vector<float> sum_, first_, last_;
  int64_t rows_ = 0;
};

void NormalizeL2(std::span<float> v);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_POOLING_H_
