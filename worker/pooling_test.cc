#include "worker/pooling.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using testing::ElementsAre;
using testing::FloatEq;

TEST(EmbeddingPool, MeanClsLastThenUnitLength) {
  EmbeddingPool pool(2);
  const float a[] = {3, 0}, b[] = {0, 4}, c[] = {1, 0};
  pool.Add(a);
  pool.Add(b);
  pool.Add(c);
  // mean (4/3, 4/3) -> (1/sqrt2, 1/sqrt2); cls (3, 0) -> (1, 0); last (1, 0).
  EXPECT_THAT(pool.Result(Pooling::kMean),
              ElementsAre(FloatEq(1 / std::sqrt(2.0f)), FloatEq(1 / std::sqrt(2.0f))));
  EXPECT_THAT(pool.Result(Pooling::kCls), ElementsAre(FloatEq(1), FloatEq(0)));
  EXPECT_THAT(pool.Result(Pooling::kLast), ElementsAre(FloatEq(1), FloatEq(0)));
  EXPECT_EQ(pool.rows(), 3);
}

TEST(EmbeddingPool, EmptyOrZeroStaysZero) {
  EmbeddingPool pool(3);
  EXPECT_THAT(pool.Result(Pooling::kMean), ElementsAre(0, 0, 0));
  const float zero[] = {0, 0, 0};
  pool.Add(zero);
  EXPECT_THAT(pool.Result(Pooling::kLast), ElementsAre(0, 0, 0));
}

}  // namespace
}  // namespace layerpool
