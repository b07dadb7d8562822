// Mutual TLS on the Worker API (`--tls-dir DIR` on worker, serve, plan):
// every worker and the coordinator hold a certificate signed by the home
// lab's own CA (deploy/make-certs.sh makes them); a worker accepts only
// callers whose client certificate that CA signed, and callers check the
// worker's certificate against the CA and the address they dialled. DIR
// holds ca.pem, cert.pem and key.pem. Without it, the API is plain text.
#ifndef LAYERPOOL_PROTO_TLS_H_
#define LAYERPOOL_PROTO_TLS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace layerpool {

struct TlsFiles {
  std::string ca, cert, key;  // PEM text
};

// DIR/ca.pem, DIR/cert.pem, DIR/key.pem; NotFound naming the missing one,
// InvalidArgument for a file that holds no PEM block.
[[nodiscard]] absl::StatusOr<TlsFiles> ReadTlsDir(const std::string& dir);

// Mutual TLS when `tls` is set (client certificates required and verified
// against its CA), plain text otherwise.
std::shared_ptr<grpc::ServerCredentials> WorkerServerCredentials(
    const std::optional<TlsFiles>& tls);
std::shared_ptr<grpc::ChannelCredentials> WorkerChannelCredentials(
    const std::optional<TlsFiles>& tls);

}  // namespace layerpool

#endif  // LAYERPOOL_PROTO_TLS_H_
