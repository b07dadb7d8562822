// The worker service's data plane: activation streams through two stages
// over gRPC and the Unix socket, their tokens against one in-process Stage,
// and what malformed or damaged chunks do (fixture in
// service_test_support.h).
#include "worker/service.h"

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transport/unix_chunk_stream.h"
#include "worker/service_test_support.h"

namespace layerpool::service_test {
namespace {

using ::testing::HasSubstr;

TEST_F(WorkerServiceTest, TwoStagesGiveTheOneStageGreedyTokens) {
  std::string link;
  StartPipeline(v1::ELEMENT_TYPE_F32, v1::TRANSPORT_GRPC, &link);
  EXPECT_EQ(link, "grpc");
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_READY);
  const std::vector<int32_t> tokens = Generate(16);
  EXPECT_EQ(tokens, ReferenceTokens(16));

  v1::StatsResponse stats;
  grpc::ClientContext context;
  ASSERT_TRUE(back_.stub->Stats(&context, {}, &stats).ok());
  EXPECT_EQ(stats.tokens_processed(), kPrompt.size() + 15);
  EXPECT_EQ(stats.active_sequences(), 1u);
  EXPECT_EQ(stats.kv_cells_used(), kPrompt.size() + 15);
  EXPECT_EQ(stats.kv_cells_total(), 2u * kCtx);
  EXPECT_EQ(stats.compute_latency().count(), 16u);
  // Stage 1 acks after it queued the result: the last hop may still be on
  // its way to stage 0. Each Stats call starts a new window.
  uint64_t hops = 0;
  for (int i = 0; i < 500 && hops < 16; ++i) {
    grpc::ClientContext front_context;
    ASSERT_TRUE(front_.stub->Stats(&front_context, {}, &stats).ok());
    if (i == 0) {
      EXPECT_GT(stats.busy_fraction(), 0);
    }
    hops += stats.hop_latency().count();
    if (hops < 16) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(hops, 16u);

  v1::FreeSequenceRequest free;
  free.add_seq_ids(42);
  free.add_seq_ids(43);
  v1::FreeSequenceResponse freed;
  grpc::ClientContext free_context;
  ASSERT_TRUE(back_.stub->FreeSequence(&free_context, free, &freed).ok());
  EXPECT_EQ(freed.freed(), 1u);
}

// Two stages on one host, asked for TRANSPORT_AUTO, pass hidden states
// over the next worker's Unix socket, with the same tokens and hops.
TEST_F(WorkerServiceTest, StagesOnOneHostTakeTheUnixSocket) {
  std::string link;
  StartPipeline(v1::ELEMENT_TYPE_F32, v1::TRANSPORT_AUTO, &link);
  EXPECT_EQ(link, "unix socket");
  EXPECT_EQ(Generate(16), ReferenceTokens(16));
  uint64_t hops = 0;
  for (int i = 0; i < 500 && hops < 16; ++i) {
    v1::StatsResponse stats;
    grpc::ClientContext context;
    ASSERT_TRUE(front_.stub->Stats(&context, {}, &stats).ok());
    hops += stats.hop_latency().count();
    if (hops < 16) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(hops, 16u);
}

// The last stage's results to a coordinator on its host go over its Unix
// socket, the same tokens as over Results; a second subscription there
// replaces the first, as over gRPC.
TEST_F(WorkerServiceTest, ResultsTakeTheUnixSocketToo) {
  StartPipeline(v1::ELEMENT_TYPE_F32, v1::TRANSPORT_AUTO);
  v1::HelloRequest hello;
  *hello.mutable_protocol_version() = CurrentProtocolVersion();
  v1::HelloResponse worker;
  grpc::ClientContext context;
  ASSERT_TRUE(back_.stub->Hello(&context, hello, &worker).ok());
  ASSERT_FALSE(worker.unix_socket().empty());
  for (int run = 0; run < 2; ++run) {
    auto results = UnixResultSource::Connect(worker.unix_socket(), "", "", absl::Seconds(5));
    ASSERT_TRUE(results.ok()) << results.status();
    EXPECT_EQ(Generate(16, Greedy(), *std::move(results)), ReferenceTokens(16)) << "run " << run;
    EXPECT_EQ(FreeEverywhere(42), 2u);
  }
  // The front stage holds layers [0, 1]: it has no results to give.
  auto wrong = UnixResultSource::Connect(
      [&] {
        v1::HelloResponse front;
        grpc::ClientContext c;
        EXPECT_TRUE(front_.stub->Hello(&c, hello, &front).ok());
        return front.unix_socket();
      }(),
      "", "", absl::Seconds(5));
  ASSERT_TRUE(wrong.ok()) << wrong.status();
  v1::StepResult result;
  EXPECT_FALSE((*wrong)->Read(&result));
  EXPECT_TRUE(absl::IsFailedPrecondition((*wrong)->Finish())) << (*wrong)->Finish();
}

// f16 on the wire rounds the hidden states, so tokens may differ from the
// reference; the pipeline must still run.
TEST_F(WorkerServiceTest, F16ActivationsRun) {
  StartPipeline(v1::ELEMENT_TYPE_F16);
  EXPECT_EQ(Generate(16).size(), 16u);
}

// Every malformed chunk ends the stream with InvalidArgument naming the
// stage and the field; the next stream works.
TEST_F(WorkerServiceTest, MalformedChunksEndTheStreamNotTheWorker) {
  ASSERT_TRUE(front_.Load(0, 1, 0).ok());
  ASSERT_TRUE(back_.Load(2, 4, 1).ok());
  ASSERT_TRUE(back_.Connect("").ok());

  {
    Upstream up(front_);
    up.Send(TokenChunk(1, 7, 0, {1, 600}), false);
    grpc::Status status = up.End();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("stage 0: micro-batch 1 chunk 0: token_ids[1] = 600 "
                          "is outside the vocabulary [0, 512)"));
  }
  struct Case {
    std::vector<v1::ActivationChunk> chunks;
    const char* message;
  };
  const Case cases[] = {
      {{HiddenChunk(1, 7, 0, 32)}, "hidden.hidden_size is 32"},
      {{HiddenChunk(1, 7, 3)},
       "sequence 7 is not held here and starts at position 3"},
      {{HiddenChunk(1, 7, 0), HiddenChunk(2, 7, 2)},
       "continues at position 2, expected 1"},
      {{HiddenChunk(1, 7, 0), HiddenChunk(2, 8, 0), HiddenChunk(3, 9, 0)},
       "max_sequences of 2"},
  };
  for (const Case& c : cases) {
    Upstream up(back_);
    for (size_t i = 0; i + 1 < c.chunks.size(); ++i) {
      EXPECT_TRUE(up.Send(c.chunks[i]));
    }
    up.Send(c.chunks.back(), false);
    grpc::Status status = up.End();
    EXPECT_NE(status.error_code(), grpc::StatusCode::OK) << c.message;
    EXPECT_THAT(status.error_message(), HasSubstr("stage 1: "));
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
    v1::FreeSequenceRequest free;
    for (uint64_t id : {7, 8, 9}) free.add_seq_ids(id);
    v1::FreeSequenceResponse freed;
    grpc::ClientContext context;
    ASSERT_TRUE(back_.stub->FreeSequence(&context, free, &freed).ok());
  }

  // Still serving: a good stream runs.
  Upstream up(back_);
  EXPECT_TRUE(up.Send(HiddenChunk(1, 7, 0)));
  EXPECT_TRUE(up.End().ok());
  EXPECT_EQ(back_.Health().state(), v1::STAGE_STATE_READY);
}

// Randomly damaged chunks, on both kinds of stage: each stream ends or
// goes on, the worker never crashes or hangs, and serves afterwards.
TEST_F(WorkerServiceTest, SurvivesRandomlyDamagedChunks) {
  ASSERT_TRUE(front_.Load(0, 1, 0).ok());
  ASSERT_TRUE(back_.Load(2, 4, 1).ok());
  ASSERT_TRUE(back_.Connect("").ok());
  std::mt19937 rng(1234);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto damage = [&](v1::ActivationChunk& c) {
    switch (pick(10)) {
      case 0:
        c.set_chunk_count(rng());
        break;
      case 1:
        c.set_chunk_index(pick(3));
        break;
      case 2:
        c.set_micro_batch_id(pick(4));
        break;
      case 3:
        c.add_positions(static_cast<int32_t>(rng()));
        break;
      case 4:
        c.set_positions(0, static_cast<int32_t>(rng() % 100) - 50);
        break;
      case 5:
        c.set_seq_ids(0, pick(5));
        break;
      case 6:
        if (c.has_hidden()) {
          c.mutable_hidden()->mutable_data()->resize(rng() % 600);
        } else {
          c.mutable_token_ids()->set_ids(0, static_cast<int32_t>(rng()));
        }
        break;
      case 7:
        c.add_samples()->set_row(pick(4));
        break;
      case 8:
        if (c.samples_size() > 0) {
          c.mutable_samples(0)->mutable_sampling()->set_top_k(
              static_cast<int32_t>(rng()));
          c.mutable_samples(0)->mutable_sampling()->set_n_probs(pick(2000));
        }
        break;
      default:
        break;  // left intact
    }
  };
  for (int round = 0; round < 40; ++round) {
    Worker& target = round % 2 == 0 ? front_ : back_;
    Upstream up(target);
    for (int i = 0; i < 8; ++i) {
      v1::ActivationChunk chunk =
          round % 2 == 0 ? TokenChunk(i + 1, pick(3), pick(3), {1, 2})
                         : HiddenChunk(i + 1, pick(3), pick(3));
      damage(chunk);
      if (!up.stream->Write(chunk)) break;
    }
    up.End();
  }
  for (Worker* w : {&front_, &back_}) {
    v1::FreeSequenceRequest free;
    for (uint64_t id = 0; id < 5; ++id) free.add_seq_ids(id);
    v1::FreeSequenceResponse freed;
    grpc::ClientContext context;
    ASSERT_TRUE(w->stub->FreeSequence(&context, free, &freed).ok());
  }
  Upstream up(back_);
  EXPECT_TRUE(up.Send(HiddenChunk(1, 7, 0)));
  EXPECT_TRUE(up.End().ok());
}

// A malformed chunk that the first stage passes on is refused by the next
// one; the first reports it on its next micro-batch and in Health.
// Over either transport between the stages.
class DownstreamErrorsTest : public WorkerServiceTest,
                             public ::testing::WithParamInterface<v1::Transport> {};

TEST_P(DownstreamErrorsTest, ReachTheUpstream) {
  StartPipeline(v1::ELEMENT_TYPE_F32, GetParam());
  Upstream up(front_);
  // Sequence 5 starts at position 0 on stage 0; drop it on stage 1 only, so
  // its next row is unknown there.
  ASSERT_TRUE(up.Send(TokenChunk(1, 5, 0, {1}, false)));
  // Stage 0's ack means sent on, not computed by stage 1: wait for that.
  for (int i = 0; i < 500; ++i) {
    v1::StatsResponse stats;
    grpc::ClientContext context;
    ASSERT_TRUE(back_.stub->Stats(&context, {}, &stats).ok());
    if (stats.tokens_processed() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  v1::FreeSequenceRequest free;
  free.add_seq_ids(5);
  v1::FreeSequenceResponse freed;
  grpc::ClientContext context;
  ASSERT_TRUE(back_.stub->FreeSequence(&context, free, &freed).ok());
  EXPECT_EQ(freed.freed(), 1u);
  up.Send(TokenChunk(2, 5, 1, {2}, false));
  // Stage 1 fails asynchronously; the next micro-batch meets the error.
  for (int i = 0; i < 200 && front_.Health().state() != v1::STAGE_STATE_DOWN;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_DOWN);
  EXPECT_THAT(front_.Health().message(), HasSubstr("is not held here"));
  up.Send(TokenChunk(3, 6, 0, {1}, false), false);
  grpc::Status status = up.End();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(),
              HasSubstr("stage 0: next stage 1 at " + back_.address +
                        ": stage 1: micro-batch 2"));
}

INSTANTIATE_TEST_SUITE_P(Transports, DownstreamErrorsTest,
                         ::testing::Values(v1::TRANSPORT_GRPC, v1::TRANSPORT_AUTO));

}  // namespace
}  // namespace layerpool::service_test
