// OpenAI's request and response shapes, as pure functions: parsing and
// checking a /v1/chat/completions or /v1/completions body, building the
// answers and stream chunks, and turning an absl::Status into OpenAI's error
// object with its HTTP status. No I/O here (coordinator/http/http_server.h
// does that), so every rule is unit-tested.
//
// Sampling fields not given take llama.cpp's defaults (temperature 0.8,
// top_k 40, top_p 0.95, min_p 0.05), as llama-server does; OpenAI's own
// defaults (temperature 1, top_p 1, no top_k/min_p) are one request away.
#ifndef LAYERPOOL_COORDINATOR_HTTP_OPENAI_H_
#define LAYERPOOL_COORDINATOR_HTTP_OPENAI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/scheduler.h"
#include "model/sampling/sampler.h"
#include "nlohmann/json.hpp"

namespace layerpool::http {

using Json = nlohmann::ordered_json;

struct CompletionRequest {
  bool chat = false;
  std::string model;
  Json messages;                        // chat: the array as sent
  std::optional<std::string> prompt;    // completions: text ...
  std::vector<int32_t> prompt_tokens;   // ... or token ids
  int64_t max_tokens = 0;               // 0: until a stop or the context ends
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  bool logprobs = false;
  int top_logprobs = 0;
};

// Parses and checks a request body. InvalidArgument with the message
// "FIELD: why" (see ErrorFromStatus, which turns FIELD into `param`).
[[nodiscard]] absl::StatusOr<CompletionRequest> ParseCompletionRequest(const std::string& body,
                                                                       bool chat);

struct EmbeddingRequest {
  std::string model;
  // Each input: text, or token ids (then `text` is empty).
  struct Input {
    std::string text;
    std::vector<int32_t> tokens;
  };
  std::vector<Input> inputs;
  bool base64 = false;  // encoding_format
  int64_t dimensions = 0;  // 0: not given
};

// `input` as a string, an array of strings, an array of token ids, or an
// array of arrays of token ids (at most 2048 inputs, none empty).
[[nodiscard]] absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(const std::string& body);

// Little-endian float32 bytes in base64, as OpenAI's encoding_format base64.
std::string EmbeddingBase64(const std::vector<float>& v);

// NotFound naming the served model when a request names another; OK when
// it names none (as llama-server, which ignores the field).
[[nodiscard]] absl::Status CheckModel(const std::string& requested, const std::string& served);

// What an error looks like on the wire.
struct ApiError {
  int http_status = 500;
  std::string type;     // invalid_request_error, authentication_error, ...
  std::string code;     // e.g. context_length_exceeded; may be empty
  std::string param;    // the field at fault; may be empty
  std::string message;
};

// InvalidArgument 400 (param from a "field: " prefix), NotFound 404,
// Unauthenticated 401, ResourceExhausted 429, Unavailable 503,
// FailedPrecondition 400 (a chat template that refuses the conversation),
// OutOfRange 400 with code context_length_exceeded, Cancelled 499, others 500.
ApiError ErrorFromStatus(const absl::Status& status);
Json ErrorBody(const ApiError& error);

// "stop", "length" (max_tokens or the context window) for a finished
// generation.
std::string FinishReasonName(FinishReason reason, bool stop_string_matched);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};
Json UsageJson(const Usage& usage);

// One token's logprob entry in the chat shape: {token, logprob, bytes,
// top_logprobs: [...]} with each token's text.
struct TokenLogprobText {
  std::string text;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;
};
Json ChatLogprobJson(const TokenLogprobText& t);

// The object every answer and chunk starts with.
Json ResponseHead(bool chat, bool chunk, const std::string& id, int64_t created,
                  const std::string& model);

}  // namespace layerpool::http

#endif  // LAYERPOOL_COORDINATOR_HTTP_OPENAI_H_
