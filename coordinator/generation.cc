#include "coordinator/generation.h"

#include "coordinator/text_stream.h"

namespace layerpool {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

absl::StatusOr<GenerationSummary> GenerateText(
    Cluster& cluster, GenerateRequest request, std::vector<std::string> stop,
    const std::function<bool(const TokenOut&)>& on_token,
    const std::function<bool()>& cancelled) {
  const auto start = Clock::now();
  const int32_t n_prompt = static_cast<int32_t>(request.prompt.size());
  absl::StatusOr<std::unique_ptr<Cluster::Stream>> stream = cluster.Generate(std::move(request));
  if (!stream.ok()) return stream.status();
  return StreamText(cluster, **stream, n_prompt, start, std::move(stop), on_token, cancelled);
}

absl::StatusOr<GenerationSummary> StreamText(
    Cluster& cluster, Cluster::Stream& stream_ref, int32_t prompt_tokens, Clock::time_point start,
    std::vector<std::string> stop, const std::function<bool(const TokenOut&)>& on_token,
    const std::function<bool()>& cancelled) {
  GenerationSummary summary;
  summary.prompt_tokens = prompt_tokens;
  Cluster::Stream* stream = &stream_ref;

  const Tokenizer& tok = cluster.tokenizer();
  TextStream text(std::move(stop));
  Clock::time_point first_token{}, last_token{};
  GenerateEvent event;
  while (true) {
    if (!stream->Next(&event, absl::Milliseconds(100))) {
      if (cancelled && cancelled()) {
        stream->Cancel();
        return absl::CancelledError("the client cancelled");
      }
      continue;
    }
    if (event.done) break;
    last_token = Clock::now();
    if (summary.generated_tokens++ == 0) first_token = last_token;
    TokenOut out;
    out.token = event.token;
    out.piece = text.Add(tok.TokenToPiece(event.token));
    out.logprob = event.logprob;
    out.top_logprobs = std::move(event.top_logprobs);
    if (text.stopped()) stream->Cancel();
    if (!on_token(out)) {
      stream->Cancel();
      return absl::CancelledError("the client went away");
    }
  }
  if (event.reason == FinishReason::kFailed) return event.status;
  if (event.reason == FinishReason::kCancelled && !text.stopped()) {
    return absl::CancelledError("the request was cancelled");
  }
  summary.reason = event.reason;
  summary.stop_matched = text.matched();
  summary.tail = text.Flush();
  if (summary.generated_tokens > 0) {
    summary.time_to_first_token_ms = Ms(first_token - start);
    summary.decode_ms = Ms(last_token - first_token);
  }
  return summary;
}

}  // namespace layerpool
