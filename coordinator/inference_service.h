// The public Inference API (proto/layerpool/v1/inference.proto) over a
// running Cluster: tokenizing, streaming generation with whole-character
// pieces and stop strings, and the cluster's description.
#ifndef LAYERPOOL_COORDINATOR_INFERENCE_SERVICE_H_
#define LAYERPOOL_COORDINATOR_INFERENCE_SERVICE_H_

#include <string>
#include <vector>

#include "coordinator/cluster.h"
#include "layerpool/v1/inference.grpc.pb.h"

namespace layerpool {

class InferenceService final : public v1::Inference::Service {
 public:
  // `cluster` must outlive the service. With `api_keys`, every call needs
  // metadata "authorization: Bearer KEY" naming one (else UNAUTHENTICATED).
  explicit InferenceService(Cluster& cluster, std::vector<std::string> api_keys = {})
      : cluster_(cluster), api_keys_(std::move(api_keys)) {}

  grpc::Status Generate(grpc::ServerContext* context,
                        const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context,
                        const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override;
  grpc::Status Detokenize(grpc::ServerContext* context,
                          const v1::DetokenizeRequest* request,
                          v1::DetokenizeResponse* response) override;
  grpc::Status DescribeCluster(grpc::ServerContext* context,
                               const v1::DescribeClusterRequest* request,
                               v1::ClusterDescription* response) override;

 private:
  grpc::Status Authorize(const grpc::ServerContext* context) const;

  Cluster& cluster_;
  std::vector<std::string> api_keys_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_INFERENCE_SERVICE_H_
