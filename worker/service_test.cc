// Two WorkerServices on loopback holding stories260K's layers [0, 1] and
// [2, 4], driven the way the coordinator drives them, against one
// in-process Stage over all five layers.
#include "worker/service.h"

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "proto/version.h"
#include "tests/support/shared_data.h"
#include "worker/stage.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

constexpr int kCtx = 64;
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 275, 401, 264};

std::string ModelPath() {
  return testing::SharedPath("models/stories260K/stories260K-F32.gguf");
}

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(10);
}

// One worker process, in-process.
struct Worker {
  explicit Worker(WorkerOptions options = {}) {
    if (options.threads == 0) options.threads = 1;
    service = std::make_unique<WorkerService>(std::move(options));
    absl::StatusOr<std::unique_ptr<grpc::Server>> started =
        StartWorkerServer(service.get(), "127.0.0.1:0", &port);
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) server = std::move(*started);
    address = absl::StrCat("127.0.0.1:", port);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    stub = v1::Worker::NewStub(grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args));
  }
  ~Worker() {
    service->Shutdown();
    if (server) server->Shutdown(std::chrono::system_clock::now());
  }

  grpc::Status Load(uint32_t first, uint32_t last, uint32_t index,
                    v1::LoadStageResponse* response = nullptr,
                    const std::string& hash = "") {
    v1::LoadStageRequest request;
    request.set_model_path(ModelPath());
    request.mutable_layers()->set_first(first);
    request.mutable_layers()->set_last(last);
    request.set_stage_index(index);
    request.set_expected_content_hash(hash);
    request.set_kv_type(v1::KV_CACHE_TYPE_F16);
    request.set_n_ctx(kCtx);
    request.set_max_sequences(2);
    request.set_n_threads(2);
    return Load(request, response);
  }
  grpc::Status Load(const v1::LoadStageRequest& request,
                    v1::LoadStageResponse* response = nullptr) {
    v1::LoadStageResponse ignored;
    grpc::ClientContext context;
    return stub->LoadStage(&context, request, response ? response : &ignored);
  }
  grpc::Status Connect(const std::string& next,
                       v1::ElementType type = v1::ELEMENT_TYPE_F32,
                       v1::Transport transport = v1::TRANSPORT_GRPC,
                       std::string* link = nullptr) {
    v1::ConnectDownstreamRequest request;
    request.set_next_address(next);
    request.set_activation_type(type);
    request.set_transport(transport);
    v1::ConnectDownstreamResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub->ConnectDownstream(&context, request, &response);
    if (link != nullptr) *link = response.link();
    return status;
  }
  v1::HealthResponse Health() {
    v1::HealthResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(stub->Health(&context, {}, &response).ok());
    return response;
  }

  std::unique_ptr<WorkerService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;
  std::unique_ptr<v1::Worker::Stub> stub;
};

// An upstream Activations stream, as the coordinator or a stage opens it.
struct Upstream {
  explicit Upstream(Worker& w) {
    context.set_deadline(Deadline());
    stream = w.stub->Activations(&context);
  }
  // Sends one chunk and, when `expect_ack`, waits for its ack.
  bool Send(const v1::ActivationChunk& chunk, bool expect_ack = true) {
    if (!stream->Write(chunk)) return false;
    if (!expect_ack) return true;
    v1::ActivationAck ack;
    if (!stream->Read(&ack)) return false;
    EXPECT_EQ(ack.micro_batch_id(), chunk.micro_batch_id());
    return true;
  }
  // The status the worker ended the stream with.
  grpc::Status End() {
    stream->WritesDone();
    v1::ActivationAck ack;
    while (stream->Read(&ack)) {
    }
    return stream->Finish();
  }
  grpc::ClientContext context;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ActivationChunk, v1::ActivationAck>>
      stream;
};

v1::SamplingParams Greedy() {
  v1::SamplingParams sampling;
  sampling.set_temperature(0);
  sampling.set_n_probs(2);
  return sampling;
}

v1::ActivationChunk TokenChunk(uint64_t id, uint64_t seq, int32_t first_pos,
                               const std::vector<int32_t>& tokens,
                               bool sample = true,
                               const v1::SamplingParams& sampling = Greedy()) {
  v1::ActivationChunk chunk;
  chunk.set_micro_batch_id(id);
  chunk.set_chunk_index(0);
  chunk.set_chunk_count(1);
  for (size_t i = 0; i < tokens.size(); ++i) {
    chunk.add_seq_ids(seq);
    chunk.add_positions(first_pos + static_cast<int32_t>(i));
    chunk.mutable_token_ids()->add_ids(tokens[i]);
  }
  if (sample) {
    v1::SampleSpec* spec = chunk.add_samples();
    spec->set_row(static_cast<uint32_t>(tokens.size() - 1));
    *spec->mutable_sampling() = sampling;
    for (int32_t t : tokens) spec->add_recent_tokens(t);
  }
  return chunk;
}

v1::ActivationChunk HiddenChunk(uint64_t id, uint64_t seq, int32_t pos,
                                uint32_t hidden_size = 64) {
  v1::ActivationChunk chunk;
  chunk.set_micro_batch_id(id);
  chunk.set_chunk_count(1);
  chunk.add_seq_ids(seq);
  chunk.add_positions(pos);
  v1::HiddenStates* hidden = chunk.mutable_hidden();
  hidden->set_element_type(v1::ELEMENT_TYPE_F32);
  hidden->set_hidden_size(hidden_size);
  hidden->mutable_data()->assign(hidden_size * 4, '\0');
  return chunk;
}

// Greedy tokens from one Stage over the whole model.
std::vector<int32_t> ReferenceTokens(int n_predict) {
  auto file = gguf::GgufFile::Open(ModelPath(), {.map_data = false});
  if (!file.ok()) {
    ADD_FAILURE() << file.status();
    return {};
  }
  StageOptions options;
  options.threads = 2;
  auto stage = Stage::Create(**file, options);
  if (!stage.ok()) {
    ADD_FAILURE() << stage.status();
    return {};
  }
  auto cache = (*stage)->NewCache(kCtx);
  std::vector<int32_t> input = kPrompt, out;
  int32_t pos = 0;
  for (int step = 0; step < n_predict; ++step) {
    std::vector<int32_t> positions;
    for (size_t i = 0; i < input.size(); ++i) positions.push_back(pos++);
    std::vector<KvCache*> caches(input.size(), cache->get());
    const std::vector<int64_t> rows = {static_cast<int64_t>(input.size()) - 1};
    std::vector<float> logits;
    EXPECT_TRUE(
        (*stage)->Forward({input, {}, positions, caches, rows, {}}, &logits).ok());
    const int32_t next = static_cast<int32_t>(
        std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(next);
    input = {next};
  }
  return out;
}

class WorkerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(front_.server && back_.server); }

  // Loads both stages and links them.
  void StartPipeline(v1::ElementType type, v1::Transport transport = v1::TRANSPORT_GRPC,
                     std::string* link = nullptr) {
    v1::LoadStageResponse loaded;
    ASSERT_TRUE(front_.Load(0, 1, 0, &loaded).ok());
    EXPECT_THAT(loaded.content_hash(), HasSubstr("sha256:"));
    EXPECT_GT(loaded.weight_bytes(), 0u);
    ASSERT_TRUE(back_.Load(2, 4, 1).ok());
    ASSERT_TRUE(back_.Connect("").ok());
    grpc::Status connected = front_.Connect(back_.address, type, transport, link);
    ASSERT_TRUE(connected.ok()) << connected.error_message();
  }

  // Prompt, then n_predict - 1 decode steps, one micro-batch each; the
  // tokens come back on the last stage's Results.
  std::vector<int32_t> Generate(int n_predict,
                                const v1::SamplingParams& sampling = Greedy()) {
    grpc::ClientContext results_context;
    results_context.set_deadline(Deadline());
    auto results = back_.stub->Results(&results_context, {});
    Upstream up(front_);
    std::vector<int32_t> out;
    std::vector<int32_t> input = kPrompt;
    int32_t pos = 0;
    for (int step = 0; step < n_predict; ++step) {
      if (!up.Send(TokenChunk(step + 1, 42, pos, input, true, sampling))) break;
      pos += static_cast<int32_t>(input.size());
      v1::StepResult result;
      if (!results->Read(&result)) break;
      EXPECT_EQ(result.micro_batch_id(), static_cast<uint64_t>(step + 1));
      if (result.tokens_size() != 1) break;
      const v1::SampledToken& token = result.tokens(0);
      EXPECT_EQ(token.seq_id(), 42u);
      // The sampled token's logprob is reported even when it is not among
      // the n_probs most likely.
      EXPECT_TRUE(token.has_logprob());
      EXPECT_LE(token.logprob(), 0);
      EXPECT_GE(token.top_logprobs_size(), 1);
      EXPECT_LE(token.top_logprobs_size(), sampling.n_probs());
      if (sampling.temperature() <= 0 && token.top_logprobs_size() > 0) {
        EXPECT_EQ(token.top_logprobs(0).token(), token.token());
      }
      out.push_back(token.token());
      input = {token.token()};
    }
    EXPECT_TRUE(up.End().ok());
    results_context.TryCancel();
    return out;
  }

  Worker front_, back_;
};

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

// f16 on the wire rounds the hidden states, so tokens may differ from the
// reference; the pipeline must still run.
TEST_F(WorkerServiceTest, F16ActivationsRun) {
  StartPipeline(v1::ELEMENT_TYPE_F16);
  EXPECT_EQ(Generate(16).size(), 16u);
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
  for (Worker* w : {&front_, &back_}) {
    v1::FreeSequenceRequest free;
    free.add_seq_ids(42);
    v1::FreeSequenceResponse freed;
    grpc::ClientContext context;
    ASSERT_TRUE(w->stub->FreeSequence(&context, free, &freed).ok());
    EXPECT_EQ(freed.freed(), 1u);
  }
  EXPECT_EQ(Generate(12, sampling), first);
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

  // The right hash is accepted.
  ASSERT_TRUE(back_.Load(0, 1, 0, &loaded).ok());
  EXPECT_TRUE(front_.Load(0, 1, 0, nullptr, loaded.content_hash()).ok());
  EXPECT_EQ(front_.Health().state(), v1::STAGE_STATE_READY);
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
}  // namespace layerpool
