#include "coordinator/inference_service.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/text_stream.h"
#include "proto/convert.h"
#include "proto/version.h"

namespace layerpool {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStopToken: return v1::FINISH_REASON_EOS;
    case FinishReason::kContextFull: return v1::FINISH_REASON_CONTEXT_FULL;
    default: return v1::FINISH_REASON_STOP;
  }
}

}  // namespace

grpc::Status InferenceService::Generate(
    grpc::ServerContext* context, const v1::GenerateRequest* request,
    grpc::ServerWriter<v1::GenerateResponse>* writer) {
  const auto start = Clock::now();
  const std::string served = cluster_.Describe().model().id();
  if (request->model().empty()) {
    return Invalid(absl::StrCat("model: empty; this cluster serves '", served, "'"));
  }
  if (request->model() != served) {
    return Invalid(absl::StrCat("model: '", request->model(),
                                "' is not served here; this cluster serves '", served, "'"));
  }
  if (request->n_predict() < 0) {
    return Invalid(absl::StrCat("n_predict: must not be negative, got ",
                                request->n_predict(), " (0 means no limit)"));
  }
  absl::StatusOr<SamplingParams> sampling = SamplingFromProto(request->sampling());
  if (!sampling.ok()) return ToGrpc(sampling.status());

  GenerateRequest g;
  g.n_predict = request->n_predict();
  g.sampling = *sampling;
  const Tokenizer& tok = cluster_.tokenizer();
  switch (request->prompt_kind_case()) {
    case v1::GenerateRequest::kPrompt:
      g.prompt = tok.Encode(request->prompt(), !request->has_add_special() || request->add_special(),
                            request->parse_special());
      break;
    case v1::GenerateRequest::kPromptTokens:
      g.prompt.assign(request->prompt_tokens().ids().begin(),
                      request->prompt_tokens().ids().end());
      break;
    default:
      return Invalid("prompt: set either prompt (text) or prompt_tokens");
  }
  if (g.prompt.empty()) {
    return Invalid("prompt: no tokens (an empty text, and the model adds no BOS)");
  }
  const int32_t n_prompt = static_cast<int32_t>(g.prompt.size());
  absl::StatusOr<std::unique_ptr<Cluster::Stream>> stream =
      cluster_.Generate(std::move(g));
  if (!stream.ok()) return ToGrpc(stream.status());

  TextStream text({request->stop().begin(), request->stop().end()});
  Clock::time_point first_token{}, last_token{};
  int32_t generated = 0;
  GenerateEvent event;
  while (true) {
    if (!(*stream)->Next(&event, absl::Milliseconds(100))) {
      if (context->IsCancelled()) {
        (*stream)->Cancel();
        return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled");
      }
      continue;
    }
    if (event.done) break;
    last_token = Clock::now();
    if (generated++ == 0) first_token = last_token;
    v1::GenerateResponse response;
    v1::GeneratedToken* t = response.mutable_token();
    t->set_token(event.token);
    t->set_piece(text.Add(tok.TokenToPiece(event.token)));
    if (event.logprob) t->set_logprob(*event.logprob);
    for (const auto& [id, logprob] : event.top_logprobs) {
      v1::TokenLogprob* p = t->add_top_logprobs();
      p->set_token(id);
      p->set_logprob(logprob);
      p->set_piece(tok.TokenToPiece(id));
    }
    if (text.stopped()) (*stream)->Cancel();
    if (!writer->Write(response)) {
      (*stream)->Cancel();
      return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
  }
  if (event.reason == FinishReason::kFailed) return ToGrpc(event.status);
  if (event.reason == FinishReason::kCancelled && !text.stopped()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the request was cancelled");
  }

  v1::GenerateResponse last;
  v1::GenerateDone* done = last.mutable_done();
  done->set_tail(text.Flush());
  done->set_finish_reason(text.stopped() ? v1::FINISH_REASON_STOP : ToProto(event.reason));
  done->set_stop_matched(text.matched());
  v1::Timings* timings = done->mutable_timings();
  timings->set_prompt_tokens(n_prompt);
  timings->set_generated_tokens(generated);
  if (generated > 0) {
    const double prompt_ms = Ms(first_token - start);
    timings->set_prompt_ms(prompt_ms);
    timings->set_time_to_first_token_ms(prompt_ms);
    timings->set_prompt_tokens_per_second(prompt_ms > 0 ? n_prompt / prompt_ms * 1e3 : 0);
    const double decode_ms = Ms(last_token - first_token);
    timings->set_decode_ms(decode_ms);
    timings->set_decode_tokens_per_second(
        decode_ms > 0 ? (generated - 1) / decode_ms * 1e3 : 0);
  }
  writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status InferenceService::Tokenize(grpc::ServerContext*,
                                        const v1::TokenizeRequest* request,
                                        v1::TokenizeResponse* response) {
  const Tokenizer& tok = cluster_.tokenizer();
  for (int32_t id : tok.Encode(request->text(), !request->has_add_special() || request->add_special(),
                               request->parse_special())) {
    response->add_tokens(id);
    if (request->with_pieces()) response->add_pieces(tok.TokenToPiece(id));
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::Detokenize(grpc::ServerContext*,
                                          const v1::DetokenizeRequest* request,
                                          v1::DetokenizeResponse* response) {
  const Tokenizer& tok = cluster_.tokenizer();
  std::vector<int32_t> ids;
  for (int i = 0; i < request->tokens_size(); ++i) {
    const int32_t id = request->tokens(i);
    if (id < 0 || id >= tok.n_vocab()) {
      return Invalid(absl::StrFormat("tokens[%d]: %d is not a token id (vocabulary of %d)",
                                     i, id, tok.n_vocab()));
    }
    if (request->remove_special() && tok.IsControl(id)) continue;
    ids.push_back(id);
  }
  response->set_text(SanitizeUtf8(tok.Decode(ids)));
  return grpc::Status::OK;
}

grpc::Status InferenceService::DescribeCluster(grpc::ServerContext*,
                                               const v1::DescribeClusterRequest*,
                                               v1::ClusterDescription* response) {
  *response = cluster_.Describe();
  return grpc::Status::OK;
}

}  // namespace layerpool
