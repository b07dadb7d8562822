// Decode matmul (one activation row) against the speed of light: decode
// reads every weight once per token, so its ceiling is memory bandwidth.
//
// Each case reports bytes_per_second = weight bytes read per second, and the
// counters
//   read_GBps    measured bandwidth of summing a 256 MiB buffer with as many
//                threads as the case uses (a pure read stream, like reading
//                weights; measured once per thread count),
//   memcpy_GBps  one-time measured memcpy of a 256 MiB buffer, counted as
//                bytes copied per second (it moves twice that: read + write),
//   frac_read    achieved weight GB/s divided by read_GBps.
// "cold" cases rotate through enough copies of the matrix to fill 256 MiB,
// so the weights come from DRAM as in a real model; "hot" cases reuse one
// matrix, which then lives in the last-level cache.
//
// Run: build-kern/kernels/kernels_bench [--benchmark_filter=...]
// LAYERPOOL_KERNELS=scalar|avx2 compares instruction sets.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/matmul.h"
#include "kernels/thread_pool.h"
#include "kernels/vec_dot.h"
#include "model/quant/quantize.h"
#include "model/quant/types.h"

namespace layerpool::kernels {
namespace {

constexpr size_t kBufferBytes = size_t{256} << 20;

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Best of a few passes, in GB/s (1e9 bytes).
template <typename Fn>
double BestRate(size_t bytes, const Fn& pass) {
  double best = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    pass();
    const double s = Seconds(std::chrono::steady_clock::now() - t0);
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

struct Bandwidth {
  double memcpy_gbps = 0;
  double read_gbps = 0;
};

// Sums words[begin, end) with four independent chains (vectorised at -O3).
uint64_t SumWords(const uint64_t* words, int64_t begin, int64_t end) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = begin; i + 3 < end; i += 4) {
    s0 += words[i];
    s1 += words[i + 1];
    s2 += words[i + 2];
    s3 += words[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// memcpy of a 256 MiB buffer (one thread), and reading one with `threads`
// threads, each measured once per process and thread count.
const Bandwidth& MeasuredBandwidth(int threads) {
  static std::vector<uint8_t>* a = new std::vector<uint8_t>(kBufferBytes, 1);
  static const double memcpy_gbps = [] {
    std::vector<uint8_t> b(kBufferBytes, 2);
    return BestRate(kBufferBytes, [&] {
      std::memcpy(b.data(), a->data(), kBufferBytes);
      benchmark::DoNotOptimize(b.data());
    });
  }();
  static Bandwidth cache[8];
  Bandwidth& bw = cache[std::min(threads, 7)];
  if (bw.read_gbps == 0) {
    ThreadPool pool(threads);
    const uint64_t* words = reinterpret_cast<const uint64_t*>(a->data());
    std::vector<uint64_t> sums(static_cast<size_t>(threads) + 1);
    bw.memcpy_gbps = memcpy_gbps;
    bw.read_gbps = BestRate(kBufferBytes, [&] {
      pool.ParallelFor(
          static_cast<int64_t>(kBufferBytes / 8),
          [&](int64_t begin, int64_t end) {
            benchmark::DoNotOptimize(SumWords(words, begin, end));
          },
          1024);
    });
  }
  return bw;
}

// `copies` matrices of rows x cols of `type`, filled with quantized random
// rows (16 distinct rows tiled, which is all the speed depends on). GGUF
// tensor data is 32-byte aligned, not 64, so the matrices start 32 bytes
// past a cache-line boundary, as real weights may.
class Weights {
 public:
  Weights(GgmlType type, int64_t rows, int64_t cols, int64_t copies) {
    const int64_t row_bytes = *RowBytes(type, cols);
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<uint8_t> distinct(static_cast<size_t>(16 * row_bytes));
    std::vector<float> f(static_cast<size_t>(cols));
    for (int r = 0; r < 16; ++r) {
      for (float& v : f) v = normal(rng);
      if (!QuantizeRow(type, f.data(), distinct.data() + r * row_bytes, cols)) {
        std::abort();
      }
    }
    storage_.resize(static_cast<size_t>(copies * rows * row_bytes) + 96);
    base_ = reinterpret_cast<uint8_t*>(
        (reinterpret_cast<uintptr_t>(storage_.data()) + 63) / 64 * 64 + 32);
    for (int64_t r = 0; r < copies * rows; ++r) {
      std::memcpy(base_ + r * row_bytes, distinct.data() + (r % 16) * row_bytes,
                  static_cast<size_t>(row_bytes));
    }
  }
  const uint8_t* data() const { return base_; }

 private:
  std::vector<uint8_t> storage_;
  uint8_t* base_;
};

void BM_MatMulDecode(benchmark::State& state) {
  const auto type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const bool cold = state.range(4) != 0;
  const int64_t tokens = state.range(5);
  const Bandwidth& bw = MeasuredBandwidth(threads);

  const int64_t matrix_bytes = *RowBytes(type, cols) * rows;
  const int64_t copies =
      cold ? std::max<int64_t>(
                 1, (static_cast<int64_t>(kBufferBytes) + matrix_bytes - 1) /
                        matrix_bytes)
           : 1;
  const Weights w(type, rows, cols, copies);
  std::vector<float> x(static_cast<size_t>(tokens * cols), 0.5f),
      y(static_cast<size_t>(tokens * rows));
  ThreadPool pool(threads);

  int64_t copy = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    MatMul(type, w.data() + copy * matrix_bytes, rows, cols, x.data(), tokens,
           y.data(), &pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % copies;
  }
  const double seconds = Seconds(std::chrono::steady_clock::now() - start);
  const double bytes = static_cast<double>(state.iterations() * matrix_bytes);
  state.SetBytesProcessed(state.iterations() * matrix_bytes);
  state.counters["read_GBps"] = bw.read_gbps;
  state.counters["memcpy_GBps"] = bw.memcpy_gbps;
  state.counters["frac_read"] = bytes / seconds / 1e9 / bw.read_gbps;
  state.SetLabel(std::string(GetTypeTraits(type)->name) + " " +
                 IsaName(ActiveIsa()) + (cold ? " cold" : " hot"));
}

// tokens > 1: a pipeline stage's micro-batch of a few rows, which still
// reads each weight once (frac_read counts the weight bytes, not per
// token); a "hot" 512 x 2048 matrix (in L2) shows the compute alone.
void DecodeArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"type", "rows", "cols", "threads", "cold", "tokens"});
  for (GgmlType type :
       {GgmlType::kQ4_K, GgmlType::kQ6_K, GgmlType::kQ8_0, GgmlType::kF32}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2048, 2048},
                              std::pair<int64_t, int64_t>{8192, 2048}}) {
      for (int threads : {1, 2}) {
        b->Args({static_cast<int64_t>(type), rows, cols, threads, 1, 1});
      }
    }
    b->Args({static_cast<int64_t>(type), 2048, 2048, 1, 0, 1});
  }
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ6_K}) {
    for (int64_t tokens : {1, 2, 4}) {
      b->Args({static_cast<int64_t>(type), 512, 2048, 1, 0, tokens});
      if (tokens > 1) {
        b->Args({static_cast<int64_t>(type), 8192, 2048, 1, 1, tokens});
      }
    }
  }
}

// The machines these run on are often shared: report the best repetition
// next to the mean (run with --benchmark_repetitions=N).
double Max(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}
double Min(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

// Prefill: a batch of tokens against one matrix. Reported as multiply-adds
// per second (counter GFLOP, shown per second, counts two flops per
// multiply-add); weights come from DRAM once per call and are reused across the
// batch from cache.
void BM_MatMulPrefill(benchmark::State& state) {
  const auto type = static_cast<GgmlType>(state.range(0));
  const int64_t rows = state.range(1), cols = state.range(2);
  const int64_t n_tokens = state.range(3);
  const int threads = static_cast<int>(state.range(4));
  const Weights w(type, rows, cols, 1);
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n_tokens * cols));
  for (float& v : x) v = normal(rng);
  std::vector<float> y(static_cast<size_t>(n_tokens * rows));
  ThreadPool pool(threads);
  for (auto _ : state) {
    MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP"] =
      benchmark::Counter(2.0 * static_cast<double>(rows * cols * n_tokens) *
                             static_cast<double>(state.iterations()) / 1e9,
                         benchmark::Counter::kIsRate);
  state.SetLabel(std::string(GetTypeTraits(type)->name) + " " +
                 IsaName(ActiveIsa()));
}

void PrefillArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"type", "rows", "cols", "tokens", "threads"});
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ6_K}) {
    b->Args({static_cast<int64_t>(type), 4096, 4096, 64, 2});
  }
  b->Args({static_cast<int64_t>(GgmlType::kQ4_K), 4096, 4096, 64, 1});
  // The synth-1B shapes (attention 2048 x 2048, FFN 8192 x 2048) at pp128.
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K}) {
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{2048, 2048},
                              std::pair<int64_t, int64_t>{8192, 2048}}) {
      for (int threads : {1, 2}) {
        b->Args({static_cast<int64_t>(type), rows, cols, 128, threads});
      }
    }
  }
}
BENCHMARK(BM_MatMulPrefill)
    ->Apply(PrefillArgs)
    ->UseRealTime()
    ->MinTime(0.5)
    ->ComputeStatistics("max", Max)
    ->ComputeStatistics("min", Min);

// One 4096-wide row per call, 64 rows cycling (all in L2): the compute
// speed of each instruction set's kernel, in weight bytes per second.
void BM_VecDot(benchmark::State& state) {
  const auto type = static_cast<GgmlType>(state.range(0));
  const auto isa = static_cast<CpuIsa>(state.range(1));
  if (isa > DetectedIsa()) {
    state.SkipWithError("instruction set not available");
    return;
  }
  const int64_t cols = 4096, rows = 64;
  const int64_t row_bytes = *RowBytes(type, cols);
  const Weights w(type, rows, cols, 1);
  const GgmlType act = VecDotType(type);
  std::vector<float> x(static_cast<size_t>(cols), 0.25f);
  std::vector<uint8_t> xq(static_cast<size_t>(*RowBytes(act, cols)));
  QuantizeActivations(act, x.data(), xq.data(), cols);
  const VecDotFn dot = GetVecDotFn(type, isa);
  int64_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(dot(w.data() + r * row_bytes, xq.data(), cols));
    r = (r + 1) % rows;
  }
  state.SetBytesProcessed(state.iterations() * row_bytes);
  state.SetLabel(std::string(GetTypeTraits(type)->name) + " " + IsaName(isa));
}

void VecDotArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"type", "isa"});
  // Types QuantizeRow can produce (the weights are made with it).
  for (GgmlType type :
       {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ8_0,
        GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K,
        GgmlType::kQ6_K, GgmlType::kF16, GgmlType::kF32}) {
    for (CpuIsa isa : {CpuIsa::kScalar, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
      b->Args({static_cast<int64_t>(type), static_cast<int64_t>(isa)});
    }
  }
}

BENCHMARK(BM_MatMulDecode)
    ->Apply(DecodeArgs)
    ->UseRealTime()
    ->MinTime(0.3)
    ->ComputeStatistics("max", Max)
    ->ComputeStatistics("min", Min);
BENCHMARK(BM_VecDot)
    ->Apply(VecDotArgs)
    ->MinTime(0.2)
    ->ComputeStatistics("max", Max)
    ->ComputeStatistics("min", Min);

// Cost of one ParallelFor with trivial work: the per-call overhead the
// forward pass pays about ten times per layer per token. Pools larger than
// the machine's cores show what a call costs when workers are not running.
void BM_ParallelForOverhead(benchmark::State& state) {
  ThreadPool pool(static_cast<int>(state.range(0)));
  std::vector<int64_t> sink(64);
  for (auto _ : state) {
    pool.ParallelFor(64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sink[i] += i;
    });
  }
  benchmark::DoNotOptimize(sink.data());
}
BENCHMARK(BM_ParallelForOverhead)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->UseRealTime()
    ->ComputeStatistics("max", Max)
    ->ComputeStatistics("min", Min);

}  // namespace
}  // namespace layerpool::kernels

BENCHMARK_MAIN();
