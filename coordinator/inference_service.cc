#include "coordinator/inference_service.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/api_keys.h"
#include "coordinator/generation.h"
#include "coordinator/text_stream.h"
#include "proto/convert.h"
#include "proto/version.h"

namespace layerpool {
namespace {

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

grpc::Status InferenceService::Authorize(const grpc::ServerContext* context) const {
  if (api_keys_.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this server needs an API key: send metadata 'authorization: Bearer KEY'");
  }
  if (!KeyMatches(std::string(it->second.data(), it->second.size()), api_keys_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the API key is not valid");
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::Generate(
    grpc::ServerContext* context, const v1::GenerateRequest* request,
    grpc::ServerWriter<v1::GenerateResponse>* writer) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  const std::string& served = cluster_.model_id();
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
  absl::StatusOr<GenerationSummary> summary = GenerateText(
      cluster_, std::move(g), {request->stop().begin(), request->stop().end()},
      [&](const TokenOut& out) {
        v1::GenerateResponse response;
        v1::GeneratedToken* t = response.mutable_token();
        t->set_token(out.token);
        t->set_piece(out.piece);
        if (out.logprob) t->set_logprob(*out.logprob);
        for (const auto& [id, logprob] : out.top_logprobs) {
          v1::TokenLogprob* p = t->add_top_logprobs();
          p->set_token(id);
          p->set_logprob(logprob);
          p->set_piece(tok.TokenToPiece(id));
        }
        return writer->Write(response);
      },
      [context] { return context->IsCancelled(); });
  if (!summary.ok()) return ToGrpc(summary.status());

  v1::GenerateResponse last;
  v1::GenerateDone* done = last.mutable_done();
  done->set_tail(summary->tail);
  done->set_finish_reason(!summary->stop_matched.empty() ? v1::FINISH_REASON_STOP
                                                         : ToProto(summary->reason));
  done->set_stop_matched(summary->stop_matched);
  v1::Timings* timings = done->mutable_timings();
  const int32_t n_prompt = summary->prompt_tokens, generated = summary->generated_tokens;
  timings->set_prompt_tokens(n_prompt);
  timings->set_generated_tokens(generated);
  if (generated > 0) {
    const double prompt_ms = summary->time_to_first_token_ms;
    timings->set_prompt_ms(prompt_ms);
    timings->set_time_to_first_token_ms(prompt_ms);
    timings->set_prompt_tokens_per_second(prompt_ms > 0 ? n_prompt / prompt_ms * 1e3 : 0);
    timings->set_decode_ms(summary->decode_ms);
    timings->set_decode_tokens_per_second(
        summary->decode_ms > 0 ? (generated - 1) / summary->decode_ms * 1e3 : 0);
  }
  writer->Write(last);
  return grpc::Status::OK;
}

grpc::Status InferenceService::Tokenize(grpc::ServerContext* context,
                                        const v1::TokenizeRequest* request,
                                        v1::TokenizeResponse* response) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  const Tokenizer& tok = cluster_.tokenizer();
  for (int32_t id : tok.Encode(request->text(), !request->has_add_special() || request->add_special(),
                               request->parse_special())) {
    response->add_tokens(id);
    if (request->with_pieces()) response->add_pieces(tok.TokenToPiece(id));
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::Detokenize(grpc::ServerContext* context,
                                          const v1::DetokenizeRequest* request,
                                          v1::DetokenizeResponse* response) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
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

grpc::Status InferenceService::DescribeCluster(grpc::ServerContext* context,
                                               const v1::DescribeClusterRequest*,
                                               v1::ClusterDescription* response) {
  if (grpc::Status auth = Authorize(context); !auth.ok()) return auth;
  *response = cluster_.Describe();
  return grpc::Status::OK;
}

}  // namespace layerpool
