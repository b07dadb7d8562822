#include "kernels/thread_pool.h"

#include <algorithm>
#include <chrono>

// Synchronisation, in one place:
//  - The caller writes the job fields, resets next_range_ and sets
//    busy_workers_ to the number of workers, then bumps generation_ with a
//    release store while holding mutex_, and notifies work_cv_.
//  - A worker waits for generation_ to change: it spins for a short while
//    (decode calls ParallelFor every few microseconds), then sleeps on
//    work_cv_. Seeing the new generation (acquire) makes the job fields
//    visible. It claims ranges with fetch_add on next_range_ until none is
//    left, then checks out by decrementing busy_workers_; the last one to
//    check out wakes the caller if it sleeps.
//  - The caller runs ranges too, then waits for busy_workers_ == 0 (spin,
//    then done_cv_). Only then can it return and publish another job, so a
//    slow worker never claims a range of the next job with stale fields.

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
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::ClaimAndRun() {
  for (;;) {
    const int range = next_range_.fetch_add(1, std::memory_order_relaxed);
    if (range >= job_ranges_) return;
    // Ranges cut the grain-sized units evenly; boundaries are unit multiples.
    const int64_t units = (job_n_ + job_grain_ - 1) / job_grain_;
    const int64_t begin = units * range / job_ranges_ * job_grain_;
    const int64_t end =
        std::min(job_n_, units * (range + 1) / job_ranges_ * job_grain_);
    job_fn_(job_ctx_, begin, end);
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
  next_range_.store(0, std::memory_order_relaxed);
  busy_workers_.store(static_cast<int>(workers_.size()),
                      std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();

  ClaimAndRun();  // the caller's share, and any range no worker took

  auto all_out = [this] {
    return busy_workers_.load(std::memory_order_acquire) == 0;
  };
  if (!SpinUntil(all_out, kCallerSpin)) {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, all_out);
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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    ClaimAndRun();
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);  // the caller is not mid-check
      done_cv_.notify_one();
    }
  }
}

}  // namespace layerpool::kernels
