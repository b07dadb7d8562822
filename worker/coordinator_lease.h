// The worker's lease: which coordinator it serves, one at a time (the
// contract is in worker.proto, "Lease").
//
// A coordinator's calls that change the stage or its sequences go through
// Take: the first coordinator takes the lease, its own calls keep it, and
// another's are refused, saying how long the holder has been silent. A call
// without a lease id (an older coordinator, a test's direct stub) is served
// only while the lease is free, and takes nothing. The lease ends with
// Release, or once its holder has been silent for the timeout
// (--coordinator-timeout; zero: never), whichever comes first; Take by
// another coordinator then succeeds and says that the lease changed hands,
// so that the worker drops what the old holder left.
//
// Thread safety: every method may be called from any thread.
#ifndef LAYERPOOL_WORKER_COORDINATOR_LEASE_H_
#define LAYERPOOL_WORKER_COORDINATOR_LEASE_H_

#include <chrono>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace layerpool {

class CoordinatorLease {
 public:
  using Clock = std::chrono::steady_clock;

  explicit CoordinatorLease(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // A call from coordinator `id` that needs the lease. True when the lease
  // changed hands (it was free or had expired, and another coordinator had
  // held it: its sequences are to be dropped); false when `id` held it
  // already, or `id` is empty and the lease is free. FailedPrecondition
  // when another coordinator holds it.
  [[nodiscard]] absl::StatusOr<bool> Take(std::string_view id, Clock::time_point now = Clock::now());

  // A call that reads only (Health, Stats): keeps the holder's lease alive
  // when `id` is the holder, changes nothing otherwise.
  void Touch(std::string_view id, Clock::time_point now = Clock::now());

  // Ends the lease when `id` holds it; returns whether it did.
  bool Release(std::string_view id);

  // Ends a lease whose holder has been silent for the timeout, and returns
  // how long it had been silent; zero when there was none to end.
  Clock::duration ExpireSilent(Clock::time_point now = Clock::now());

  // The holder's id, empty when the lease is free.
  std::string holder() const;

 private:
  bool ExpiredLocked(Clock::time_point now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::chrono::milliseconds timeout_;
  mutable absl::Mutex mu_;
  std::string holder_ ABSL_GUARDED_BY(mu_);
  // Whose sequences the stage may hold: the last holder, kept after its
  // lease expired until another coordinator takes the worker.
  std::string last_holder_ ABSL_GUARDED_BY(mu_);
  Clock::time_point last_call_ ABSL_GUARDED_BY(mu_);
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_COORDINATOR_LEASE_H_
