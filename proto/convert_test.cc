#include "proto/convert.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

TEST(SamplingFromProtoTest, UnsetFieldsTakeTheDefaults) {
  absl::StatusOr<SamplingParams> p = SamplingFromProto(v1::SamplingParams());
  ASSERT_TRUE(p.ok()) << p.status();
  const SamplingParams d;
  EXPECT_EQ(p->temperature, d.temperature);
  EXPECT_EQ(p->top_k, d.top_k);
  EXPECT_EQ(p->top_p, d.top_p);
  EXPECT_EQ(p->min_p, d.min_p);
  EXPECT_EQ(p->typical_p, d.typical_p);
  EXPECT_EQ(p->tfs_z, d.tfs_z);
  EXPECT_EQ(p->repeat_penalty, d.repeat_penalty);
  EXPECT_EQ(p->repeat_last_n, d.repeat_last_n);
  EXPECT_EQ(p->frequency_penalty, d.frequency_penalty);
  EXPECT_EQ(p->presence_penalty, d.presence_penalty);
  EXPECT_EQ(p->seed, kRandomSeed);
  EXPECT_EQ(p->n_probs, 0);
}

TEST(SamplingFromProtoTest, ZeroIsAValueNotUnset) {
  v1::SamplingParams proto;
  proto.set_temperature(0);
  proto.set_top_k(0);
  proto.set_min_p(0);
  proto.set_repeat_last_n(0);
  proto.set_seed(0);
  absl::StatusOr<SamplingParams> p = SamplingFromProto(proto);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->temperature, 0.0f);
  EXPECT_EQ(p->top_k, 0);
  EXPECT_EQ(p->min_p, 0.0f);
  EXPECT_EQ(p->repeat_last_n, 0);
  EXPECT_EQ(p->seed, 0u);
}

TEST(SamplingFromProtoTest, RoundTripsEveryField) {
  SamplingParams p;
  p.temperature = 0.3f;
  p.top_k = 7;
  p.top_p = 0.5f;
  p.min_p = 0.25f;
  p.typical_p = 0.75f;
  p.tfs_z = 0.125f;
  p.repeat_penalty = 1.5f;
  p.repeat_last_n = -1;
  p.frequency_penalty = -0.5f;
  p.presence_penalty = 2.0f;
  p.seed = 1234;
  p.n_probs = 5;
  const v1::SamplingParams proto = SamplingToProto(p);
  EXPECT_TRUE(proto.has_temperature() && proto.has_top_k() &&
              proto.has_top_p() && proto.has_min_p() && proto.has_typical_p() &&
              proto.has_tfs_z() && proto.has_repeat_penalty() &&
              proto.has_repeat_last_n() && proto.has_frequency_penalty() &&
              proto.has_presence_penalty() && proto.has_seed() &&
              proto.has_n_probs());
  absl::StatusOr<SamplingParams> back = SamplingFromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->temperature, p.temperature);
  EXPECT_EQ(back->top_k, p.top_k);
  EXPECT_EQ(back->top_p, p.top_p);
  EXPECT_EQ(back->min_p, p.min_p);
  EXPECT_EQ(back->typical_p, p.typical_p);
  EXPECT_EQ(back->tfs_z, p.tfs_z);
  EXPECT_EQ(back->repeat_penalty, p.repeat_penalty);
  EXPECT_EQ(back->repeat_last_n, p.repeat_last_n);
  EXPECT_EQ(back->frequency_penalty, p.frequency_penalty);
  EXPECT_EQ(back->presence_penalty, p.presence_penalty);
  EXPECT_EQ(back->seed, p.seed);
  EXPECT_EQ(back->n_probs, p.n_probs);
}

TEST(SamplingFromProtoTest, DefaultsRoundTrip) {
  absl::StatusOr<SamplingParams> back =
      SamplingFromProto(SamplingToProto(SamplingParams()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->seed, kRandomSeed);
  EXPECT_EQ(back->top_k, 40);
}

struct BadField {
  std::string name;
  void (*set)(v1::SamplingParams&);
  std::string message;
};

class SamplingFromProtoBadFieldTest
    : public ::testing::TestWithParam<BadField> {};

TEST_P(SamplingFromProtoBadFieldTest, NamesTheField) {
  v1::SamplingParams proto;
  GetParam().set(proto);
  absl::StatusOr<SamplingParams> p = SamplingFromProto(proto);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr(GetParam().message));
}

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

INSTANTIATE_TEST_SUITE_P(
    Fields, SamplingFromProtoBadFieldTest,
    ::testing::Values(
        BadField{"temperature",
                 [](v1::SamplingParams& p) { p.set_temperature(kNan); },
                 "sampling.temperature must be finite, got nan"},
        BadField{"top_p", [](v1::SamplingParams& p) { p.set_top_p(1.5f); },
                 "sampling.top_p must be in (0, 1], got 1.5"},
        BadField{"top_p_zero", [](v1::SamplingParams& p) { p.set_top_p(0); },
                 "sampling.top_p must be in (0, 1], got 0"},
        BadField{"min_p", [](v1::SamplingParams& p) { p.set_min_p(-0.5f); },
                 "sampling.min_p must be in [0, 1], got -0.5"},
        BadField{"typical_p", [](v1::SamplingParams& p) { p.set_typical_p(2); },
                 "sampling.typical_p must be in (0, 1], got 2"},
        BadField{"tfs_z", [](v1::SamplingParams& p) { p.set_tfs_z(kNan); },
                 "sampling.tfs_z must be in (0, 1], got nan"},
        BadField{"repeat_penalty",
                 [](v1::SamplingParams& p) { p.set_repeat_penalty(0); },
                 "sampling.repeat_penalty must be finite and > 0, got 0"},
        BadField{"repeat_last_n",
                 [](v1::SamplingParams& p) { p.set_repeat_last_n(-2); },
                 "sampling.repeat_last_n must be >= -1, got -2"},
        BadField{"frequency_penalty",
                 [](v1::SamplingParams& p) { p.set_frequency_penalty(kInf); },
                 "sampling.frequency_penalty must be finite, got inf"},
        BadField{"presence_penalty",
                 [](v1::SamplingParams& p) { p.set_presence_penalty(-kInf); },
                 "sampling.presence_penalty must be finite, got -inf"},
        BadField{"seed", [](v1::SamplingParams& p) { p.set_seed(1ull << 32); },
                 "sampling.seed must be in [0, 4294967295]"},
        BadField{"n_probs", [](v1::SamplingParams& p) { p.set_n_probs(-1); },
                 "sampling.n_probs must be in [0, 1024], got -1"},
        BadField{"n_probs_big",
                 [](v1::SamplingParams& p) { p.set_n_probs(1025); },
                 "sampling.n_probs must be in [0, 1024], got 1025"}),
    [](const ::testing::TestParamInfo<BadField>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace layerpool
