#include "worker/coordinator_lease.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool {

bool CoordinatorLease::ExpiredLocked(Clock::time_point now) const {
  return timeout_.count() > 0 && now - last_call_ >= timeout_;
}

absl::StatusOr<bool> CoordinatorLease::Take(std::string_view id, Clock::time_point now) {
  absl::MutexLock lock(&mu_);
  if (!holder_.empty() && holder_ != id && !ExpiredLocked(now)) {
    const double silent_s = std::chrono::duration<double>(now - last_call_).count();
    std::string when =
        timeout_.count() > 0
            ? absl::StrFormat("after %.0f s of its silence (--coordinator-timeout)",
                              std::chrono::duration<double>(timeout_).count())
            : std::string("never by silence (--coordinator-timeout 0)");
    return absl::FailedPreconditionError(absl::StrFormat(
        "this worker serves another coordinator (%s…, last call %.1f s ago); it is free "
        "once that coordinator stops, or %s",
        holder_.substr(0, 8), silent_s, when));
  }
  if (id.empty()) return false;  // served while the lease is free; takes nothing
  const bool changed = !last_holder_.empty() && last_holder_ != id;
  holder_ = std::string(id);
  last_holder_ = holder_;
  last_call_ = now;
  return changed;
}

void CoordinatorLease::Touch(std::string_view id, Clock::time_point now) {
  absl::MutexLock lock(&mu_);
  if (!holder_.empty() && holder_ == id && !ExpiredLocked(now)) last_call_ = now;
}

bool CoordinatorLease::Release(std::string_view id) {
  absl::MutexLock lock(&mu_);
  if (id.empty() || holder_ != id) return false;
  holder_.clear();
  return true;
}

CoordinatorLease::Clock::duration CoordinatorLease::ExpireSilent(Clock::time_point now) {
  absl::MutexLock lock(&mu_);
  if (holder_.empty() || !ExpiredLocked(now)) return Clock::duration::zero();
  holder_.clear();
  return now - last_call_;
}

std::string CoordinatorLease::holder() const {
  absl::MutexLock lock(&mu_);
  return holder_;
}

}  // namespace layerpool
