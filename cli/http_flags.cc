#include "cli/http_flags.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/api_keys.h"
#include "model/chat/chat_template.h"

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
