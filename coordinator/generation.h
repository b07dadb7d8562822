// One request's generation as text: runs a GenerateRequest on the Cluster
// and turns its tokens into whole-character pieces with stop strings cut
// out (coordinator/text_stream.h), with the timings of the call. The gRPC
// Inference service and the HTTP API both serve requests through it, so the
// two give the same text for the same request.
#ifndef LAYERPOOL_COORDINATOR_GENERATION_H_
#define LAYERPOOL_COORDINATOR_GENERATION_H_

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/cluster.h"

namespace layerpool {

// One generated token as a client sees it.
struct TokenOut {
  int32_t token = 0;
  std::string piece;  // valid UTF-8, possibly empty (see TextStream)
  std::optional<float> logprob;
  std::vector<std::pair<int32_t, float>> top_logprobs;
};

struct GenerationSummary {
  // kStopToken, kLength, kContextFull; `stop_matched` set when a stop string
  // ended it (the reason is then kCancelled, from cancelling the sequence).
  FinishReason reason = FinishReason::kLength;
  std::string stop_matched;
  std::string tail;  // text no piece carried (TextStream::Flush)
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  double time_to_first_token_ms = 0;  // from the call to the first token
  double decode_ms = 0;               // first token to last
};

// Reads a started request's stream to its end (`start` is when the request
// was received, for time to first token; `prompt_tokens` its length). The
// rest as GenerateText.
[[nodiscard]] absl::StatusOr<GenerationSummary> StreamText(
    Cluster& cluster, Cluster::Stream& stream, int32_t prompt_tokens,
    std::chrono::steady_clock::time_point start, std::vector<std::string> stop,
    const std::function<bool(const TokenOut&)>& on_token,
    const std::function<bool()>& cancelled = nullptr);

// Runs `request` to its end. `on_token` sees each token in order; returning
// false ends the request (the client went away) and the call returns
// Cancelled. `cancelled` is polled every 100 ms while no token arrives.
// Errors: those of Cluster::Generate (InvalidArgument, ResourceExhausted,
// Unavailable), and the status of a request that failed mid-way.
[[nodiscard]] absl::StatusOr<GenerationSummary> GenerateText(
    Cluster& cluster, GenerateRequest request, std::vector<std::string> stop,
    const std::function<bool(const TokenOut&)>& on_token,
    const std::function<bool()>& cancelled = nullptr);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_GENERATION_H_
