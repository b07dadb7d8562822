// The public Inference API (proto/layerpool/v1/inference.proto) over a
// running Cluster: tokenizing, streaming generation with whole-character
// pieces and stop strings, and the cluster's description.
#ifndef LAYERPOOL_COORDINATOR_INFERENCE_SERVICE_H_
#define LAYERPOOL_COORDINATOR_INFERENCE_SERVICE_H_

#include <string>

#include "coordinator/cluster.h"
#include "layerpool/v1/inference.grpc.pb.h"

namespace layerpool {

class InferenceService final : public v1::Inference::Service {
 public:
  // `cluster` must outlive the service.
  explicit InferenceService(Cluster& cluster) : cluster_(cluster) {}

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
  Cluster& cluster_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_INFERENCE_SERVICE_H_
