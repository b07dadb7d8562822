#include "kernels/matmul.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>

#include "kernels/vec_dot.h"
#include "model/quant/dequantize.h"

namespace layerpool::kernels {
namespace {

// Tile sizes for n_tokens > 1. A block of 16 rows of a 8192-wide Q4_K matrix
// is 74 KB and a tile of 8 Q8_K activation rows 73 KB: both stay in L2 while
// the tile's 128 dot products run, and each weight block is fetched from
// memory once and reused for every token tile.
constexpr int64_t kRowBlock = 16;
constexpr int64_t kTokenTile = 8;

[[noreturn]] void Die(const char* what, GgmlType type, int64_t cols) {
  std::fprintf(stderr, "layerpool kernels: %s (type %u, cols %lld)\n", what,
               static_cast<unsigned>(type), static_cast<long long>(cols));
  std::abort();
}

int64_t RowBytesOrDie(GgmlType type, int64_t cols) {
  const std::optional<int64_t> bytes = RowBytes(type, cols);
  if (!bytes) Die("row length is not a whole number of blocks", type, cols);
  return *bytes;
}

// The calling thread's buffer for quantized activations, 64-byte aligned.
class Scratch {
 public:
  uint8_t* Get(size_t bytes) {
    if (bytes > capacity_) {
      capacity_ = std::max(bytes, capacity_ * 2);
      data_.reset(static_cast<uint8_t*>(
          ::operator new[](capacity_, std::align_val_t{64})));
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const {
      ::operator delete[](p, std::align_val_t{64});
    }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t capacity_ = 0;
};

thread_local Scratch scratch;

}  // namespace

bool IsMatMulSupported(GgmlType w_type) { return IsVecDotSupported(w_type); }

void MatMul(GgmlType w_type, const void* w, int64_t rows, int64_t cols,
            const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  if (!IsMatMulSupported(w_type))
    Die("MatMul on an unsupported type", w_type, cols);
  if (rows <= 0 || n_tokens <= 0) return;
  const GgmlType act_type = VecDotType(w_type);
  const int64_t w_row_bytes = RowBytesOrDie(w_type, cols);
  const int64_t x_row_bytes = RowBytesOrDie(act_type, cols);

  // Activations in the vec_dot type; float activations are used in place.
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(x);
  if (act_type != GgmlType::kF32) {
    uint8_t* buffer = scratch.Get(static_cast<size_t>(x_row_bytes * n_tokens));
    auto quantize = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        QuantizeActivations(act_type, x + t * cols, buffer + t * x_row_bytes,
                            cols);
      }
    };
    if (pool != nullptr && n_tokens > 1) {
      pool->ParallelFor(n_tokens, quantize);
    } else {
      quantize(0, n_tokens);
    }
    xq = buffer;
  }

  const VecDotFn dot = GetVecDotFn(w_type, ActiveIsa());
  const uint8_t* wq = static_cast<const uint8_t*>(w);
  auto rows_range = [&](int64_t r0, int64_t r1) {
    if (n_tokens == 1) {
      for (int64_t r = r0; r < r1; ++r)
        y[r] = dot(wq + r * w_row_bytes, xq, cols);
      return;
    }
    for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
      const int64_t re = std::min(r1, rb + kRowBlock);
      for (int64_t tb = 0; tb < n_tokens; tb += kTokenTile) {
        const int64_t te = std::min(n_tokens, tb + kTokenTile);
        for (int64_t r = rb; r < re; ++r) {
          const uint8_t* w_row = wq + r * w_row_bytes;
          for (int64_t t = tb; t < te; ++t) {
            y[t * rows + r] = dot(w_row, xq + t * x_row_bytes, cols);
          }
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(rows, rows_range, n_tokens > 1 ? kRowBlock : 1);
  } else {
    rows_range(0, rows);
  }
}

void GetRows(GgmlType type, const void* table, int64_t cols, const int32_t* ids,
             int64_t n, float* out) {
  const int64_t row_bytes = RowBytesOrDie(type, cols);
  const uint8_t* base = static_cast<const uint8_t*>(table);
  for (int64_t i = 0; i < n; ++i) {
    if (!DequantizeRow(type, base + ids[i] * row_bytes, out + i * cols, cols)) {
      Die("GetRows on a type that cannot be dequantized", type, cols);
    }
  }
}

}  // namespace layerpool::kernels
