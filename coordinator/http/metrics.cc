#include "coordinator/http/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool::http {
namespace {

// Label values escape backslash, quote and newline.
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Header(std::string* out, const std::string& name, const std::string& type,
            const std::string& help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

std::string Num(double v) { return absl::StrFormat("%.17g", v); }

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    absl::StrAppend(out, name, "_bucket{le=\"", Num(bounds_[i]), "\"} ", cumulative, "\n");
  }
  absl::StrAppend(out, name, "_bucket{le=\"+Inf\"} ", count_, "\n");
  absl::StrAppend(out, name, "_sum ", Num(sum_), "\n", name, "_count ", count_, "\n");
}

Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      token_latency_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void Metrics::CountRequest(const std::string& endpoint, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::AddTokens(int64_t prompt, int64_t generated) {
  std::lock_guard lock(mu_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  generated_tokens_ += static_cast<uint64_t>(generated);
}

void Metrics::ObserveTimeToFirstToken(double seconds) {
  std::lock_guard lock(mu_);
  ttft_.Observe(seconds);
}

void Metrics::ObserveTokenLatency(double seconds) {
  std::lock_guard lock(mu_);
  token_latency_.Observe(seconds);
}

Metrics::Totals Metrics::totals() const {
  std::lock_guard lock(mu_);
  Totals t;
  t.generated_tokens = generated_tokens_;
  for (const auto& [key, n] : requests_) {
    if (key.first == "/v1/chat/completions" || key.first == "/v1/completions") t.requests += n;
  }
  t.mean_time_to_first_token = ttft_.mean();
  return t;
}

std::string Metrics::Render(const ClusterSnapshot& c) const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    Header(&out, "layerpool_http_requests_total", "counter", "HTTP requests by endpoint and status.");
    for (const auto& [key, n] : requests_) {
      absl::StrAppend(&out, "layerpool_http_requests_total{endpoint=\"", Escape(key.first),
                      "\",status=\"", key.second, "\"} ", n, "\n");
    }
    Header(&out, "layerpool_prompt_tokens_total", "counter", "Prompt tokens of finished requests.");
    absl::StrAppend(&out, "layerpool_prompt_tokens_total ", prompt_tokens_, "\n");
    Header(&out, "layerpool_generated_tokens_total", "counter", "Tokens generated.");
    absl::StrAppend(&out, "layerpool_generated_tokens_total ", generated_tokens_, "\n");
    Header(&out, "layerpool_time_to_first_token_seconds", "histogram",
           "From receiving a request to its first generated token.");
    ttft_.Render("layerpool_time_to_first_token_seconds", &out);
    Header(&out, "layerpool_token_latency_seconds", "histogram",
           "Time between consecutive generated tokens of a request.");
    token_latency_.Render("layerpool_token_latency_seconds", &out);
  }
  Header(&out, "layerpool_requests_in_flight", "gauge", "HTTP generation requests running now.");
  absl::StrAppend(&out, "layerpool_requests_in_flight ", c.requests_in_flight, "\n");
  Header(&out, "layerpool_queue_depth", "gauge", "Requests waiting for a sequence slot.");
  absl::StrAppend(&out, "layerpool_queue_depth ", c.queued_requests, "\n");
  Header(&out, "layerpool_sequences_active", "gauge",
         "Sequences admitted to the pipeline (prefilling or decoding).");
  absl::StrAppend(&out, "layerpool_sequences_active ", c.active_sequences, "\n");

  const auto& stages = c.description.stages();
  auto per_stage = [&](const std::string& name, const std::string& type, const std::string& help,
                       auto value) {
    Header(&out, name, type, help);
    for (int i = 0; i < stages.size(); ++i) {
      const std::optional<v1::StatsResponse>& s =
          static_cast<size_t>(i) < c.stats.size() ? c.stats[i] : std::nullopt;
      std::optional<double> v = value(i, s);
      if (!v) continue;
      absl::StrAppend(&out, name, "{stage=\"", i, "\",worker=\"",
                      Escape(stages[i].worker_address()), "\"} ", Num(*v), "\n");
    }
  };
  using Stats = std::optional<v1::StatsResponse>;
  per_stage("layerpool_stage_up", "gauge", "1 while the stage's worker answers, else 0.",
            [&](int i, const Stats&) -> std::optional<double> {
              return stages[i].state() == v1::STAGE_STATE_READY ? 1 : 0;
            });
  per_stage("layerpool_stage_busy_fraction", "gauge",
            "Fraction of the recent window the stage spent computing.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return s->busy_fraction();
            });
  per_stage("layerpool_stage_hop_latency_seconds", "gauge",
            "Mean one-way latency of the link to the next stage over the recent window.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s || s->hop_latency().count() == 0) return std::nullopt;
              return s->hop_latency().mean_us() * 1e-6;
            });
  per_stage("layerpool_stage_queue_depth", "gauge", "Micro-batches waiting for compute.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return s->queue_depth();
            });
  per_stage("layerpool_stage_sequences", "gauge", "Sequences holding KV cache on the stage.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return s->active_sequences();
            });
  per_stage("layerpool_stage_kv_cells_used", "gauge", "KV cache cells (token slots) in use.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return static_cast<double>(s->kv_cells_used());
            });
  per_stage("layerpool_stage_kv_cells_total", "gauge", "KV cache cells (token slots) in all.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return static_cast<double>(s->kv_cells_total());
            });
  per_stage("layerpool_stage_memory_used_bytes", "gauge", "Memory the stage uses.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return static_cast<double>(s->memory_used_bytes());
            });
  per_stage("layerpool_stage_memory_free_bytes", "gauge", "Memory still free on the stage's device.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return static_cast<double>(s->memory_free_bytes());
            });
  per_stage("layerpool_stage_tokens_processed_total", "counter", "Token rows the stage computed.",
            [](int, const Stats& s) -> std::optional<double> {
              if (!s) return std::nullopt;
              return static_cast<double>(s->tokens_processed());
            });
  per_stage("layerpool_stage_activation_bytes_sent_total", "counter",
            "Activation payload sent to the next stage (token rows x hidden size x element size).",
            [&](int i, const Stats& s) -> std::optional<double> {
              if (!s || i + 1 == stages.size()) return std::nullopt;
              return static_cast<double>(s->tokens_processed()) *
                     static_cast<double>(c.activation_bytes_per_token);
            });
  return out;
}

}  // namespace layerpool::http
