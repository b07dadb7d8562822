// The coordinator's web page (issue: chat with the model and watch the
// pipeline): static files compiled into the binary (coordinator/http/web,
// embedded by cmake/embed_files.cmake), served at / with no network access
// needed at run time, and the JSON the page polls at /status.
#ifndef LAYERPOOL_COORDINATOR_HTTP_WEB_PAGE_H_
#define LAYERPOOL_COORDINATOR_HTTP_WEB_PAGE_H_

#include <string_view>

#include "coordinator/cluster.h"
#include "coordinator/http/metrics.h"
#include "coordinator/http/openai.h"

namespace layerpool::http {

struct WebAsset {
  std::string_view path;          // "/", "/app.js", ...
  std::string_view content_type;
  std::string_view body;
};

// The asset served at `path`, or null.
const WebAsset* FindWebAsset(std::string_view path);

// The cluster as the page's pipeline view shows it: the model, each stage
// in chain order (worker, device, layers, state and why it is down, memory:
// weights, KV cache, free; busy fraction, hop to the next stage, queue
// depth, tokens processed, KV cells) and the totals (requests in flight and
// queued, tokens generated, mean time to first token). The same sources as
// /metrics. `cluster` null: {"status": "loading"}.
Json StatusJson(Cluster* cluster, const Metrics& metrics, int requests_in_flight);

}  // namespace layerpool::http

#endif  // LAYERPOOL_COORDINATOR_HTTP_WEB_PAGE_H_
