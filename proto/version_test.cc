#include "proto/version.h"

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "layerpool/v1/inference.pb.h"
#include "layerpool/v1/worker.grpc.pb.h"
#include "layerpool/v1/worker.pb.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

v1::ProtocolVersion Version(uint32_t major, uint32_t minor) {
  v1::ProtocolVersion v;
  v.set_major(major);
  v.set_minor(minor);
  return v;
}

TEST(CheckPeerVersionTest, AcceptsSameVersion) {
  EXPECT_TRUE(CheckPeerVersion(CurrentProtocolVersion(), "worker a").ok());
}

TEST(CheckPeerVersionTest, AcceptsMinorDifference) {
  EXPECT_TRUE(
      CheckPeerVersion(Version(kProtocolMajor, kProtocolMinor + 3), "worker a")
          .ok());
}

TEST(CheckPeerVersionTest, RefusesMajorMismatchWithClearMessage) {
  absl::Status s = CheckPeerVersion(Version(2, 1), "worker 10.0.0.2:7070",
                                    "this coordinator");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "worker 10.0.0.2:7070 speaks layerpool protocol 2.1; this "
            "coordinator speaks 1.1 (major versions must match)");
}

TEST(CheckPeerVersionTest, RefusesMissingVersion) {
  absl::Status s = CheckPeerVersion(v1::ProtocolVersion(), "coordinator x");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("coordinator x sent no layerpool "
                                     "protocol version"));
}

TEST(StatusConversionTest, RoundTripsEveryCanonicalCode) {
  for (int code = 0; code <= 16; ++code) {
    SCOPED_TRACE(code);
    const std::string message =
        code == 0 ? "" : absl::StrFormat("failure %d: détail", code);
    absl::Status a(static_cast<absl::StatusCode>(code), message);
    grpc::Status g = ToGrpc(a);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), message);
    EXPECT_EQ(FromGrpc(g), a);

    grpc::Status g2(static_cast<grpc::StatusCode>(code), message);
    EXPECT_EQ(static_cast<int>(FromGrpc(g2).code()), code);
    EXPECT_EQ(ToGrpc(FromGrpc(g2)).error_code(), g2.error_code());
    EXPECT_EQ(ToGrpc(FromGrpc(g2)).error_message(), g2.error_message());
  }
}

TEST(StatusConversionTest, OutOfRangeCodesBecomeUnknown) {
  absl::Status odd(static_cast<absl::StatusCode>(42), "odd");
  EXPECT_EQ(ToGrpc(odd).error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(ToGrpc(odd).error_message(), "odd");
  grpc::Status godd(static_cast<grpc::StatusCode>(99), "godd");
  EXPECT_EQ(FromGrpc(godd), absl::UnknownError("godd"));
}

TEST(WireTest, GenerateRequestRoundTrips) {
  v1::GenerateRequest req;
  req.set_prompt("The capital of France is");
  req.set_n_predict(16);
  req.add_stop("\n");
  req.set_add_special(false);
  v1::SamplingParams* s = req.mutable_sampling();
  s->set_temperature(0.0f);  // Explicit 0 must survive: it means greedy.
  s->set_top_k(1);
  s->set_seed(1234);
  s->set_n_probs(5);

  std::string bytes;
  ASSERT_TRUE(req.SerializeToString(&bytes));
  v1::GenerateRequest back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_EQ(back.prompt(), "The capital of France is");
  EXPECT_EQ(back.prompt_kind_case(), v1::GenerateRequest::kPrompt);
  EXPECT_EQ(back.n_predict(), 16);
  ASSERT_EQ(back.stop_size(), 1);
  EXPECT_EQ(back.stop(0), "\n");
  ASSERT_TRUE(back.has_add_special());
  EXPECT_FALSE(back.add_special());
  ASSERT_TRUE(back.sampling().has_temperature());
  EXPECT_EQ(back.sampling().temperature(), 0.0f);
  EXPECT_FALSE(back.sampling().has_top_p());  // Unset stays unset.
  EXPECT_EQ(back.sampling().top_k(), 1);
  EXPECT_EQ(back.sampling().seed(), 1234u);
  EXPECT_EQ(back.sampling().n_probs(), 5);

  v1::GenerateRequest tokens;
  tokens.mutable_prompt_tokens()->add_ids(1);
  tokens.mutable_prompt_tokens()->add_ids(15043);
  ASSERT_TRUE(back.ParseFromString(tokens.SerializeAsString()));
  EXPECT_EQ(back.prompt_kind_case(), v1::GenerateRequest::kPromptTokens);
  EXPECT_THAT(back.prompt_tokens().ids(), ::testing::ElementsAre(1, 15043));
}

TEST(WireTest, ActivationChunkRoundTrips) {
  constexpr int kTokens = 3, kHidden = 8;
  std::string data(kTokens * kHidden * sizeof(float), '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i);

  v1::ActivationChunk chunk;
  chunk.set_micro_batch_id(7);
  chunk.set_chunk_index(1);
  chunk.set_chunk_count(4);
  for (int t = 0; t < kTokens; ++t) {
    chunk.add_seq_ids(100 + t / 2);
    chunk.add_positions(t);
  }
  v1::HiddenStates* h = chunk.mutable_hidden();
  h->set_element_type(v1::ELEMENT_TYPE_F32);
  h->set_hidden_size(kHidden);
  h->set_data(data);
  v1::SampleSpec* spec = chunk.add_samples();
  spec->set_row(2);
  spec->mutable_sampling()->set_top_k(40);
  spec->add_recent_tokens(42);

  v1::ActivationChunk back;
  ASSERT_TRUE(back.ParseFromString(chunk.SerializeAsString()));
  EXPECT_EQ(back.micro_batch_id(), 7u);
  EXPECT_EQ(back.chunk_index(), 1u);
  EXPECT_EQ(back.chunk_count(), 4u);
  EXPECT_THAT(back.seq_ids(), ::testing::ElementsAre(100, 100, 101));
  EXPECT_THAT(back.positions(), ::testing::ElementsAre(0, 1, 2));
  ASSERT_EQ(back.payload_case(), v1::ActivationChunk::kHidden);
  EXPECT_EQ(back.hidden().element_type(), v1::ELEMENT_TYPE_F32);
  EXPECT_EQ(back.hidden().hidden_size(), static_cast<uint32_t>(kHidden));
  EXPECT_EQ(back.hidden().data(), data);
  ASSERT_EQ(back.samples_size(), 1);
  EXPECT_EQ(back.samples(0).row(), 2u);
  EXPECT_EQ(back.samples(0).sampling().top_k(), 40);
  EXPECT_THAT(back.samples(0).recent_tokens(), ::testing::ElementsAre(42));
}

// A Worker whose Hello does what a real one must: refuse a major mismatch.
class HelloOnlyWorker final : public v1::Worker::Service {
 public:
  grpc::Status Hello(grpc::ServerContext* context,
                     const v1::HelloRequest* request,
                     v1::HelloResponse* response) override {
    absl::Status ok =
        CheckPeerVersion(request->protocol_version(),
                         "coordinator " + context->peer(), "this worker");
    if (!ok.ok()) return ToGrpc(ok);
    *response->mutable_protocol_version() = CurrentProtocolVersion();
    response->set_build("test");
    response->set_free_memory_bytes(1 << 30);
    return grpc::Status::OK;
  }
};

class HelloRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    stub_ = v1::Worker::NewStub(
        grpc::CreateChannel(absl::StrFormat("127.0.0.1:%d", port),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  absl::Status CallHello(const v1::ProtocolVersion& version,
                         v1::HelloResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::HelloRequest request;
    *request.mutable_protocol_version() = version;
    return FromGrpc(stub_->Hello(&context, request, response));
  }

  HelloOnlyWorker service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Worker::Stub> stub_;
};

TEST_F(HelloRpcTest, MatchingVersionIsAccepted) {
  v1::HelloResponse response;
  absl::Status s =
      CallHello(Version(kProtocolMajor, kProtocolMinor + 1), &response);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(response.protocol_version().major(),
            static_cast<uint32_t>(kProtocolMajor));
  EXPECT_EQ(response.free_memory_bytes(), 1u << 30);
}

TEST_F(HelloRpcTest, MajorMismatchIsRefusedWithMessage) {
  v1::HelloResponse response;
  absl::Status s = CallHello(Version(2, 1), &response);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("speaks layerpool protocol 2.1; this "
                                     "worker speaks 1.1 (major versions must "
                                     "match)"));
  EXPECT_THAT(s.message(), HasSubstr("coordinator ipv4:127.0.0.1:"));
}

TEST_F(HelloRpcTest, UnimplementedRpcsSayUnimplemented) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::HealthResponse response;
  absl::Status s =
      FromGrpc(stub_->Health(&context, v1::HealthRequest(), &response));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace layerpool
