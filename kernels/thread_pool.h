// A persistent pool of worker threads for data-parallel loops.
//
// ParallelFor(n, fn) cuts [0, n) into at most num_threads() contiguous
// ranges of nearly equal size and calls fn(begin, end) once per range; the
// ranges run concurrently on the pool's workers and the calling thread,
// which works on ranges too. It returns when every range is done. A pool of one
// thread (or a loop too small to split) runs fn inline with no
// synchronisation at all.
//
// The pool is built for the forward pass, which calls it about ten times per
// layer per token: a call allocates nothing; between calls the workers spin
// for a short while (a couple of hundred microseconds) before they sleep on
// a condition variable, so back-to-back calls cost a cache-line handoff
// rather than a wake-up. Ranges are claimed, not assigned: a worker that is
// slow to start finds its range already run by the caller or another
// worker, so a range may run on any of the pool's threads and one thread
// may run several ranges of a call. The caller waits only for ranges that
// were claimed: a worker that is asleep or not scheduled (more threads than
// free cores) holds up no call it has not started, and when it does run it
// finds the call's ranges gone (or a newer call's, which it then helps
// with). A worker descheduled in the middle of its range still holds up
// that call.
//
// Thread safety: ParallelFor may be called from any thread; concurrent calls
// on one pool are serialised (one loop runs at a time). fn runs concurrently
// on several threads and must be safe for that, must not throw, and must not
// call ParallelFor on the same pool (that would deadlock). Destroying the
// pool joins the workers; no call may be in flight then.
//
// Standard library only (kernels/ is a leaf).
#ifndef LAYERPOOL_KERNELS_THREAD_POOL_H_
#define LAYERPOOL_KERNELS_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace layerpool::kernels {

class ThreadPool {
 public:
  // A pool of `num_threads` threads in all, the caller included (so
  // num_threads - 1 workers). Values below 1 mean 1.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) over a partition of [0, n) into at most
  // num_threads() contiguous, non-empty ranges and waits for all of them.
  // Every range boundary except n itself is a multiple of `grain` (>= 1), so
  // callers can keep work items such as blocks of rows whole. n <= 0 does
  // nothing. `fn` is any callable taking (int64_t, int64_t); it is invoked
  // through a reference, never copied.
  template <typename Fn>
  void ParallelFor(int64_t n, const Fn& fn, int64_t grain = 1) {
    Run(
        n, grain,
        [](const void* ctx, int64_t begin, int64_t end) {
          (*static_cast<const Fn*>(ctx))(begin, end);
        },
        &fn);
  }

 private:
  using RangeFn = void (*)(const void* ctx, int64_t begin, int64_t end);

  void Run(int64_t n, int64_t grain, RangeFn fn, const void* ctx);
  // Claims and runs ranges of job `generation` until none is left or
  // another job has replaced it.
  void ClaimAndRun(uint64_t generation);
  void WorkerLoop();

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one ParallelFor at a time

  // The current job. Written by the caller before it publishes the job in
  // claim_ (release); read by a thread only after it has claimed one of the
  // job's ranges (acquire), and rewritten only once every range of the job
  // is done (ranges_done_ == job_ranges_), so no thread ever reads another
  // job's fields or a half-written one.
  RangeFn job_fn_ = nullptr;
  const void* job_ctx_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  int job_ranges_ = 0;

  // The claim word: the job's id (the low 32 bits of its generation), its
  // number of ranges and the next range to hand out, in one atomic so that a
  // thread claims range r of job g with one compare-and-swap that fails if
  // the job changed. Layout: id << 32 | ranges << 16 | next.
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<int> ranges_done_{0};
  // The newest job's generation; workers wait for it to change.
  alignas(64) std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};

  // Blocking fallback after the spins; generation_ is bumped under it so a
  // worker cannot miss a job between checking and sleeping.
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
};

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_THREAD_POOL_H_
