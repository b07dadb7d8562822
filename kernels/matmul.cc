#include "kernels/matmul.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <optional>

#include "kernels/matmul_internal.h"
#include "kernels/vec_dot.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"
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

// The calling thread's buffer for quantized activations, and every thread's
// for a tiled kernel's unpacked weights.
thread_local Scratch scratch;
thread_local Scratch pack_scratch;

// n_tokens > 1 with a tiled kernel: activations to Q8Batch form, then the
// kernel over the rows, split among threads in blocks of kRowBlock rows.
void MatMulTiled(const TiledKernel& kernel, const uint8_t* w,
                 int64_t w_row_bytes, int64_t rows, int64_t cols,
                 const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  const int64_t nb = cols / kQk32;
  const int64_t n_pairs = (n_tokens + 1) / 2;
  const int64_t pair_bytes = nb * kQ8PairBlockBytes;
  uint8_t* pairs = scratch.Get(static_cast<size_t>(n_pairs * pair_bytes));
  if (n_tokens % 2 != 0) {  // the padding token: zero quants and scales
    std::memset(pairs + (n_pairs - 1) * pair_bytes, 0,
                static_cast<size_t>(pair_bytes));
  }
  auto quantize = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      kernel.quantize(x + t * cols, nb, pairs + t / 2 * pair_bytes,
                      static_cast<int>(t % 2));
    }
  };
  const Q8Batch batch{pairs, n_tokens, nb};
  auto rows_range = [&](int64_t r0, int64_t r1) {
    void* pack = pack_scratch.Get(static_cast<size_t>(TiledPackBytes(nb)));
    kernel.matmul(w, w_row_bytes, r0, r1, batch, y, rows, pack);
  };
  if (pool != nullptr) {
    // Whole pairs per range, so no two threads write one block's bytes.
    pool->ParallelFor(n_tokens, quantize, 2);
    pool->ParallelFor(rows, rows_range, kRowBlock);
  } else {
    quantize(0, n_tokens);
    rows_range(0, rows);
  }
}

}  // namespace

int64_t TiledPackBytes(int64_t nb) {
  return kTiledBlockRows * nb * (kQk32 + static_cast<int64_t>(sizeof(float)));
}

bool IsRepackedByLlamaCpp(GgmlType w_type, int64_t rows) {
  return w_type == GgmlType::kQ4_0 && rows % 8 == 0;
}

TiledKernel GetTiledKernel(GgmlType w_type, CpuIsa isa, int64_t rows) {
  const bool repacked = IsRepackedByLlamaCpp(w_type, rows);
  if (isa >= CpuIsa::kAvx512) {
    if (w_type == GgmlType::kQ8_0) {
      return {&avx512::QuantizeQ8Row, &avx512::MatMulQ8_0};
    }
    if (w_type == GgmlType::kQ4_0) {
      return {&avx512::QuantizeQ8Row,
              repacked ? &avx512::MatMulQ4_0x8 : &avx512::MatMulQ4_0};
    }
  }
  if (isa >= CpuIsa::kAvx2) {
    if (w_type == GgmlType::kQ8_0) {
      return {&avx2::QuantizeQ8Row, &avx2::MatMulQ8_0};
    }
    if (w_type == GgmlType::kQ4_0 && !repacked) {
      return {&avx2::QuantizeQ8Row, &avx2::MatMulQ4_0};
    }
  }
  return {};
}

MatVecFn GetMatVecKernel(GgmlType w_type, CpuIsa isa, int64_t rows) {
  if (isa >= CpuIsa::kAvx512) {
    if (w_type == GgmlType::kQ8_0) return &avx512::MatVecQ8_0;
    if (w_type == GgmlType::kF32) return &avx512::MatVecF32;
    if (w_type == GgmlType::kQ4_K) return &avx512::MatVecQ4_K;
    if (w_type == GgmlType::kQ5_K) return &avx512::MatVecQ5_K;
    if (w_type == GgmlType::kQ6_K) return &avx512::MatVecQ6_K;
    if (IsRepackedByLlamaCpp(w_type, rows)) return &avx512::MatVecQ4_0x8;
  }
  return nullptr;
}

void QuantizeQ8Row(const float* x, int64_t nb, uint8_t* pair, int half) {
  for (int64_t b = 0; b < nb; ++b, pair += kQ8PairBlockBytes) {
    BlockQ8_0 block;
    QuantizeActivations(GgmlType::kQ8_0, x + b * kQk32, &block, kQk32);
    std::memcpy(pair + half * kQk32, block.qs, kQk32);
    const float d = Fp16ToFp32(block.d);
    for (int l = 0; l < 8; ++l) {
      const int32_t bias = -128 * (block.qs[4 * l] + block.qs[4 * l + 1] +
                                   block.qs[4 * l + 2] + block.qs[4 * l + 3]);
      std::memcpy(pair + 64 + 32 * half + 4 * l, &bias, sizeof(bias));
      std::memcpy(pair + 128 + 32 * half + 4 * l, &d, sizeof(d));
    }
  }
}

namespace {

// Whether llama.cpp hands a batch through a float-type matrix to llamafile's
// tinyBLAS (sgemm.cpp, llamafile_sgemm), whose order differs from
// ggml_vec_dot's (vec_dot_avx2.cc): only when the rows split into tiles of
// 4 and each row into whole 512-bit steps.
bool FloatBatchTakenByTinyBlas(GgmlType w_type, int64_t rows, int64_t cols) {
  if (rows % 4 != 0) return false;
  switch (w_type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
      return cols % 16 == 0;
    case GgmlType::kBF16:
      return cols % 32 == 0;
    default:
      return false;
  }
}

}  // namespace

VecDotFn RowDotFn(GgmlType w_type, CpuIsa isa, int64_t rows, int64_t cols,
                  int64_t n_tokens) {
  if (isa >= CpuIsa::kAvx2 && IsRepackedByLlamaCpp(w_type, rows)) {
    return &avx2::DotQ4_0Repacked;
  }
  if (n_tokens < 2 || isa < CpuIsa::kAvx2) return GetVecDotFn(w_type, isa);
  // tinyBLAS takes IQ4_NL batches too.
  if (w_type == GgmlType::kIQ4_NL) return &avx2::DotIQ4_NLBatch;
  if (FloatBatchTakenByTinyBlas(w_type, rows, cols)) {
    switch (w_type) {
      case GgmlType::kF32: return &avx2::DotF32Batch;
      case GgmlType::kF16: return &avx2::DotF16Batch;
      default: return &avx2::DotBF16Batch;
    }
  }
  return GetVecDotFn(w_type, isa);
}

BatchTiledFn GetBatchTiledKernel(GgmlType w_type, CpuIsa isa, int64_t rows,
                                 int64_t cols) {
  if (isa < CpuIsa::kAvx512) return nullptr;
  switch (w_type) {
    case GgmlType::kQ4_K: return &avx512::MatMulQ4_KBatch;
    case GgmlType::kQ5_K: return &avx512::MatMulQ5_KBatch;
    case GgmlType::kQ6_K: return &avx512::MatMulQ6_KBatch;
    default: break;
  }
  if (!FloatBatchTakenByTinyBlas(w_type, rows, cols)) return nullptr;
  switch (w_type) {
    case GgmlType::kF32: return &avx512::MatMulF32Batch;
    case GgmlType::kF16: return &avx512::MatMulF16Batch;
    default: return &avx512::MatMulBF16Batch;
  }
}

bool IsMatMulSupported(GgmlType w_type) { return IsVecDotSupported(w_type); }

void MatMul(GgmlType w_type, const void* w, int64_t rows, int64_t cols,
            const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  MatMulWithIsa(ActiveIsa(), w_type, w, rows, cols, x, n_tokens, y, pool);
}

void MatMulExpert(GgmlType w_type, const void* w, int64_t rows, int64_t cols,
                  const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  MatMulWithIsa(ActiveIsa(), w_type, w, rows, cols, x, n_tokens, y, pool,
                /*vec_dot_order=*/true);
}

void MatMulWithIsa(CpuIsa isa, GgmlType w_type, const void* w, int64_t rows,
                   int64_t cols, const float* x, int64_t n_tokens, float* y,
                   ThreadPool* pool, bool vec_dot_order) {
  if (!IsMatMulSupported(w_type))
    Die("MatMul on an unsupported type", w_type, cols);
  if (rows <= 0 || n_tokens <= 0) return;
  const int64_t w_row_bytes = RowBytesOrDie(w_type, cols);
  // The kernels below that keep vec_dot's bits: the one-token ones but the
  // repacked Q4_0, and the K-quant batch tiles.
  const bool repacked = IsRepackedByLlamaCpp(w_type, rows);
  const bool k_quant = w_type == GgmlType::kQ4_K || w_type == GgmlType::kQ5_K ||
                       w_type == GgmlType::kQ6_K;
  if (n_tokens > 1 && !vec_dot_order) {
    if (const TiledKernel tiled = GetTiledKernel(w_type, isa, rows);
        tiled.matmul) {
      MatMulTiled(tiled, static_cast<const uint8_t*>(w), w_row_bytes, rows,
                  cols, x, n_tokens, y, pool);
      return;
    }
  }
  const GgmlType act_type = VecDotType(w_type);
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

  const uint8_t* wq = static_cast<const uint8_t*>(w);
  if (n_tokens == 1 && !(vec_dot_order && repacked)) {
    if (const MatVecFn matvec = GetMatVecKernel(w_type, isa, rows)) {
      auto rows_range = [&](int64_t r0, int64_t r1) {
        void* scratch =
            pack_scratch.Get(static_cast<size_t>(MatVecScratchBytes(cols)));
        matvec(wq, w_row_bytes, r0, r1, xq, cols, y, scratch);
      };
      if (pool != nullptr) {
        pool->ParallelFor(rows, rows_range);
      } else {
        rows_range(0, rows);
      }
      return;
    }
  }
  if (n_tokens > 1 && (!vec_dot_order || k_quant)) {
    if (const BatchTiledFn tiled = GetBatchTiledKernel(w_type, isa, rows, cols)) {
      auto rows_range = [&](int64_t r0, int64_t r1) {
        tiled(wq, w_row_bytes, r0, r1, xq, x_row_bytes, n_tokens, cols, y, rows);
      };
      if (pool != nullptr) {
        pool->ParallelFor(rows, rows_range, kRowBlock);
      } else {
        rows_range(0, rows);
      }
      return;
    }
  }
  const VecDotFn dot = vec_dot_order ? GetVecDotFn(w_type, isa)
                                     : RowDotFn(w_type, isa, rows, cols, n_tokens);
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
