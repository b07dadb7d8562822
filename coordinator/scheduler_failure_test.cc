// The scheduler when things go wrong: cancellation at every stage of a
// request, the pipeline failing, its stages replaced (Rewind and replay),
// and results that do not match what was sent.
#include "coordinator/scheduler.h"
#include "coordinator/fake_pipeline.h"
#include <algorithm>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::layerpool::scheduler_fake::FakePipeline;
using ::layerpool::scheduler_fake::Harness;
using ::layerpool::scheduler_fake::Opts;
using ::layerpool::scheduler_fake::Prompt;
using ::layerpool::scheduler_fake::Reference;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(SchedulerTest, CancelQueuedReadyAndInFlight) {
  Harness h(Opts(/*n_stages=*/2, /*n_ctx=*/64, /*max_sequences=*/3));
  for (uint64_t id = 1; id <= 4; ++id) {
    ASSERT_TRUE(h.sched.Submit(id, Prompt(3, id), 8).ok());
  }
  // Queued: gone at once, never admitted, so never freed.
  h.sched.Cancel(4);
  EXPECT_EQ(h.sched.queued(), 0);
  h.Drain();
  EXPECT_THAT(h.log[4].finishes, ElementsAre(FinishReason::kCancelled));
  EXPECT_EQ(h.log[4].freed, 0);

  // Batches {1, 2} and {3} in flight.
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 2u);
  ASSERT_EQ(b[1].samples.size(), 1u);
  const uint64_t lone = b[1].samples[0].seq_id;
  h.sched.Cancel(lone);
  h.sched.Cancel(lone);  // twice: still one event
  h.Drain();
  EXPECT_THAT(h.log[lone].finishes, ElementsAre(FinishReason::kCancelled));
  EXPECT_EQ(h.log[lone].freed, 0) << "still in flight";
  EXPECT_EQ(h.sched.active(), 3) << "keeps its KV slot until it returns";

  ASSERT_TRUE(h.sched.Submit(5, Prompt(3, 5), 2).ok());
  EXPECT_EQ(h.sched.queued(), 1);
  h.ReturnOne(1);  // the cancelled one: dropped, freed, slot to 5
  EXPECT_THAT(h.log[lone].tokens, IsEmpty());
  EXPECT_EQ(h.log[lone].freed, 1);
  EXPECT_EQ(h.sched.queued(), 0);
  EXPECT_EQ(h.sched.active(), 3);

  // Ready (not in flight): freed at once.
  h.ReturnOne();
  const uint64_t ready = b[0].samples[0].seq_id;
  EXPECT_EQ(h.log[ready].tokens.size(), 1u);
  h.sched.Cancel(ready);
  h.Drain();
  EXPECT_THAT(h.log[ready].finishes, ElementsAre(FinishReason::kCancelled));
  EXPECT_EQ(h.log[ready].freed, 1);
  h.sched.Cancel(ready);  // finished and freed: no-op
  h.sched.Cancel(999);    // unknown: no-op
  h.RunToIdle();
  EXPECT_THAT(h.log[ready].finishes, ElementsAre(FinishReason::kCancelled));
  EXPECT_EQ(h.log[ready].tokens.size(), 1u);
  for (uint64_t id = 1; id <= 5; ++id) {
    EXPECT_EQ(h.log[id].finishes.size(), 1u) << id;
    EXPECT_EQ(h.log[id].freed, id == 4 ? 0 : 1) << id;
  }
  EXPECT_EQ(h.log[5].tokens, Reference(Prompt(3, 5), 2, 64));
}

TEST(SchedulerTest, FailEndsEveryoneAndLaterWorkStartsClean) {
  Harness h(Opts(/*n_stages=*/2, /*n_ctx=*/64, /*max_sequences=*/2));
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(h.sched.Submit(id, Prompt(3, id), 8).ok());
  }
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 2u);
  h.sched.Cancel(1);  // in flight and already finished
  h.sched.Fail(absl::UnavailableError("stage 1 is gone"));
  h.sched.Fail(absl::InternalError("second"));  // nothing left to end
  // The pipeline lost both micro-batches; one answer turns up late.
  auto [id, tokens] = h.pipe.Pop();
  h.pipe.Pop();
  h.Drain();
  EXPECT_THAT(h.log[1].finishes, ElementsAre(FinishReason::kCancelled));
  for (uint64_t id : {2, 3}) {
    EXPECT_THAT(h.log[id].finishes, ElementsAre(FinishReason::kFailed));
    EXPECT_EQ(h.log[id].status.code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(h.log[id].status.message(), "stage 1 is gone");
  }
  EXPECT_EQ(h.log[1].freed, 1);
  EXPECT_EQ(h.log[2].freed, 1);
  EXPECT_EQ(h.log[3].freed, 0) << "queued, never admitted";
  EXPECT_TRUE(h.sched.idle());
  EXPECT_EQ(h.sched.inflight(), 0);
  EXPECT_EQ(h.sched.OnResult(id, tokens).code(),
            absl::StatusCode::kInvalidArgument);
  h.sched.Cancel(2);
  EXPECT_THAT(h.sched.TakeOutput().finished, IsEmpty());

  // A recovered pipeline: the next request runs as on a new scheduler.
  h.pipe.Reset();
  ASSERT_TRUE(h.sched.Submit(9, Prompt(3, 9), 4).ok());
  h.RunToIdle();
  EXPECT_EQ(h.log[9].tokens, Reference(Prompt(3, 9), 4, 64));
}

// Stages replaced mid-run, at every step of a mixed workload (prefill in
// chunks, decode, a queue, a cancellation in flight): each sequence's tokens
// are exactly those of an undisturbed run, none twice, none lost, and the
// first sample on the new chain is marked `first` (the fake checks).
TEST(SchedulerTest, RewindReplaysEverySequenceUnchanged) {
  for (int cut = 0; cut < 40; ++cut) {
    Harness h(Opts(/*n_stages=*/2, /*n_ctx=*/64, /*max_sequences=*/3,
                   /*max_batch_tokens=*/7));
    const std::vector<int> prompt_lengths = {3, 12, 20, 5, 9};
    for (uint64_t id = 1; id <= 5; ++id) {
      ASSERT_TRUE(h.sched.Submit(id, Prompt(prompt_lengths[id - 1], id), 10).ok());
    }
    for (int step = 0; step < cut; ++step) {
      h.Pump();
      if (step == 3) h.sched.Cancel(2);
      if (!h.ReturnOne()) break;
    }
    h.Pump();  // something in flight when the stages go
    h.sched.Rewind();
    h.pipe.Reset();
    h.Drain();
    h.RunToIdle();
    for (uint64_t id = 1; id <= 5; ++id) {
      const std::vector<int32_t> want =
          Reference(Prompt(prompt_lengths[id - 1], id), 10, 64);
      if (id == 2 && cut > 3) {
        // Cancelled: a prefix of the undisturbed run.
        EXPECT_THAT(h.log[id].finishes, ElementsAre(FinishReason::kCancelled));
        ASSERT_LE(h.log[id].tokens.size(), want.size());
        EXPECT_TRUE(std::equal(h.log[id].tokens.begin(), h.log[id].tokens.end(),
                               want.begin()))
            << "cut " << cut;
      } else {
        EXPECT_EQ(h.log[id].tokens, want) << "cut " << cut << " sequence " << id;
        EXPECT_THAT(h.log[id].finishes, ElementsAre(FinishReason::kLength));
      }
      EXPECT_EQ(h.log[id].freed, 1) << "cut " << cut << " sequence " << id;
    }
  }
}

// The split planned again over fewer workers: after Rewind and
// SetStages(1), one micro-batch at a time, and every sequence still equal
// to its undisturbed run.
TEST(SchedulerTest, FewerStagesAfterARewindMeansFewerMicroBatchesInFlight) {
  Harness h(Opts(/*n_stages=*/3, /*n_ctx=*/64, /*max_sequences=*/3));
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(h.sched.Submit(id, Prompt(4, id), 8).ok());
  h.Pump();
  EXPECT_EQ(h.sched.inflight(), 3);
  h.sched.Rewind();
  h.pipe.Reset();
  h.sched.SetStages(1);
  h.Drain();
  h.Pump();
  EXPECT_EQ(h.sched.inflight(), 1);
  h.RunToIdle();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(h.log[id].tokens, Reference(Prompt(4, id), 8, 64)) << "sequence " << id;
  }
}

TEST(SchedulerTest, OnResultRejectsBadResultsWithoutChangingState) {
  Harness h(Opts(/*n_stages=*/1));
  ASSERT_TRUE(h.sched.Submit(1, Prompt(3, 1), 4).ok());
  ASSERT_TRUE(h.sched.Submit(2, Prompt(3, 2), 4).ok());
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 1u);
  const uint64_t id = b[0].id;
  auto [got_id, good] = h.pipe.Pop();
  ASSERT_EQ(got_id, id);
  ASSERT_EQ(good.size(), 2u);

  const std::vector<std::pair<uint64_t, std::vector<TokenEvent>>> bad = {
      {id + 1, good},                     // unknown micro-batch
      {id, {good[0]}},                    // one missing
      {id, {good[0], good[1], good[0]}},  // one extra
      {id, {good[0], good[0]}},           // same sequence twice
      {id, {good[0], {3, 50}}},           // a sequence not in it
  };
  for (const auto& [bad_id, tokens] : bad) {
    EXPECT_EQ(h.sched.OnResult(bad_id, tokens).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(h.sched.inflight(), 1);
    EXPECT_EQ(h.sched.active(), 2);
    SchedulerOutput out = h.sched.TakeOutput();
    EXPECT_THAT(out.tokens, IsEmpty());
    EXPECT_THAT(out.finished, IsEmpty());
  }
  EXPECT_THAT(h.sched.NextBatches(), IsEmpty());
  // The right answer still goes through, then the run ends as it should.
  ASSERT_TRUE(h.sched.OnResult(id, good).ok());
  h.Drain();
  EXPECT_EQ(h.sched.OnResult(id, good).code(),
            absl::StatusCode::kInvalidArgument)
      << "a micro-batch returns once";
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens, Reference(Prompt(3, 1), 4, 64));
  EXPECT_EQ(h.log[2].tokens, Reference(Prompt(3, 2), 4, 64));
}

}  // namespace
}  // namespace layerpool
