#include "worker/coordinator_lease.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;
using Clock = CoordinatorLease::Clock;
using std::chrono::milliseconds;

constexpr char kA[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kB[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

TEST(CoordinatorLeaseTest, TheFirstCoordinatorHoldsItAndOthersAreRefused) {
  CoordinatorLease lease(milliseconds(10000));
  const Clock::time_point t0 = Clock::now();
  absl::StatusOr<bool> a = lease.Take(kA, t0);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE(*a) << "nobody held it before";
  EXPECT_EQ(lease.holder(), kA);

  absl::StatusOr<bool> b = lease.Take(kB, t0 + milliseconds(1500));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(b.status().message(), HasSubstr("serves another coordinator (aaaaaaaa…"));
  EXPECT_THAT(b.status().message(), HasSubstr("last call 1.5 s ago"));
  EXPECT_THAT(b.status().message(), HasSubstr("after 10 s of its silence"));

  EXPECT_FALSE(lease.Take("", t0).ok()) << "an anonymous call while it is held";
  absl::StatusOr<bool> again = lease.Take(kA, t0 + milliseconds(2000));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST(CoordinatorLeaseTest, AnAnonymousCallIsServedWhileItIsFreeAndTakesNothing) {
  CoordinatorLease lease(milliseconds(10000));
  absl::StatusOr<bool> anonymous = lease.Take("");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_FALSE(*anonymous);
  EXPECT_EQ(lease.holder(), "");
  EXPECT_TRUE(lease.Take(kA).ok());
}

TEST(CoordinatorLeaseTest, SilenceEndsItAndTheNextHolderIsToldItChangedHands) {
  CoordinatorLease lease(milliseconds(1000));
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(lease.Take(kA, t0).ok());
  // Another coordinator's reads do not keep A's lease alive; A's do.
  lease.Touch(kB, t0 + milliseconds(900));
  lease.Touch(kA, t0 + milliseconds(800));
  EXPECT_EQ(lease.ExpireSilent(t0 + milliseconds(1700)), Clock::duration::zero());
  EXPECT_FALSE(lease.Take(kB, t0 + milliseconds(1700)).ok());
  // 1 s after A's last call: B may take it, and hears that A held it.
  absl::StatusOr<bool> b = lease.Take(kB, t0 + milliseconds(1800));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(*b);
  EXPECT_EQ(lease.holder(), kB);
}

TEST(CoordinatorLeaseTest, TheWatchdogEndsASilentLease) {
  CoordinatorLease lease(milliseconds(1000));
  const Clock::time_point t0 = Clock::now();
  EXPECT_EQ(lease.ExpireSilent(t0 + milliseconds(5000)), Clock::duration::zero())
      << "no lease, nothing to end";
  ASSERT_TRUE(lease.Take(kA, t0).ok());
  EXPECT_EQ(lease.ExpireSilent(t0 + milliseconds(999)), Clock::duration::zero());
  EXPECT_EQ(lease.ExpireSilent(t0 + milliseconds(1200)), milliseconds(1200));
  EXPECT_EQ(lease.holder(), "");
  EXPECT_EQ(lease.ExpireSilent(t0 + milliseconds(3000)), Clock::duration::zero())
      << "ended once";
  // A comes back: it takes the lease again, and nothing changed hands.
  absl::StatusOr<bool> a = lease.Take(kA, t0 + milliseconds(3000));
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(*a);
}

TEST(CoordinatorLeaseTest, OnlyTheHolderReleasesIt) {
  CoordinatorLease lease(milliseconds(10000));
  ASSERT_TRUE(lease.Take(kA).ok());
  EXPECT_FALSE(lease.Release(kB));
  EXPECT_FALSE(lease.Release(""));
  EXPECT_EQ(lease.holder(), kA);
  EXPECT_TRUE(lease.Release(kA));
  absl::StatusOr<bool> b = lease.Take(kB);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(*b) << "A's sequences are to be dropped";
}

TEST(CoordinatorLeaseTest, AZeroTimeoutNeverEndsItBySilence) {
  CoordinatorLease lease(milliseconds(0));
  const Clock::time_point t0 = Clock::now();
  ASSERT_TRUE(lease.Take(kA, t0).ok());
  EXPECT_EQ(lease.ExpireSilent(t0 + std::chrono::hours(24)), Clock::duration::zero());
  absl::StatusOr<bool> b = lease.Take(kB, t0 + std::chrono::hours(24));
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("never by silence"));
}

}  // namespace
}  // namespace layerpool
