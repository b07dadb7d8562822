// The HTTP front door's flags, shared by `serve` and `run --local-workers`:
// where to listen, the API keys, the chat template.
#ifndef LAYERPOOL_CLI_HTTP_FLAGS_H_
#define LAYERPOOL_CLI_HTTP_FLAGS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/flags.h"
#include "coordinator/cluster.h"
#include "coordinator/http/http_server.h"
#include "grpcpp/grpcpp.h"

namespace layerpool::cli {

struct HttpFlags {
  std::string http;            // HOST:PORT, or "off"/"" for none
  std::string api_key_file;
  std::string chat_template;   // a Jinja file overriding the model's
  std::string api_tls_dir;     // cert.pem and key.pem for HTTPS (and gRPC TLS)

  void Register(FlagSet& flags, bool http_on_by_default);
  bool enabled() const { return !http.empty() && http != "off"; }
  // The keys of --api-key-file (none without it).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> ApiKeys() const;
  // Server credentials for the public gRPC API: TLS with --api-tls-dir's
  // certificate, else plain text.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcCredentials() const;
  // Binds the HTTP server (it answers "loading" until Attach).
  [[nodiscard]] absl::StatusOr<std::unique_ptr<http::HttpServer>> Start(
      const std::vector<std::string>& api_keys, int threads) const;
  // Gives the server the running cluster and the chat template: the file's
  // (--chat-template) or the model's; says on stderr when there is none.
  [[nodiscard]] absl::Status Attach(http::HttpServer& server, Cluster& cluster,
                                    const std::string& model_path) const;
};

}  // namespace layerpool::cli

#endif  // LAYERPOOL_CLI_HTTP_FLAGS_H_
