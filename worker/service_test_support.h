// What the worker service tests share: two WorkerServices on loopback
// holding stories260K's layers [0, 1] and [2, 4], driven the way the
// coordinator drives them, and one in-process Stage over all five layers to
// compare with. service_test.cc tests the control plane,
// service_data_plane_test.cc the activation streams.
#ifndef LAYERPOOL_WORKER_SERVICE_TEST_SUPPORT_H_
#define LAYERPOOL_WORKER_SERVICE_TEST_SUPPORT_H_

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "proto/peer_token.h"
#include "proto/version.h"
#include "transport/grpc_chunk_stream.h"
#include "transport/result_stream.h"
#include "tests/support/shared_data.h"
#include "worker/service.h"
#include "worker/stage.h"

namespace layerpool::service_test {

inline constexpr int kCtx = 64;
inline const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 275, 401, 264};

inline std::string ModelPath() {
  return testing::SharedPath("models/stories260K/stories260K-F32.gguf");
}

inline std::chrono::system_clock::time_point Deadline() {
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
    channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    stub = v1::Worker::NewStub(channel);
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
    Prepare(&context);
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
    Prepare(&context);
    grpc::Status status = stub->ConnectDownstream(&context, request, &response);
    if (link != nullptr) *link = response.link();
    return status;
  }
  v1::HealthResponse Health() {
    v1::HealthResponse response;
    grpc::ClientContext context;
    Prepare(&context);
    EXPECT_TRUE(stub->Health(&context, {}, &response).ok());
    return response;
  }

  // Adds the coordinator's lease id, when the test gave one.
  void Prepare(grpc::ClientContext* context) const { AddCoordinatorId(context, coordinator); }

  std::string coordinator;  // lease id on every call; empty: none
  std::unique_ptr<WorkerService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Worker::Stub> stub;
};

// An upstream Activations stream, as the coordinator or a stage opens it.
struct Upstream {
  explicit Upstream(Worker& w) {
    context.set_deadline(Deadline());
    w.Prepare(&context);
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

inline v1::SamplingParams Greedy() {
  v1::SamplingParams sampling;
  sampling.set_temperature(0);
  sampling.set_n_probs(2);
  return sampling;
}

inline v1::ActivationChunk TokenChunk(uint64_t id, uint64_t seq, int32_t first_pos,
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

inline v1::ActivationChunk HiddenChunk(uint64_t id, uint64_t seq, int32_t pos,
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
inline std::vector<int32_t> ReferenceTokens(int n_predict) {
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
        (*stage)->Forward({input, {}, positions, caches, rows, {}, {}}, &logits).ok());
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
    EXPECT_THAT(loaded.content_hash(), ::testing::HasSubstr("sha256:"));
    EXPECT_GT(loaded.weight_bytes(), 0u);
    ASSERT_TRUE(back_.Load(2, 4, 1).ok());
    ASSERT_TRUE(back_.Connect("").ok());
    grpc::Status connected = front_.Connect(back_.address, type, transport, link);
    ASSERT_TRUE(connected.ok()) << connected.error_message();
  }

  // Prompt, then n_predict - 1 decode steps, one micro-batch each; the
  // tokens come back on the last stage's Results (gRPC), or `results`.
  std::vector<int32_t> Generate(int n_predict,
                                const v1::SamplingParams& sampling = Greedy(),
                                std::unique_ptr<ResultSource> results = nullptr) {
    if (results == nullptr) {
      results = std::make_unique<GrpcResultSource>(back_.channel, "", back_.coordinator);
    }
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
    results->Cancel();
    return out;
  }

  // FreeSequence(seq_id) on both stages; how many held it.
  uint32_t FreeEverywhere(uint64_t seq_id) {
    uint32_t held = 0;
    for (Worker* w : {&front_, &back_}) {
      v1::FreeSequenceRequest free;
      free.add_seq_ids(seq_id);
      v1::FreeSequenceResponse freed;
      grpc::ClientContext context;
      w->Prepare(&context);
      EXPECT_TRUE(w->stub->FreeSequence(&context, free, &freed).ok());
      held += freed.freed();
    }
    return held;
  }

  Worker front_, back_;
};

}  // namespace layerpool::service_test

#endif  // LAYERPOOL_WORKER_SERVICE_TEST_SUPPORT_H_
