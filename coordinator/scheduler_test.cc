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

using ::layerpool::scheduler_fake::Concat;
using ::layerpool::scheduler_fake::FakePipeline;
using ::layerpool::scheduler_fake::Harness;
using ::layerpool::scheduler_fake::HashNext;
using ::layerpool::scheduler_fake::kEos;
using ::layerpool::scheduler_fake::kOneTokenOrder;
using ::layerpool::scheduler_fake::NextFn;
using ::layerpool::scheduler_fake::Opts;
using ::layerpool::scheduler_fake::Prompt;
using ::layerpool::scheduler_fake::Reference;
using ::layerpool::scheduler_fake::SeqLog;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;


TEST(SchedulerTest, SingleSequenceTokensAndPositions) {
  Harness h(Opts());
  const std::vector<int32_t> prompt = Prompt(5, 1);
  ASSERT_TRUE(h.sched.Submit(7, prompt, 6).ok());
  EXPECT_EQ(h.sched.active(), 1);

  std::vector<MicroBatch> first = h.Pump();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, 1u);
  ASSERT_EQ(first[0].rows.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(first[0].rows[i].seq_id, 7u);
    EXPECT_EQ(first[0].rows[i].position, i);
    EXPECT_EQ(first[0].rows[i].token, prompt[i]);
  }
  ASSERT_EQ(first[0].samples.size(), 1u);
  EXPECT_EQ(first[0].samples[0].row, 4);
  EXPECT_TRUE(first[0].samples[0].first);
  EXPECT_THAT(h.sched.NextBatches(), IsEmpty()) << "one stage, one in flight";

  ASSERT_TRUE(h.ReturnOne());
  std::vector<MicroBatch> second = h.Pump();
  ASSERT_EQ(second.size(), 1u);
  ASSERT_EQ(second[0].rows.size(), 1u);
  EXPECT_EQ(second[0].rows[0].position, 5);
  EXPECT_EQ(second[0].rows[0].token, h.log[7].tokens.at(0));
  ASSERT_EQ(second[0].samples.size(), 1u);
  EXPECT_FALSE(second[0].samples[0].first);

  h.RunToIdle();
  const std::vector<int32_t> want = Reference(prompt, 6, 64);
  EXPECT_EQ(want.size(), 6u);
  EXPECT_EQ(h.log[7].tokens, want);
  EXPECT_THAT(h.log[7].finishes, ElementsAre(FinishReason::kLength));
  EXPECT_EQ(h.log[7].freed, 1);
  // Every token but the last went through the pipeline, in order.
  EXPECT_EQ(h.pipe.retired(7),
            Concat(prompt, std::vector<int32_t>(want.begin(), want.end() - 1)));
  EXPECT_EQ(h.pipe.batches(), 6);
}

TEST(SchedulerTest, LongPromptIsChunkedAndSampledOnce) {
  Harness h(Opts(/*n_stages=*/1, /*n_ctx=*/64, /*max_sequences=*/1,
                 /*max_batch_tokens=*/4));
  const std::vector<int32_t> prompt = Prompt(10, 2);
  ASSERT_TRUE(h.sched.Submit(1, prompt, 3).ok());
  std::vector<size_t> rows, samples;
  for (int i = 0; i < 3; ++i) {
    std::vector<MicroBatch> b = h.Pump();
    ASSERT_EQ(b.size(), 1u);
    rows.push_back(b[0].rows.size());
    samples.push_back(b[0].samples.size());
    EXPECT_EQ(b[0].rows.front().position, 4 * i);
    EXPECT_TRUE(h.log[1].tokens.empty()) << "no token before the last chunk";
    ASSERT_TRUE(h.ReturnOne());
  }
  EXPECT_THAT(rows, ElementsAre(4u, 4u, 2u));
  EXPECT_THAT(samples, ElementsAre(0u, 0u, 1u));
  EXPECT_EQ(h.log[1].tokens.size(), 1u);
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens, Reference(prompt, 3, 64));
}

// Prompt chunks follow each other down the pipe (one per stage), then the
// sequence waits for its sample; a cancel meanwhile frees it once, after
// its last chunk is back.
TEST(SchedulerTest, PromptChunksFillThePipe) {
  Harness h(Opts(/*n_stages=*/2, /*n_ctx=*/64, /*max_sequences=*/2,
                 /*max_batch_tokens=*/4));
  const std::vector<int32_t> prompt = Prompt(10, 4);
  ASSERT_TRUE(h.sched.Submit(1, prompt, 3).ok());
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 2u) << "two chunks in flight, one per stage";
  EXPECT_EQ(b[0].rows.front().position, 0);
  EXPECT_EQ(b[1].rows.front().position, 4);
  EXPECT_TRUE(b[0].samples.empty() && b[1].samples.empty());
  ASSERT_TRUE(h.ReturnOne());
  b = h.Pump();
  ASSERT_EQ(b.size(), 1u);
  ASSERT_EQ(b[0].rows.size(), 2u);
  ASSERT_EQ(b[0].samples.size(), 1u);
  EXPECT_THAT(h.sched.NextBatches(), IsEmpty()) << "waits for its sample";
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens, Reference(prompt, 3, 64));
  EXPECT_EQ(h.log[1].freed, 1);

  ASSERT_TRUE(h.sched.Submit(2, Prompt(12, 5), 3).ok());
  ASSERT_EQ(h.Pump().size(), 2u);
  h.sched.Cancel(2);
  h.Drain();
  EXPECT_EQ(h.log[2].freed, 0) << "two chunks still in flight";
  ASSERT_TRUE(h.ReturnOne());
  EXPECT_EQ(h.log[2].freed, 0) << "one chunk still in flight";
  ASSERT_TRUE(h.ReturnOne());
  EXPECT_EQ(h.log[2].freed, 1);
  EXPECT_THAT(h.log[2].finishes, ElementsAre(FinishReason::kCancelled));
  EXPECT_TRUE(h.log[2].tokens.empty());
  EXPECT_TRUE(h.sched.idle());
}

TEST(SchedulerTest, TwoStagesPipelineDifferentSequences) {
  Harness h(Opts(/*n_stages=*/2));
  ASSERT_TRUE(h.sched.Submit(1, Prompt(3, 1), 4).ok());
  ASSERT_TRUE(h.sched.Submit(2, Prompt(4, 2), 4).ok());
  auto only_seq = [](const MicroBatch& b) {
    std::set<uint64_t> seqs;
    for (const BatchRow& r : b.rows) seqs.insert(r.seq_id);
    EXPECT_EQ(seqs.size(), 1u) << "one sequence per micro-batch";
    return *seqs.begin();
  };
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 2u) << "both stages busy";
  EXPECT_EQ(h.sched.inflight(), 2);
  std::deque<uint64_t> in_flight = {only_seq(b[0]), only_seq(b[1])};
  EXPECT_NE(in_flight[0], in_flight[1]);
  EXPECT_THAT(h.sched.NextBatches(), IsEmpty()) << "max_inflight reached";
  for (int step = 0; step < 3; ++step) {
    // One comes back; its sequence goes again while the other is in flight.
    ASSERT_TRUE(h.ReturnOne());
    EXPECT_EQ(h.sched.inflight(), 1);
    const uint64_t back = in_flight.front();
    in_flight.pop_front();
    b = h.Pump();
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(only_seq(b[0]), back);
    EXPECT_EQ(h.sched.inflight(), 2);
    in_flight.push_back(back);
  }
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens, Reference(Prompt(3, 1), 4, 64));
  EXPECT_EQ(h.log[2].tokens, Reference(Prompt(4, 2), 4, 64));
}

TEST(SchedulerTest, BatchCapIsLiveOverMaxInflightRoundedUp) {
  // 5 live sequences over 2 micro-batches: ceil(5 / 2) = 3 per batch.
  Harness h(Opts(/*n_stages=*/2, /*n_ctx=*/64, /*max_sequences=*/5));
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(h.sched.Submit(id, Prompt(2, id), 3).ok());
  }
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].samples.size(), 3u);
  EXPECT_EQ(b[1].samples.size(), 2u);
  h.RunToIdle();

  // max_inflight overrides n_stages.
  SchedulerOptions o = Opts(/*n_stages=*/4);
  o.max_inflight = 1;
  Harness one(o);
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(one.sched.Submit(id, Prompt(2, id), 3).ok());
  }
  b = one.Pump();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].samples.size(), 3u);
  one.RunToIdle();
}

TEST(SchedulerTest, MicroBatchesFollowMeasuredCosts) {
  // Flat step costs: one micro-batch carries every decoding sequence
  // through both stages, and each waits for the others to come back.
  Harness flat(Opts(/*n_stages=*/2));
  flat.sched.SetMicroBatchesByLive({0, 1, 1, 1, 1});
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(flat.sched.Submit(id, Prompt(2, id), 5).ok());
  }
  for (int step = 0; step < 100; ++step) {
    const std::vector<MicroBatch> sent = flat.Pump();
    EXPECT_LE(flat.sched.inflight(), 1);
    for (const MicroBatch& b : sent) {
      if (flat.log[1].tokens.size() < 5) {
        EXPECT_EQ(b.samples.size(), 3u);
      }
    }
    if (!flat.ReturnOne()) break;
  }
  EXPECT_TRUE(flat.sched.idle());
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(flat.log[id].tokens, Reference(Prompt(2, id), 5, 64));
  }

  // A long turnaround: three micro-batches through two stages.
  Harness wide(Opts(/*n_stages=*/2));
  wide.sched.SetMicroBatchesByLive({0, 1, 2, 3});
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(wide.sched.Submit(id, Prompt(2, id), 5).ok());
  }
  EXPECT_EQ(wide.Pump().size(), 3u);
  wide.RunToIdle();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(wide.log[id].tokens, Reference(Prompt(2, id), 5, 64));
  }

  // A prompt's chunks still fill both stages when the table says one.
  Harness chunks(Opts(/*n_stages=*/2, /*n_ctx=*/64, /*max_sequences=*/4,
                      /*max_batch_tokens=*/4));
  chunks.sched.SetMicroBatchesByLive({0, 1});
  ASSERT_TRUE(chunks.sched.Submit(1, Prompt(12, 1), 3).ok());
  EXPECT_EQ(chunks.Pump().size(), 2u);
  chunks.RunToIdle();
  EXPECT_EQ(chunks.log[1].tokens, Reference(Prompt(12, 1), 3, 64));

  // New stages drop the old stages' table: one micro-batch per stage.
  Harness replanned(Opts(/*n_stages=*/2));
  replanned.sched.SetMicroBatchesByLive({0, 1, 1, 1});
  replanned.sched.SetStages(3);
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(replanned.sched.Submit(id, Prompt(2, id), 5).ok());
  }
  EXPECT_EQ(replanned.Pump().size(), 3u);
  replanned.RunToIdle();
}

TEST(SchedulerTest, ConcurrentRequestsMatchRunningAlone) {
  SchedulerOptions o = Opts(/*n_stages=*/3, /*n_ctx=*/48, /*max_sequences=*/4,
                            /*max_batch_tokens=*/8);
  o.max_queue = 8;
  struct Req {
    std::vector<int32_t> prompt;
    int64_t n_predict;
  };
  std::vector<Req> reqs;
  for (int i = 0; i < 8; ++i) {
    reqs.push_back({Prompt(1 + (i * 5) % 13, i), i == 3 ? 0 : 3 + i % 5});
  }
  std::map<uint64_t, std::vector<int32_t>> alone;
  for (int i = 0; i < 8; ++i) {
    Harness h(o);
    ASSERT_TRUE(
        h.sched.Submit(100 + i, reqs[i].prompt, reqs[i].n_predict).ok());
    h.RunToIdle();
    alone[100 + i] = h.log[100 + i].tokens;
    EXPECT_EQ(alone[100 + i], Reference(reqs[i].prompt, reqs[i].n_predict, 48));
  }
  for (uint32_t seed : {1u, 2u, 3u}) {
    Harness h(o);
    std::mt19937 rng(seed);
    size_t submitted = 0;
    for (int step = 0; step < 10000 && (submitted < 8 || !h.sched.idle());
         ++step) {
      if (submitted < 8 && rng() % 3 == 0) {
        ASSERT_TRUE(h.sched
                        .Submit(100 + submitted, reqs[submitted].prompt,
                                reqs[submitted].n_predict)
                        .ok());
        ++submitted;
      }
      h.Pump();
      // FIFO, or any micro-batch in flight (seed 3).
      if (!h.pipe.empty()) {
        h.ReturnOne(seed == 3 ? rng() % h.pipe.size() : 0);
      }
    }
    EXPECT_TRUE(h.sched.idle());
    for (int i = 0; i < 8; ++i) {
      const SeqLog& l = h.log[100 + i];
      EXPECT_EQ(l.tokens, alone[100 + i]) << "seed " << seed << " seq " << i;
      EXPECT_EQ(l.finishes.size(), 1u);
      EXPECT_EQ(l.freed, 1);
    }
  }
}

TEST(SchedulerTest, DecodeIsNotStarvedByPrefill) {
  // Budget 4 rows: a 40-token prompt would fill every micro-batch.
  Harness h(Opts(/*n_stages=*/1, /*n_ctx=*/64, /*max_sequences=*/4,
                 /*max_batch_tokens=*/4));
  ASSERT_TRUE(h.sched.Submit(1, Prompt(2, 1), 20).ok());
  h.Pump();
  h.ReturnOne();
  ASSERT_TRUE(h.sched.Submit(2, Prompt(40, 2), 2).ok());
  ASSERT_TRUE(h.sched.Submit(3, Prompt(40, 3), 2).ok());
  int since_decode = 0;
  for (int i = 0; i < 15; ++i) {
    std::vector<MicroBatch> b = h.Pump();
    ASSERT_EQ(b.size(), 1u);
    std::set<uint64_t> seqs;
    for (const BatchRow& r : b[0].rows) seqs.insert(r.seq_id);
    since_decode = seqs.count(1) ? 0 : since_decode + 1;
    EXPECT_LE(since_decode, 2) << "micro-batch " << b[0].id;
    h.ReturnOne();
  }
  h.RunToIdle();
  EXPECT_EQ(h.log[2].tokens, Reference(Prompt(40, 2), 2, 64));
  EXPECT_EQ(h.log[3].tokens, Reference(Prompt(40, 3), 2, 64));
}

TEST(SchedulerTest, AdmissionLimitsActiveAndQueuesInOrder) {
  SchedulerOptions o = Opts(/*n_stages=*/1, /*n_ctx=*/64, /*max_sequences=*/2);
  o.max_queue = 2;
  Harness h(o);
  for (uint64_t id = 1; id <= 4; ++id) {
    ASSERT_TRUE(h.sched.Submit(id, Prompt(2, id), id == 1 ? 1 : 5).ok());
  }
  EXPECT_EQ(h.sched.active(), 2);
  EXPECT_EQ(h.sched.queued(), 2);
  absl::Status full = h.sched.Submit(5, Prompt(2, 5), 1);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);

  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_THAT(b[0].samples, testing::SizeIs(2));
  h.ReturnOne();  // sequence 1 is done: 3 takes its slot, not 4.
  EXPECT_THAT(h.log[1].finishes, ElementsAre(FinishReason::kLength));
  EXPECT_EQ(h.sched.active(), 2);
  EXPECT_EQ(h.sched.queued(), 1);
  b = h.Pump();
  std::set<uint64_t> seqs;
  for (const BatchSample& s : b[0].samples) seqs.insert(s.seq_id);
  EXPECT_THAT(seqs, UnorderedElementsAre(2u, 3u));
  // There is room in the queue again.
  EXPECT_TRUE(h.sched.Submit(5, Prompt(2, 5), 1).ok());
  h.RunToIdle();
  for (uint64_t id = 1; id <= 5; ++id) {
    EXPECT_EQ(h.log[id].tokens,
              Reference(Prompt(2, id), id == 1 || id == 5 ? 1 : 5, 64));
    EXPECT_EQ(h.log[id].freed, 1);
  }
}

TEST(SchedulerTest, SubmitValidation) {
  Harness h(Opts(/*n_stages=*/1, /*n_ctx=*/8, /*max_sequences=*/1));
  EXPECT_EQ(h.sched.Submit(1, {}, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.sched.Submit(1, Prompt(8, 1), 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.sched.Submit(1, Prompt(9, 1), 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.sched.Submit(1, Prompt(5, 1), 4).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.sched.Submit(1, Prompt(5, 1), std::numeric_limits<int64_t>::max())
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(h.sched.idle());

  ASSERT_TRUE(h.sched.Submit(1, Prompt(5, 1), 3).ok());  // exactly n_ctx
  ASSERT_TRUE(h.sched.Submit(2, Prompt(7, 2), 0).ok());  // queued
  EXPECT_EQ(h.sched.Submit(1, Prompt(2, 1), 1).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(h.sched.Submit(2, Prompt(2, 1), 1).code(),
            absl::StatusCode::kAlreadyExists);
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens.size(), 3u);
  EXPECT_THAT(h.log[1].finishes, ElementsAre(FinishReason::kLength));
  // Done and freed: the id can be used again.
  EXPECT_TRUE(h.sched.Submit(1, Prompt(2, 1), 1).ok());

  Harness tiny(Opts(/*n_stages=*/1, /*n_ctx=*/1));
  EXPECT_EQ(tiny.sched.Submit(1, Prompt(1, 1), 0).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SchedulerTest, StopTokenEndsWithoutEmitting) {
  // Stops after 3 generated tokens, or at once for sequence prompts of 1.
  const NextFn next = [](const std::vector<int32_t>& hist) {
    return hist.size() == 1 || hist.size() == 7 ? kEos : HashNext(hist);
  };
  Harness h(Opts(/*n_stages=*/2), next);
  ASSERT_TRUE(h.sched.Submit(1, Prompt(4, 1), 10).ok());
  ASSERT_TRUE(h.sched.Submit(2, Prompt(1, 2), 10).ok());
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens, Reference(Prompt(4, 1), 10, 64, next));
  EXPECT_EQ(h.log[1].tokens.size(), 3u);
  EXPECT_THAT(h.log[1].finishes, ElementsAre(FinishReason::kStopToken));
  EXPECT_THAT(h.log[2].tokens, IsEmpty());
  EXPECT_THAT(h.log[2].finishes, ElementsAre(FinishReason::kStopToken));
  EXPECT_EQ(h.log[2].freed, 1);
  // The stop token never went through the pipeline.
  EXPECT_EQ(h.pipe.retired(1), Concat(Prompt(4, 1), h.log[1].tokens));
}

TEST(SchedulerTest, NPredictAndContextFull) {
  Harness h(Opts(/*n_stages=*/1, /*n_ctx=*/10));
  ASSERT_TRUE(h.sched.Submit(1, Prompt(4, 1), 2).ok());
  ASSERT_TRUE(h.sched.Submit(2, Prompt(4, 2), 0).ok());   // until full
  ASSERT_TRUE(h.sched.Submit(3, Prompt(4, 3), -1).ok());  // until full
  ASSERT_TRUE(h.sched.Submit(4, Prompt(4, 4), 6).ok());   // both at once
  ASSERT_TRUE(h.sched.Submit(5, Prompt(9, 5), 0).ok());   // one token fits
  h.RunToIdle();
  EXPECT_EQ(h.log[1].tokens.size(), 2u);
  EXPECT_THAT(h.log[1].finishes, ElementsAre(FinishReason::kLength));
  for (uint64_t id : {2, 3}) {
    EXPECT_EQ(h.log[id].tokens, Reference(Prompt(4, id), 0, 10));
    EXPECT_EQ(h.log[id].tokens.size(), 6u) << "prompt + generated = n_ctx";
    EXPECT_THAT(h.log[id].finishes, ElementsAre(FinishReason::kContextFull));
    EXPECT_EQ(h.pipe.retired(id).size(), 9u);
  }
  EXPECT_THAT(h.log[4].finishes, ElementsAre(FinishReason::kLength));
  EXPECT_EQ(h.log[5].tokens.size(), 1u);
  EXPECT_THAT(h.log[5].finishes, ElementsAre(FinishReason::kContextFull));
  EXPECT_EQ(h.pipe.max_position(), 8) << "positions stay below n_ctx - 1";
}

TEST(SchedulerTest, OptionsOutOfRangeAreClamped) {
  SchedulerOptions o = Opts(/*n_stages=*/0, /*n_ctx=*/16, /*max_sequences=*/0,
                            /*max_batch_tokens=*/0);
  o.max_inflight = -3;
  o.max_queue = -1;
  Harness h(o);
  ASSERT_TRUE(h.sched.Submit(1, Prompt(3, 1), 2).ok());
  EXPECT_EQ(h.sched.Submit(2, Prompt(3, 2), 2).code(),
            absl::StatusCode::kResourceExhausted);
  std::vector<MicroBatch> b = h.Pump();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].rows.size(), 1u);
  h.RunToIdle();
  // One row per micro-batch: every row, the prompt's too, in one-token
  // order (the one case where a prompt's rows cannot travel together).
  std::vector<int32_t> seen;
  for (int32_t t : Prompt(3, 1)) seen.push_back(t + kOneTokenOrder);
  std::vector<int32_t> want;
  for (int i = 0; i < 2; ++i) {
    want.push_back(HashNext(seen));
    seen.push_back(want.back() + kOneTokenOrder);
  }
  EXPECT_EQ(h.log[1].tokens, want);
}

}  // namespace
}  // namespace layerpool
