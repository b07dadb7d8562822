// Choosing the data-plane transport of each link between adjacent stages.
//
// Hidden states go from stage i to stage i + 1 either over NCCL (GPU to GPU,
// ncclSend/ncclRecv) or over the next worker's gRPC Activations stream,
// which always works. NCCL is chosen for a link only when all of these hold,
// checked in this order; the first that fails names the reason for gRPC:
//   1. both stages run on CUDA devices (NCCL moves device memory);
//   2. both workers list the "nccl" capability in Hello (built with NCCL);
//   3. both are on the same host, or LinkOptions::nccl_across_hosts is set
//      (NCCL's network transport then carries the link; it needs a network
//      NCCL can use between the hosts, which layerpool cannot check);
//   4. they are on different GPUs: NCCL refuses two ranks of one
//      communicator on one GPU, so stages sharing a GPU (two workers on the
//      single-GPU test machine) stage activations through host memory over
//      gRPC.
//
// Two stages are on the same GPU when their GPU UUIDs are equal; when either
// UUID is unknown, when they are on the same host with the same device
// index. Device indices alone can mislead (CUDA_VISIBLE_DEVICES renumbers
// devices per process), so workers should report UUIDs. An unknown host
// (empty host_id) is never taken to be the same host as another.
//
// PlanLinks is a pure function: no I/O, no threads, no global state.
#ifndef LAYERPOOL_COORDINATOR_LINK_PLAN_H_
#define LAYERPOOL_COORDINATOR_LINK_PLAN_H_

#include <string>
#include <vector>

namespace layerpool {

// What a worker says about itself (from Hello), for one stage.
struct StageFacts {
  std::string name;  // for messages, e.g. the worker's address
  // Identifies the machine: equal strings mean one host. Workers report
  // hostname and boot id, so that two containers with one hostname on
  // different machines are not confused.
  std::string host_id;
  std::string device_kind;  // "cpu" or "cuda"
  int device_index = -1;    // CUDA ordinal in the worker's process
  std::string gpu_uuid;     // "GPU-...", empty when unknown
  std::vector<std::string> capabilities;  // Hello's, e.g. "nccl"
};

struct LinkOptions {
  // Allow NCCL between stages on different hosts (rule 3).
  bool nccl_across_hosts = false;
};

enum class LinkTransport {
  kGrpc,  // proto's TRANSPORT_GRPC
  kNccl,  // proto's TRANSPORT_NCCL
};

struct LinkChoice {
  LinkTransport transport = LinkTransport::kGrpc;
  // One sentence for logs and DescribeCluster, e.g. "stages 1 and 2 share
  // GPU 0 of host 'a': NCCL cannot put two ranks on one GPU; using gRPC with
  // host staging".
  std::string reason;
};

// The choice for each link stage i -> i + 1: stages.size() - 1 entries
// (none for fewer than two stages). Stages are numbered from 0, as in
// LoadStageRequest.stage_index.
std::vector<LinkChoice> PlanLinks(const std::vector<StageFacts>& stages,
                                  const LinkOptions& options = {});

// "grpc" or "nccl".
const char* LinkTransportName(LinkTransport transport);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_LINK_PLAN_H_
