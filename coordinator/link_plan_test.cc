#include "coordinator/link_plan.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

StageFacts Gpu(std::string host, int index, std::string uuid = "") {
  StageFacts s;
  s.name = host + ":cuda" + std::to_string(index);
  s.host_id = std::move(host);
  s.device_kind = "cuda";
  s.device_index = index;
  s.gpu_uuid = std::move(uuid);
  s.capabilities = {"f16-activations", "nccl"};
  return s;
}

StageFacts Cpu(std::string host) {
  StageFacts s;
  s.name = host + ":cpu";
  s.host_id = std::move(host);
  s.device_kind = "cpu";
  s.capabilities = {"f16-activations"};
  return s;
}

TEST(LinkPlanTest, NoLinksForFewerThanTwoStages) {
  EXPECT_TRUE(PlanLinks({}).empty());
  EXPECT_TRUE(PlanLinks({Gpu("a", 0)}).empty());
}

TEST(LinkPlanTest, TwoGpusOfOneHostUseNccl) {
  const std::vector<LinkChoice> links = PlanLinks({Gpu("a", 0), Gpu("a", 1)});
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].transport, LinkTransport::kNccl);
  EXPECT_EQ(links[0].reason,
            "stages 0 and 1 are on GPUs 0 and 1 of host 'a': NCCL");
}

TEST(LinkPlanTest, StagesSharingAGpuUseGrpcWithHostStaging) {
  const std::vector<LinkChoice> links = PlanLinks({Gpu("a", 0), Gpu("a", 0)});
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].transport, LinkTransport::kGrpc);
  EXPECT_EQ(links[0].reason,
            "stages 0 and 1 share GPU 0 of host 'a': NCCL cannot put two "
            "ranks on one GPU; using gRPC with host staging");
}

TEST(LinkPlanTest, UuidsDecideWhenBothAreKnown) {
  // CUDA_VISIBLE_DEVICES=0 and =1: both processes see their GPU as cuda:0.
  EXPECT_EQ(
      PlanLinks({Gpu("a", 0, "GPU-1"), Gpu("a", 0, "GPU-2")})[0].transport,
      LinkTransport::kNccl);
  // Different ordinals for one physical GPU.
  const LinkChoice same =
      PlanLinks({Gpu("a", 0, "GPU-1"), Gpu("a", 1, "GPU-1")})[0];
  EXPECT_EQ(same.transport, LinkTransport::kGrpc);
  EXPECT_THAT(same.reason, HasSubstr("share GPU 0 (GPU-1) of host 'a'"));
  // One UUID missing: fall back to the ordinals.
  EXPECT_EQ(PlanLinks({Gpu("a", 0, "GPU-1"), Gpu("a", 0)})[0].transport,
            LinkTransport::kGrpc);
}

TEST(LinkPlanTest, CpuStagesUseGrpc) {
  const std::vector<LinkChoice> links =
      PlanLinks({Gpu("a", 0), Cpu("a"), Cpu("a"), Gpu("a", 1)});
  ASSERT_EQ(links.size(), 3u);
  for (const LinkChoice& link : links) {
    EXPECT_EQ(link.transport, LinkTransport::kGrpc);
  }
  EXPECT_EQ(links[0].reason,
            "stage 1 ('a:cpu') runs on cpu: NCCL links CUDA devices only; "
            "using gRPC");
  EXPECT_EQ(links[1].reason,
            "stages 1 and 2 run on cpu: NCCL links CUDA devices only; using "
            "gRPC");
  EXPECT_THAT(links[2].reason, HasSubstr("stage 2 ('a:cpu') runs on cpu"));
}

TEST(LinkPlanTest, CrossHostNeedsTheOption) {
  const std::vector<StageFacts> stages = {Gpu("a", 0), Gpu("b", 0)};
  const LinkChoice off = PlanLinks(stages)[0];
  EXPECT_EQ(off.transport, LinkTransport::kGrpc);
  EXPECT_EQ(off.reason,
            "stages 0 and 1 are not known to share a host ('a', 'b') and "
            "NCCL across hosts is not enabled; using gRPC");

  const LinkChoice on = PlanLinks(stages, {.nccl_across_hosts = true})[0];
  EXPECT_EQ(on.transport, LinkTransport::kNccl);
  EXPECT_EQ(on.reason,
            "stages 0 and 1 are on GPU 0 of host 'a' and GPU 0 of host 'b': "
            "NCCL over the network");
}

TEST(LinkPlanTest, UnknownHostsAreNotTheSameHost) {
  const LinkChoice link = PlanLinks({Gpu("", 0), Gpu("", 1)})[0];
  EXPECT_EQ(link.transport, LinkTransport::kGrpc);
  EXPECT_THAT(link.reason, HasSubstr("(an unknown host, an unknown host)"));
}

TEST(LinkPlanTest, MissingCapabilityUsesGrpc) {
  StageFacts old = Gpu("a", 1);
  old.capabilities = {"f16-activations"};
  const LinkChoice link = PlanLinks({Gpu("a", 0), old})[0];
  EXPECT_EQ(link.transport, LinkTransport::kGrpc);
  EXPECT_EQ(link.reason,
            "stage 1 ('a:cuda1') does not offer nccl (built without NCCL?); "
            "using gRPC");
}

TEST(LinkPlanTest, EachLinkIsChosenOnItsOwn) {
  // GPU 0 -> GPU 1 -> GPU 1 again -> CPU, all on host a.
  const std::vector<LinkChoice> links =
      PlanLinks({Gpu("a", 0), Gpu("a", 1), Gpu("a", 1), Cpu("a")});
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0].transport, LinkTransport::kNccl);
  EXPECT_EQ(links[1].transport, LinkTransport::kGrpc);
  EXPECT_THAT(links[1].reason, HasSubstr("stages 1 and 2 share GPU 1"));
  EXPECT_EQ(links[2].transport, LinkTransport::kGrpc);
  EXPECT_STREQ(LinkTransportName(links[0].transport), "nccl");
  EXPECT_STREQ(LinkTransportName(links[1].transport), "grpc");
}

}  // namespace
}  // namespace layerpool
