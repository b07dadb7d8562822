#include "cli/http_flags.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/api_keys.h"
#include "model/chat/chat_template.h"
#include "proto/tls.h"

namespace layerpool::cli {

void HttpFlags::Register(FlagSet& flags, bool http_on_by_default) {
  if (http_on_by_default) http = "127.0.0.1:8080";
  flags.String("http", "HOST:PORT", &http,
               http_on_by_default
                   ? "address of the OpenAI-compatible HTTP API ('off': none; port 0 picks one)"
                   : "serve the OpenAI-compatible HTTP API here until Ctrl-C, instead of running "
                     "one prompt (port 0 picks one)");
  flags.String("api-key-file", "FILE", &api_key_file,
               "API keys, one per line: the HTTP API (all but /health) and the gRPC Inference "
               "API then need 'Authorization: Bearer KEY'");
  flags.String("chat-template", "FILE", &chat_template,
               "a Jinja chat template to use instead of the model's tokenizer.chat_template");
  flags.String("api-tls-dir", "DIR", &api_tls_dir,
               "serve the public APIs over TLS (HTTPS, and TLS on the gRPC Inference API)\n"
               "with DIR/cert.pem and DIR/key.pem, e.g. a deploy/make-certs.sh host folder\n"
               "(clients then trust its ca.pem); without it they are plain text");
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> HttpFlags::GrpcCredentials() const {
  if (api_tls_dir.empty()) return grpc::InsecureServerCredentials();
  LP_ASSIGN_OR_RETURN(TlsFiles files, ReadTlsDir(api_tls_dir), "--api-tls-dir");
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({files.key, files.cert});
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::vector<std::string>> HttpFlags::ApiKeys() const {
  if (api_key_file.empty()) return std::vector<std::string>{};
  return ReadApiKeys(api_key_file);
}

absl::StatusOr<std::unique_ptr<http::HttpServer>> HttpFlags::Start(
    const std::vector<std::string>& api_keys, int threads) const {
  http::HttpOptions options;
  options.listen = http;
  options.api_keys = api_keys;
  options.threads = threads;
  if (!api_tls_dir.empty()) {
    LP_RETURN_IF_ERROR(ReadTlsDir(api_tls_dir).status(), "--api-tls-dir");
    options.tls_cert_file = api_tls_dir + "/cert.pem";
    options.tls_key_file = api_tls_dir + "/key.pem";
  }
  return http::HttpServer::Start(std::move(options));
}

absl::Status HttpFlags::Attach(http::HttpServer& server, Cluster& cluster,
                               const std::string& model_path) const {
  LP_ASSIGN_OR_RETURN(std::optional<ChatTemplate> chat,
                      ChatTemplate::ForModel(model_path, cluster.tokenizer(), chat_template));
  if (!chat) {
    std::cerr << "http: " << model_path << " has no chat template; /v1/chat/completions "
              << "will refuse requests (give --chat-template FILE), /v1/completions works\n";
  }
  server.SetCluster(&cluster, std::move(chat));
  return absl::OkStatus();
}

}  // namespace layerpool::cli
