#include "worker/sequence_table.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

SequenceTable MakeTable(int64_t n_ctx, int64_t max_sequences) {
  return SequenceTable(n_ctx, max_sequences, [n_ctx] {
    return KvCache::Create(GgmlType::kF16, 2, n_ctx, 1, 8);
  });
}

TEST(SequenceTableTest, SequencesStartAtZeroAndContinue) {
  SequenceTable table = MakeTable(8, 2);
  std::vector<KvCache*> caches;
  const std::vector<uint64_t> ids = {1, 1, 1, 2};
  const std::vector<int32_t> pos = {0, 1, 2, 0};
  ASSERT_TRUE(table.Advance(ids, pos, &caches).ok());
  EXPECT_EQ(caches[0], caches[2]);
  EXPECT_NE(caches[0], caches[3]);
  EXPECT_EQ(table.active(), 2);
  EXPECT_EQ(table.cells_used(), 4u);

  const std::vector<uint64_t> next_ids = {2, 1};
  const std::vector<int32_t> next_pos = {1, 3};
  EXPECT_TRUE(table.Advance(next_ids, next_pos, &caches).ok());
  EXPECT_EQ(table.cells_used(), 6u);
}

TEST(SequenceTableTest, RefusedRowsChangeNothing) {
  SequenceTable table = MakeTable(4, 1);
  std::vector<KvCache*> caches;
  const std::vector<uint64_t> one = {1};
  ASSERT_TRUE(table.Advance(one, std::vector<int32_t>{0}, &caches).ok());

  absl::Status skip = table.Advance(one, std::vector<int32_t>{2}, &caches);
  EXPECT_EQ(skip.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(skip.message(), HasSubstr("continues at position 2, expected 1"));

  const std::vector<uint64_t> unknown = {9};
  absl::Status late = table.Advance(unknown, std::vector<int32_t>{3}, &caches);
  EXPECT_THAT(late.message(), HasSubstr("sequence 9 is not held here"));

  absl::Status full = table.Advance(unknown, std::vector<int32_t>{0}, &caches);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(table.active(), 1);

  const std::vector<uint64_t> run = {1, 1, 1, 1};
  absl::Status past =
      table.Advance(run, std::vector<int32_t>{1, 2, 3, 4}, &caches);
  EXPECT_THAT(past.message(), HasSubstr("past the context of 4 tokens"));
  EXPECT_EQ(table.cells_used(), 1u);
  EXPECT_TRUE(table.Advance(one, std::vector<int32_t>{1}, &caches).ok());

  EXPECT_EQ(table.Free(std::vector<uint64_t>{1, 1, 5}), 1u);
  EXPECT_EQ(table.active(), 0);
  EXPECT_EQ(table.cells_used(), 0u);
  EXPECT_EQ(table.kv_bytes(), 0u);
  EXPECT_TRUE(table.Advance(unknown, std::vector<int32_t>{0}, &caches).ok());
}

TEST(SequenceTableTest, SamplerIsMadeOnceFromTheFirstSpec) {
  SequenceTable table = MakeTable(4, 1);
  std::vector<KvCache*> caches;
  const std::vector<uint64_t> one = {1};
  ASSERT_TRUE(table.Advance(one, std::vector<int32_t>{0}, &caches).ok());
  v1::SampleSpec spec;
  spec.mutable_sampling()->set_temperature(0);
  spec.mutable_sampling()->set_n_probs(2);
  auto first = table.SamplerFor(1, spec);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)->n_probs, 2);
  spec.mutable_sampling()->set_n_probs(5);
  auto again = table.SamplerFor(1, spec);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ((*again)->n_probs, 2);
}

TEST(SequenceTableTest, ReplaySkipIsBoundedByTheContext) {
  SequenceTable table = MakeTable(4, 2);  // n_ctx 4: at most 8 outputs
  std::vector<KvCache*> caches;
  ASSERT_TRUE(table.Advance(std::vector<uint64_t>{1, 2}, std::vector<int32_t>{0, 0}, &caches)
                  .ok());
  v1::SampleSpec spec;
  spec.mutable_sampling()->set_temperature(1);
  spec.mutable_sampling()->set_seed(7);
  spec.set_skip_random(8);
  auto skipped = table.SamplerFor(1, spec);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ((*skipped)->sampler.random_used(), 8u);
  spec.set_skip_random(9);
  auto refused = table.SamplerFor(2, spec);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("skip_random 9"));
}

}  // namespace
}  // namespace layerpool
