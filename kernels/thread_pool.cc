#include "kernels/thread_pool.h"

#include <algorithm>
#include <chrono>

// Synchronisation, in one place:
//  - The caller writes the job fields and resets ranges_done_, then
//    publishes the job by storing the claim word (release) and bumping
//    generation_ under mutex_, and notifies work_cv_.
//  - A worker waits for generation_ to change: it spins for a short while
//    (decode calls ParallelFor every few microseconds), then sleeps on
//    work_cv_. It then claims ranges with compare-and-swap on the claim
//    word, which succeeds only while the word still names the job it saw
//    and has ranges left; a successful claim (acquire) makes the fields
//    visible, and they stay valid until the claimed range is done.
//  - Every thread that finishes a range adds to ranges_done_; the one that
//    finishes the job's last range wakes the caller if it sleeps. The
//    caller runs ranges too, then waits for ranges_done_ == ranges (spin,
//    then done_cv_), and only then may publish another job.

namespace layerpool::kernels {
namespace {

constexpr std::chrono::microseconds kWorkerSpin{200};
constexpr std::chrono::microseconds kCallerSpin{2000};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() or until `limit` has passed; returns done(). After a
// few microseconds it yields between checks: with more runnable threads than
// cores, the thread being waited for may need this core.
template <typename Done>
bool SpinUntil(const Done& done, std::chrono::microseconds limit) {
  for (int i = 0; i < 1024; ++i) {
    if (done()) return true;
    CpuRelax();
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (done()) return true;
      CpuRelax();
    }
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads)
    : num_threads_(std::clamp(num_threads, 1, 1024)) {
  workers_.reserve(static_cast<size_t>(num_threads_ - 1));
  for (int i = 1; i < num_threads_; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

namespace {

constexpr uint64_t ClaimWord(uint64_t generation, int ranges, int next) {
  return (generation & 0xFFFFFFFFu) << 32 |
         static_cast<uint64_t>(ranges) << 16 | static_cast<uint64_t>(next);
}

}  // namespace

void ThreadPool::ClaimAndRun(uint64_t generation) {
  const uint64_t id = generation & 0xFFFFFFFFu;
  uint64_t word = claim_.load(std::memory_order_acquire);
  for (;;) {
    const int ranges = static_cast<int>(word >> 16 & 0xFFFF);
    const int range = static_cast<int>(word & 0xFFFF);
    if (word >> 32 != id || range >= ranges) return;
    if (!claim_.compare_exchange_weak(word, word + 1,
                                      std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      continue;  // `word` now holds the current value
    }
    // Ranges cut the grain-sized units evenly; boundaries are unit multiples.
    const int64_t units = (job_n_ + job_grain_ - 1) / job_grain_;
    const int64_t begin = units * range / ranges * job_grain_;
    const int64_t end =
        std::min(job_n_, units * (range + 1) / ranges * job_grain_);
    job_fn_(job_ctx_, begin, end);
    if (ranges_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == ranges) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller is not mid-check
      done_cv_.notify_one();
      return;
    }
    word = claim_.load(std::memory_order_acquire);
  }
}

void ThreadPool::Run(int64_t n, int64_t grain, RangeFn fn, const void* ctx) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t units = (n + grain - 1) / grain;
  const int ranges =
      static_cast<int>(std::min<int64_t>(units, int64_t{num_threads_}));
  if (ranges <= 1) {
    fn(ctx, 0, n);
    return;
  }

  std::lock_guard<std::mutex> run_lock(run_mutex_);
  job_fn_ = fn;
  job_ctx_ = ctx;
  job_n_ = n;
  job_grain_ = grain;
  job_ranges_ = ranges;
  ranges_done_.store(0, std::memory_order_relaxed);
  const uint64_t generation = generation_.load(std::memory_order_relaxed) + 1;
  claim_.store(ClaimWord(generation, ranges, 0), std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.store(generation, std::memory_order_release);
  }
  work_cv_.notify_all();

  ClaimAndRun(generation);  // the caller's share, and any range no worker took

  auto all_done = [this] {
    return ranges_done_.load(std::memory_order_acquire) == job_ranges_;
  };
  if (!SpinUntil(all_done, kCallerSpin)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, all_done);
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    auto published = [this, &seen] {
      return generation_.load(std::memory_order_acquire) != seen;
    };
    if (!SpinUntil(published, kWorkerSpin)) {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, published);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    ClaimAndRun(seen);
  }
}

}  // namespace layerpool::kernels
