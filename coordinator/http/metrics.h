// The coordinator's Prometheus metrics, in the text exposition format
// (version 0.0.4), written by hand: counters and histograms the HTTP layer
// updates as requests run, plus gauges read from the cluster and its stages
// when /metrics is scraped.
//
// Thread-safe: every method may be called from any thread.
#ifndef LAYERPOOL_COORDINATOR_HTTP_METRICS_H_
#define LAYERPOOL_COORDINATOR_HTTP_METRICS_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "layerpool/v1/inference.pb.h"
#include "layerpool/v1/worker.pb.h"

namespace layerpool::http {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // Appends NAME_bucket{le=...}, NAME_sum and NAME_count lines.
  void Render(const std::string& name, std::string* out) const;
  double mean() const { return count_ == 0 ? 0 : sum_ / static_cast<double>(count_); }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What the cluster looks like at scrape time. `stats[i]` is empty when
// stage i did not answer.
struct ClusterSnapshot {
  v1::ClusterDescription description;
  std::vector<std::optional<v1::StatsResponse>> stats;
  int64_t activation_bytes_per_token = 0;  // what one token's hop carries
  int requests_in_flight = 0;
  int queued_requests = 0;    // waiting for a sequence slot
  int active_sequences = 0;   // admitted, prefilling or decoding
};

class Metrics {
 public:
  Metrics();

  // One finished HTTP request: its endpoint ("/v1/chat/completions") and
  // status code.
  void CountRequest(const std::string& endpoint, int status);
  void AddTokens(int64_t prompt, int64_t generated);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveTokenLatency(double seconds);

  std::string Render(const ClusterSnapshot& cluster) const;

  // The counters the web page's status shows.
  struct Totals {
    uint64_t generated_tokens = 0;
    uint64_t requests = 0;  // generation requests finished (any status)
    double mean_time_to_first_token = 0;  // seconds; 0 before any
  };
  Totals totals() const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  Histogram ttft_;
  Histogram token_latency_;
};

}  // namespace layerpool::http

#endif  // LAYERPOOL_COORDINATOR_HTTP_METRICS_H_
