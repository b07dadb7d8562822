// The coordinator's HTTP front door: an OpenAI-compatible API over the
// Cluster, beside the gRPC one, served with cpp-httplib.
//
//   POST /v1/chat/completions   messages through the model's chat template
//   POST /v1/completions        a prompt (text or token ids)
//   GET  /v1/models             the one served model
//   POST /v1/embeddings         the final hidden state through every stage,
//                               pooled (the GGUF's pooling_type: cls or
//                               last; otherwise mean) and L2-normalised
//   GET  /health                ready | loading | degraded (naming the stage)
//   GET  /metrics               Prometheus text format (coordinator/http/metrics.h)
//
// Both completion endpoints stream with `stream: true` as server-sent
// events: `data: {chunk}` lines, a last chunk carrying finish_reason, with
// stream_options.include_usage one more chunk with usage and no choices,
// then `data: [DONE]`. While a streamed request waits for its first token
// the server writes an SSE comment every 500 ms; a client that has gone
// away makes that write (or a token's) fail, and the request is cancelled,
// which frees its sequence on every stage. A request that does not stream
// runs to its end even if its client leaves.
//
// With API keys, every endpoint but /health needs "Authorization: Bearer
// KEY" (compared in constant time); otherwise 401.
//
// The server can start before the cluster has loaded (SetCluster later):
// meanwhile /health answers 503 "loading" and the API 503.
//
// Thread safety: one thread per connection (a pool sized by `threads`);
// Stop() and the destructor wait for the requests in progress to end.
#ifndef LAYERPOOL_COORDINATOR_HTTP_HTTP_SERVER_H_
#define LAYERPOOL_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/cluster.h"
#include "model/chat/chat_template.h"

namespace httplib {
class Server;
}

namespace layerpool::http {

class Metrics;

struct HttpOptions {
  std::string listen = "127.0.0.1:8080";  // port 0 picks one
  std::vector<std::string> api_keys;       // empty: no authentication
  // Connections served at once; each streaming request holds one.
  int threads = 96;
  // Both set: HTTPS with this certificate and key (PEM files).
  std::string tls_cert_file, tls_key_file;
};

class HttpServer {
 public:
  // Binds and starts serving. Unavailable when the address cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpOptions options);
  ~HttpServer();

  // The cluster to serve, and its chat template (nullopt: chat requests are
  // refused with a clear error; completions still work). `cluster` must
  // outlive the server.
  void SetCluster(Cluster* cluster, std::optional<ChatTemplate> chat_template);

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  void Stop();

  struct Impl;

 private:
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  std::string host_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace layerpool::http

#endif  // LAYERPOOL_COORDINATOR_HTTP_HTTP_SERVER_H_
