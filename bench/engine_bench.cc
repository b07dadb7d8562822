// engine_bench: prompt-processing and decode speed of the CPU engine on one
// model, in the manner of llama-bench (pp N: N prompt tokens in batches from
// an empty context; tg N: N tokens decoded one at a time from an empty
// context), printed with the bandwidth achieved reading the weights, and its
// fraction of the read bandwidth measured here in the same run: decode
// cannot beat weight bytes / bandwidth per token.
//
//   engine_bench --model FILE.gguf [--threads 1,2] [--pp 128] [--tg 64]
//                [--batch 512] [--reps 3] [--output json]

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>
#include <random>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "kernels/thread_pool.h"
#include "nlohmann/json.hpp"
#include "worker/stage.h"

ABSL_FLAG(std::string, model, "", "GGUF model file");
ABSL_FLAG(std::string, threads, "1,2", "comma-separated thread counts");
ABSL_FLAG(int64_t, pp, 128, "prompt tokens per prompt-processing run (0: skip)");
ABSL_FLAG(int64_t, tg, 64, "tokens per decode run (0: skip)");
ABSL_FLAG(int64_t, batch, 512, "prompt tokens per forward pass");
ABSL_FLAG(int, reps, 3, "repetitions of each test");
ABSL_FLAG(std::string, output, "text", "text or json");

namespace layerpool {
namespace {

using Clock = std::chrono::steady_clock;

// Read bandwidth with `threads` threads: summing a buffer far larger than
// the caches, best of a few passes. Bytes per second.
double MeasureReadBandwidth(int threads) {
  constexpr size_t kBytes = size_t{512} << 20;
  std::vector<uint64_t> buffer(kBytes / sizeof(uint64_t), 1);
  kernels::ThreadPool pool(threads);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    std::atomic<uint64_t> total{0};
    const auto start = Clock::now();
    pool.ParallelFor(static_cast<int64_t>(buffer.size()), [&](int64_t b, int64_t e) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 += buffer[i];
        s1 += buffer[i + 1];
        s2 += buffer[i + 2];
        s3 += buffer[i + 3];
      }
      for (; i < e; ++i) s0 += buffer[i];
      total += s0 + s1 + s2 + s3;
    });
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (total.load() != buffer.size()) std::abort();  // keeps the loop alive
    best = std::max(best, kBytes / s);
  }
  return best;
}

struct Sample {
  double mean = 0, stddev = 0;
};

Sample Stats(const std::vector<double>& v) {
  Sample s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  for (double x : v) s.stddev += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(s.stddev / (v.size() - 1)) : 0;
  return s;
}

// Tokens per second of one run: `n` tokens, `batch` per forward pass.
absl::StatusOr<double> TimeRun(Stage& stage, int64_t n, int64_t batch,
                               std::mt19937& rng) {
  LP_ASSIGN_OR_RETURN(auto cache, stage.NewCache(n));
  std::uniform_int_distribution<int32_t> token(0, stage.hparams().n_vocab - 1);
  std::vector<int32_t> tokens, positions;
  std::vector<KvCache*> caches;
  std::vector<float> logits;
  const auto start = Clock::now();
  for (int64_t p = 0; p < n; p += batch) {
    const int64_t len = std::min(batch, n - p);
    tokens.resize(len);
    positions.resize(len);
    for (int64_t i = 0; i < len; ++i) {
      tokens[i] = token(rng);
      positions[i] = static_cast<int32_t>(p + i);
    }
    caches.assign(len, cache.get());
    const int64_t last = len - 1;
    StageBatch b{tokens, {}, positions, caches, std::span<const int64_t>(&last, 1), {}, {}};
    LP_RETURN_IF_ERROR(stage.Forward(b, &logits));
  }
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

int Main(const std::string& model_path) {
  auto file = gguf::GgufFile::Open(model_path, {.map_data = false});
  if (!file.ok()) {
    std::cerr << "error: " << file.status().message() << "\n";
    return 1;
  }
  std::vector<int> thread_counts;
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(t, &n) || n < 1) {
      std::cerr << "error: --threads: '" << t << "' is not a positive integer\n";
      return 2;
    }
    thread_counts.push_back(n);
  }
  const bool json = absl::GetFlag(FLAGS_output) == "json";
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  if (!json) {
    std::cout << absl::StrFormat("%-28s %9s %7s %6s %18s %9s %9s %6s\n", "model",
                                 "size MiB", "threads", "test", "tokens/s",
                                 "GB/s", "read GB/s", "ratio");
  }
  std::mt19937 rng(1234);
  for (int threads : thread_counts) {
    StageOptions options;
    options.threads = threads;
    auto stage = Stage::Create(**file, options);
    if (!stage.ok()) {
      std::cerr << "error: " << stage.status().message() << "\n";
      return 1;
    }
    const double bytes_per_token = static_cast<double>((*stage)->weights().weight_bytes());
    const double read_bw = MeasureReadBandwidth(threads);
    struct Test {
      const char* kind;
      int64_t n, batch;
    };
    const Test tests[] = {{"pp", absl::GetFlag(FLAGS_pp), absl::GetFlag(FLAGS_batch)},
                          {"tg", absl::GetFlag(FLAGS_tg), 1}};
    for (const Test& test : tests) {
      if (test.n <= 0) continue;
      // A warm-up run of the full size, as llama-bench's: buffers reach
      // their size and their pages are touched before the clock runs.
      (void)TimeRun(**stage, test.n, test.batch, rng);
      std::vector<double> rates;
      for (int r = 0; r < absl::GetFlag(FLAGS_reps); ++r) {
        auto rate = TimeRun(**stage, test.n, test.batch, rng);
        if (!rate.ok()) {
          std::cerr << "error: " << rate.status().message() << "\n";
          return 1;
        }
        rates.push_back(*rate);
      }
      const Sample s = Stats(rates);
      // Weights are read once per forward pass: per token when decoding,
      // per batch when processing a prompt.
      const double passes_per_s =
          test.batch == 1 ? s.mean : s.mean / std::min(test.n, test.batch);
      const double gbps = bytes_per_token * passes_per_s / 1e9;
      const std::string name = absl::StrFormat("%s%d", test.kind, test.n);
      if (json) {
        results.push_back({{"model", model_path}, {"threads", threads},
                           {"test", name}, {"tokens_per_s", s.mean},
                           {"stddev", s.stddev}, {"weight_gb_per_s", gbps},
                           {"read_gb_per_s", read_bw / 1e9},
                           {"fraction_of_read_bandwidth", gbps * 1e9 / read_bw}});
      } else {
        std::string short_name = model_path.substr(model_path.find_last_of('/') + 1);
        std::cout << absl::StrFormat(
            "%-28s %9.1f %7d %6s %9.2f +- %6.2f %9.2f %9.2f %6.2f\n",
            short_name.substr(0, 28), bytes_per_token / 1048576.0, threads, name,
            s.mean, s.stddev, gbps, read_bw / 1e9, gbps * 1e9 / read_bw);
      }
    }
  }
  if (json) std::cout << results.dump(2) << "\n";
  return 0;
}

}  // namespace
}  // namespace layerpool

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "engine_bench --model FILE.gguf [--threads 1,2] [--pp 128] [--tg 64] "
      "[--batch 512] [--reps 3] [--output json]\n"
      "Prompt-processing (pp) and decode (tg) tokens/s of the CPU engine, "
      "with the bandwidth achieved reading weights and its fraction of the "
      "read bandwidth measured in the same run.");
  absl::ParseCommandLine(argc, argv);
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model.empty()) {
    std::cerr << "error: --model is required (--help for usage)\n";
    return 2;
  }
  return layerpool::Main(model);
}
