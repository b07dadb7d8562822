#include "coordinator/link_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool {
namespace {

constexpr char kNcclCapability[] = "nccl";

bool IsCuda(const StageFacts& s) { return s.device_kind == "cuda"; }

bool OffersNccl(const StageFacts& s) {
  return std::find(s.capabilities.begin(), s.capabilities.end(),
                   kNcclCapability) != s.capabilities.end();
}

bool SameHost(const StageFacts& a, const StageFacts& b) {
  return !a.host_id.empty() && a.host_id == b.host_id;
}

// See the header: UUIDs decide when both are known, else (host, index).
bool SameGpu(const StageFacts& a, const StageFacts& b) {
  if (!a.gpu_uuid.empty() && !b.gpu_uuid.empty()) {
    return a.gpu_uuid == b.gpu_uuid;
  }
  return SameHost(a, b) && a.device_index == b.device_index;
}

std::string HostName(const StageFacts& s) {
  return s.host_id.empty() ? "an unknown host"
                           : absl::StrCat("'", s.host_id, "'");
}

std::string Gpu(const StageFacts& s) {
  return s.gpu_uuid.empty()
             ? absl::StrCat("GPU ", s.device_index)
             : absl::StrFormat("GPU %d (%s)", s.device_index, s.gpu_uuid);
}

// "stage 1 ('w1')", or "stages 0 and 1" when both fail the same rule.
std::string Which(size_t i, const StageFacts& a, bool a_fails,
                  const StageFacts& b, bool b_fails) {
  if (a_fails && b_fails) return absl::StrFormat("stages %d and %d", i, i + 1);
  const size_t k = a_fails ? i : i + 1;
  const StageFacts& s = a_fails ? a : b;
  return s.name.empty() ? absl::StrFormat("stage %d", k)
                        : absl::StrFormat("stage %d ('%s')", k, s.name);
}

LinkChoice Choose(size_t i, const StageFacts& a, const StageFacts& b,
                  const LinkOptions& options) {
  const auto grpc = [](std::string why) {
    return LinkChoice{LinkTransport::kGrpc, std::move(why)};
  };
  if (!IsCuda(a) || !IsCuda(b)) {
    const StageFacts& other = IsCuda(a) ? b : a;
    return grpc(absl::StrFormat(
        "%s %s on %s: NCCL links CUDA devices only; using gRPC",
        Which(i, a, !IsCuda(a), b, !IsCuda(b)),
        !IsCuda(a) && !IsCuda(b) ? "run" : "runs",
        other.device_kind.empty() ? "an unknown device" : other.device_kind));
  }
  if (!OffersNccl(a) || !OffersNccl(b)) {
    const bool both = !OffersNccl(a) && !OffersNccl(b);
    return grpc(absl::StrFormat(
        "%s %s not offer nccl (built without NCCL?); using gRPC",
        Which(i, a, !OffersNccl(a), b, !OffersNccl(b)), both ? "do" : "does"));
  }
  const bool same_host = SameHost(a, b);
  if (!same_host && !options.nccl_across_hosts) {
    return grpc(absl::StrFormat(
        "stages %d and %d are not known to share a host (%s, %s) and NCCL "
        "across hosts is not enabled; using gRPC",
        i, i + 1, HostName(a), HostName(b)));
  }
  if (SameGpu(a, b)) {
    return grpc(absl::StrFormat(
        "stages %d and %d share %s of host %s: NCCL cannot put two ranks on "
        "one GPU; using gRPC with host staging",
        i, i + 1, Gpu(a), HostName(a)));
  }
  if (same_host) {
    return {
        LinkTransport::kNccl,
        absl::StrFormat("stages %d and %d are on GPUs %d and %d of host "
                        "%s: NCCL",
                        i, i + 1, a.device_index, b.device_index, HostName(a))};
  }
  return {LinkTransport::kNccl,
          absl::StrFormat("stages %d and %d are on %s of host %s and %s of "
                          "host %s: NCCL over the network",
                          i, i + 1, Gpu(a), HostName(a), Gpu(b), HostName(b))};
}

}  // namespace

std::vector<LinkChoice> PlanLinks(const std::vector<StageFacts>& stages,
                                  const LinkOptions& options) {
  std::vector<LinkChoice> links;
  for (size_t i = 0; i + 1 < stages.size(); ++i) {
    links.push_back(Choose(i, stages[i], stages[i + 1], options));
  }
  return links;
}

const char* LinkTransportName(LinkTransport transport) {
  return transport == LinkTransport::kNccl ? "nccl" : "grpc";
}

}  // namespace layerpool
