// The worker service's control plane: Hello, LoadStage, ConnectDownstream,
// FreeSequence and the sampler's lifetime (fixture in
// service_test_support.h).
#include "worker/service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/peer_token.h"
#include "worker/service_test_support.h"

namespace layerpool::service_test {
namespace {

using ::testing::HasSubstr;

TEST_F(WorkerServiceTest, HelloDescribesTheWorker) {
  v1::HelloRequest request;
  *request.mutable_protocol_version() = CurrentProtocolVersion();
  v1::HelloResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(front_.stub->Hello(&context, request, &response).ok());
  EXPECT_EQ(response.protocol_version().major(), 1u);
  EXPECT_THAT(response.device(), HasSubstr("CPU: 1 thread, "));
  EXPECT_EQ(response.max_message_bytes(), 64u << 20);
  EXPECT_EQ(response.max_inflight_chunks(), 8u);
  EXPECT_GT(response.total_memory_bytes(), 0u);
  EXPECT_THAT(response.capabilities(), ::testing::Contains("f16-activations"));
  EXPECT_THAT(response.unix_socket(), ::testing::StartsWith("layerpool-"));

  request.mutable_protocol_version()->set_major(2);
  grpc::ClientContext other;
  EXPECT_EQ(front_.stub->Hello(&other, request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// A seeded sampler on the last stage replays: the same seed, the same
// tokens (the sequence's sampler is dropped with it by FreeSequence).
TEST_F(WorkerServiceTest, SeededSamplingReplays) {
  StartPipeline(v1::ELEMENT_TYPE_F32);
  v1::SamplingParams sampling;
  sampling.set_temperature(1.0f);
  sampling.set_seed(7);
  sampling.set_n_probs(3);
  const std::vector<int32_t> first = Generate(12, sampling);
  EXPECT_EQ(first.size(), 12u);
  EXPECT_EQ(FreeEverywhere(42), 2u);
  EXPECT_EQ(Generate(12, sampling), first);
}

// A sequence replayed on a new chain (the coordinator lost a stage) is sent
// as one prefill of its prompt and the tokens it had, with the random
// outputs its last sampler had used: the seeded run continues unchanged.
TEST_F(WorkerServiceTest, ReplayedSequenceDrawsWhatItWouldHave) {
  StartPipeline(v1::ELEMENT_TYPE_F32);
  v1::SamplingParams sampling;
  sampling.set_temperature(1.0f);
  sampling.set_seed(11);
  sampling.set_repeat_penalty(1.2f);
  sampling.set_n_probs(1);
  const std::vector<int32_t> run = Generate(10, sampling);
  ASSERT_EQ(run.size(), 10u);
  FreeEverywhere(42);

  grpc::ClientContext results_context;
  results_context.set_deadline(Deadline());
  auto results = back_.stub->Results(&results_context, {});
  Upstream up(front_);
  uint64_t batch = 100;
  // Sequence 50 runs the first 6 steps, sequence 51 replays them at once.
  std::vector<int32_t> input = kPrompt;
  int32_t pos = 0;
  uint64_t used = 0;
  for (int step = 0; step < 6; ++step) {
    ASSERT_TRUE(up.Send(TokenChunk(++batch, 50, pos, input, true, sampling)));
    pos += static_cast<int32_t>(input.size());
    v1::StepResult result;
    ASSERT_TRUE(results->Read(&result));
    ASSERT_EQ(result.tokens(0).token(), run[step]);
    used = result.tokens(0).random_used();
    input = {run[step]};
  }
  EXPECT_GT(used, 0u);
  std::vector<int32_t> replay = kPrompt;
  replay.insert(replay.end(), run.begin(), run.begin() + 6);
  v1::ActivationChunk chunk = TokenChunk(++batch, 51, 0, replay, true, sampling);
  chunk.mutable_samples(0)->set_skip_random(used);
  ASSERT_TRUE(up.Send(chunk));
  v1::StepResult result;
  ASSERT_TRUE(results->Read(&result));
  EXPECT_EQ(result.tokens(0).token(), run[6]);
  EXPECT_TRUE(up.End().ok());
  results_context.TryCancel();
}

// LoadStage with the request the stage was loaded from keeps it (no second
// load) but drops its sequences and links, as a fresh load would; the
// pipeline reconnects and runs as before. Any other request loads anew.
TEST_F(WorkerServiceTest, TheSameLoadStageKeepsTheStage) {
  StartPipeline(v1::ELEMENT_TYPE_F32);
  ASSERT_EQ(Generate(4).size(), 4u);
  v1::LoadStageResponse first, again;
  ASSERT_TRUE(back_.Load(2, 4, 1, &first).ok());
  EXPECT_TRUE(first.reused());
  ASSERT_TRUE(front_.Load(0, 1, 0, &again).ok());
  EXPECT_TRUE(again.reused());
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_READY);
  EXPECT_EQ(FreeEverywhere(42), 0u) << "a kept stage still held sequence 42";
  ASSERT_TRUE(back_.Connect("").ok());
  ASSERT_TRUE(front_.Connect(back_.address).ok());
  EXPECT_EQ(Generate(16), ReferenceTokens(16));

  v1::LoadStageResponse other;
  ASSERT_TRUE(front_.Load(0, 1, 0, &other, again.content_hash()).ok());
  EXPECT_FALSE(other.reused());
}

// A worker serves one coordinator (worker.proto, "Lease"): its id reaches
// the next stage with the activations, another coordinator is refused
// where it would change anything, and Release hands the worker over.
TEST_F(WorkerServiceTest, ALeasedWorkerServesItsCoordinatorOnly) {
  const std::string a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  const std::string b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
  front_.coordinator = back_.coordinator = a;
  for (v1::Transport transport : {v1::TRANSPORT_GRPC, v1::TRANSPORT_AUTO}) {
    StartPipeline(v1::ELEMENT_TYPE_F32, transport);
    // The back stage refuses a stream that does not carry A's id.
    EXPECT_EQ(Generate(8), ReferenceTokens(8)) << "transport " << transport;
  }

  for (const std::string& other : {b, std::string()}) {
    SCOPED_TRACE(other.empty() ? "no lease id" : "coordinator B");
    front_.coordinator = other;
    const grpc::Status load = front_.Load(0, 1, 0);
    EXPECT_EQ(load.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(load.error_message(), HasSubstr("serves another coordinator (aaaaaaaa"));
    EXPECT_EQ(front_.Connect(back_.address).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    Upstream up(front_);
    (void)up.Send(TokenChunk(1, 7, 0, kPrompt), /*expect_ack=*/false);
    EXPECT_EQ(up.End().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_READY) << "Health answers anyone";
  }

  auto release = [this](const std::string& id) {
    grpc::ClientContext context;
    AddCoordinatorId(&context, id);
    v1::ReleaseResponse response;
    EXPECT_TRUE(front_.stub->Release(&context, {}, &response).ok());
    return response.released();
  };
  EXPECT_FALSE(release(b)) << "only the holder releases";
  EXPECT_TRUE(release(a));
  front_.coordinator = b;
  v1::LoadStageResponse loaded;
  ASSERT_TRUE(front_.Load(0, 1, 0, &loaded).ok());
  EXPECT_TRUE(loaded.reused()) << "B takes over the stage A left loaded";
}

TEST_F(WorkerServiceTest, LoadStageChecksTheFileAndTheRequest) {
  v1::LoadStageResponse loaded;
  grpc::Status status =
      front_.Load(0, 1, 0, &loaded, "sha256:" + std::string(64, '0'));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              HasSubstr("differs from the coordinator's for layers [0, 1]"));
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_UNSPECIFIED);
  EXPECT_THAT(front_.Health().message(), HasSubstr("differs"));

  v1::LoadStageRequest request;
  request.set_model_path(ModelPath());
  request.mutable_layers()->set_first(3);
  request.mutable_layers()->set_last(5);
  request.set_n_ctx(kCtx);
  request.set_max_sequences(1);
  request.set_kv_type(v1::KV_CACHE_TYPE_F16);
  status = front_.Load(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("outside the 5 layers"));
  request.mutable_layers()->set_last(4);
  request.set_kv_type(v1::KV_CACHE_TYPE_UNSPECIFIED);
  EXPECT_THAT(front_.Load(request).error_message(), HasSubstr("kv_type"));
  request.set_kv_type(v1::KV_CACHE_TYPE_F16);
  request.set_n_ctx(0);
  EXPECT_THAT(front_.Load(request).error_message(), HasSubstr("n_ctx"));
  request.set_n_ctx(kCtx);
  request.set_model_path("/nonexistent/model.gguf");
  status = front_.Load(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("/nonexistent/model.gguf"));

  // Step costs are timed on request: 1, 2 and 3 rows here, at most 64.
  request.set_model_path(ModelPath());
  request.set_measure_step_rows(65);
  EXPECT_THAT(front_.Load(request).error_message(),
              HasSubstr("measure_step_rows must be at most 64"));
  request.set_measure_step_rows(3);
  v1::LoadStageResponse timed;
  ASSERT_TRUE(front_.Load(request, &timed).ok());
  ASSERT_EQ(timed.step_costs_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(timed.step_costs(i).rows(), static_cast<uint32_t>(i + 1));
    EXPECT_GT(timed.step_costs(i).ms(), 0);
  }
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_READY);

  // The right hash is accepted.
  ASSERT_TRUE(back_.Load(0, 1, 0, &loaded).ok());
  EXPECT_TRUE(front_.Load(0, 1, 0, nullptr, loaded.content_hash()).ok());
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_READY);
}

// A peer that opens stream after stream holds one: a newer Results
// subscription (like a newer upstream Activations stream) ends the older
// one, so 90 concurrent calls over three connections leave one open and the
// worker answering. (Past that, the server's thread quota, kMaxWorkerThreads,
// refuses calls with RESOURCE_EXHAUSTED.)
TEST(WorkerServiceLimitsTest, APeerHoldsOneResultsStreamHoweverManyItOpens) {
  Worker w;
  ASSERT_TRUE(w.server);
  constexpr int kChannels = 3, kPerChannel = 30;
  std::vector<std::unique_ptr<v1::Worker::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // a connection each
    stubs.push_back(v1::Worker::NewStub(
        grpc::CreateCustomChannel(w.address, grpc::InsecureChannelCredentials(), args)));
  }
  std::vector<grpc::StatusCode> codes(kChannels * kPerChannel);
  std::vector<std::thread> calls;
  for (int i = 0; i < kChannels * kPerChannel; ++i) {
    calls.emplace_back([&, i] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
      auto reader = stubs[i % kChannels]->Results(&context, {});
      v1::StepResult result;
      while (reader->Read(&result)) {
      }
      codes[i] = reader->Finish().error_code();
    });
  }
  for (std::thread& t : calls) t.join();
  const int replaced =
      static_cast<int>(std::count(codes.begin(), codes.end(), grpc::StatusCode::ABORTED));
  const int held = static_cast<int>(
      std::count(codes.begin(), codes.end(), grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_EQ(held, 1) << "only the newest stream stays open until its deadline";
  EXPECT_EQ(replaced, kChannels * kPerChannel - 1);
  EXPECT_EQ(w.Health().state(), v1::STAGE_STATE_UNSPECIFIED) << "it answers as before";
}

TEST(WorkerServiceMemoryTest, TooSmallALimitNamesTheShortfall) {
  WorkerOptions options;
  options.mem_limit = 1 << 20;
  Worker worker(options);
  grpc::Status status = worker.Load(0, 4, 0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("stage 0 needs"));
  EXPECT_THAT(status.error_message(), HasSubstr("(--mem-limit); short by"));
}

TEST_F(WorkerServiceTest, ConnectDownstreamChecksThePlace) {
  ASSERT_TRUE(front_.Load(0, 1, 0).ok());
  EXPECT_EQ(front_.Connect("").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(
      front_.Connect(back_.address, v1::ELEMENT_TYPE_F32, v1::TRANSPORT_NCCL)
          .error_code(),
      grpc::StatusCode::UNIMPLEMENTED);
  ASSERT_TRUE(back_.Load(2, 4, 1).ok());
  EXPECT_EQ(back_.Connect(front_.address).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(front_.Connect("127.0.0.1:1").error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // Results come from the last stage only.
  grpc::ClientContext context;
  auto results = front_.stub->Results(&context, {});
  v1::StepResult result;
  EXPECT_FALSE(results->Read(&result));
  EXPECT_EQ(results->Finish().error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace layerpool::service_test
