#include "coordinator/http/web_page.h"

#include <optional>

#include "coordinator/http/web_assets.h"

namespace layerpool::http {

const WebAsset* FindWebAsset(std::string_view path) {
  if (path == "/index.html") path = "/";
  for (const WebAsset& a : kWebAssets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

Json StatusJson(Cluster* c, const Metrics& metrics, int requests_in_flight) {
  Json body = Json::object();
  const Metrics::Totals totals = metrics.totals();
  body["requests_in_flight"] = requests_in_flight;
  body["requests_done"] = totals.requests;
  body["generated_tokens"] = totals.generated_tokens;
  body["mean_time_to_first_token_s"] = totals.mean_time_to_first_token;
  if (c == nullptr) {
    body["status"] = "loading";
    return body;
  }
  const v1::ClusterDescription d = c->Describe();
  const absl::Status health = c->health();
  body["model"] = d.model().id();
  body["architecture"] = d.model().architecture();
  body["n_layer"] = d.model().n_layer();
  body["queued_requests"] = c->queued_requests();
  body["active_sequences"] = c->active_sequences();
  bool all_up = health.ok();
  Json stages = Json::array();
  for (const v1::StageDescription& s : d.stages()) {
    const bool up = s.state() == v1::STAGE_STATE_READY;
    all_up = all_up && up;
    Json stage = Json::object();
    stage["index"] = s.index();
    stage["worker"] = s.worker_address();
    stage["device"] = s.device();
    stage["layers"] = Json::array({s.layers().first(), s.layers().last()});
    stage["state"] = up ? "ready" : "down";
    stage["link_to_next"] = s.link_to_next();
    stage["weight_bytes"] = s.weight_bytes();
    stage["kv_cache_bytes"] = s.kv_cache_bytes();
    stage["memory_used_bytes"] = s.memory_used_bytes();
    stage["memory_free_bytes"] = s.memory_free_bytes();
    std::optional<v1::StatsResponse> stats;
    if (up) {
      absl::StatusOr<v1::StatsResponse> st = c->StageStats(static_cast<int>(s.index()));
      if (st.ok()) stats = std::move(*st);
    }
    if (stats) {
      stage["busy_fraction"] = stats->busy_fraction();
      stage["queue_depth"] = stats->queue_depth();
      stage["tokens_processed"] = stats->tokens_processed();
      stage["active_sequences"] = stats->active_sequences();
      stage["kv_cells_used"] = stats->kv_cells_used();
      stage["kv_cells_total"] = stats->kv_cells_total();
      stage["window_ms"] = stats->window_ms();
      if (stats->hop_latency().count() > 0) stage["hop_us"] = stats->hop_latency().mean_us();
      if (stats->memory_free_bytes() > 0) stage["memory_free_bytes"] = stats->memory_free_bytes();
    }
    if (!up) {
      stage["reason"] = health.ok() ? "its worker does not answer the health check"
                                    : std::string(health.message());
    }
    stages.push_back(std::move(stage));
  }
  body["stages"] = std::move(stages);
  body["status"] = all_up ? "ready" : "degraded";
  if (!health.ok()) body["reason"] = std::string(health.message());
  return body;
}

}  // namespace layerpool::http
