#include "coordinator/http/openai.h"

#include <cmath>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace layerpool::http {
namespace {

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// A number field in [lo, hi], or nullopt when absent or null.
absl::StatusOr<std::optional<double>> Number(const Json& body, const std::string& field,
                                             double lo, double hi) {
  if (!body.contains(field) || body[field].is_null()) return std::nullopt;
  if (!body[field].is_number()) return Bad(field, "must be a number");
  const double v = body[field].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return Bad(field, absl::StrFormat("%g is outside [%g, %g]", v, lo, hi));
  }
  return v;
}

absl::StatusOr<std::optional<int64_t>> Integer(const Json& body, const std::string& field,
                                               int64_t lo, int64_t hi) {
  if (!body.contains(field) || body[field].is_null()) return std::nullopt;
  const Json& v = body[field];
  if (!v.is_number_integer() &&
      !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    return Bad(field, "must be an integer");
  }
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    return Bad(field, absl::StrFormat("%.0f is outside [%d, %d]", d, lo, hi));
  }
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(d);
}

absl::StatusOr<bool> Boolean(const Json& body, const std::string& field) {
  if (!body.contains(field) || body[field].is_null()) return false;
  if (!body[field].is_boolean()) return Bad(field, "must be true or false");
  return body[field].get<bool>();
}

absl::Status ParseSampling(const Json& body, SamplingParams* s) {
  LP_ASSIGN_OR_RETURN(auto temperature, Number(body, "temperature", 0, 100));
  if (temperature) s->temperature = static_cast<float>(*temperature);
  LP_ASSIGN_OR_RETURN(auto top_p, Number(body, "top_p", 0, 1));
  if (top_p) s->top_p = static_cast<float>(*top_p);
  LP_ASSIGN_OR_RETURN(auto top_k, Integer(body, "top_k", -1, 1 << 30));
  if (top_k) s->top_k = static_cast<int32_t>(*top_k);
  LP_ASSIGN_OR_RETURN(auto min_p, Number(body, "min_p", 0, 1));
  if (min_p) s->min_p = static_cast<float>(*min_p);
  LP_ASSIGN_OR_RETURN(auto typical_p, Number(body, "typical_p", 0, 1));
  if (typical_p) s->typical_p = static_cast<float>(*typical_p);
  LP_ASSIGN_OR_RETURN(auto tfs_z, Number(body, "tfs_z", 0, 1));
  if (tfs_z) s->tfs_z = static_cast<float>(*tfs_z);
  LP_ASSIGN_OR_RETURN(auto repeat_penalty, Number(body, "repeat_penalty", 1e-6, 100));
  if (repeat_penalty) s->repeat_penalty = static_cast<float>(*repeat_penalty);
  LP_ASSIGN_OR_RETURN(auto repeat_last_n, Integer(body, "repeat_last_n", -1, 1 << 30));
  if (repeat_last_n) s->repeat_last_n = static_cast<int32_t>(*repeat_last_n);
  LP_ASSIGN_OR_RETURN(auto presence, Number(body, "presence_penalty", -2, 2));
  if (presence) s->presence_penalty = static_cast<float>(*presence);
  LP_ASSIGN_OR_RETURN(auto frequency, Number(body, "frequency_penalty", -2, 2));
  if (frequency) s->frequency_penalty = static_cast<float>(*frequency);
  // -1 is how SillyTavern and llama-server users ask for a random seed.
  LP_ASSIGN_OR_RETURN(auto seed, Integer(body, "seed", -1, 0xFFFFFFFEll));
  if (seed) s->seed = *seed < 0 ? kRandomSeed : static_cast<uint64_t>(*seed);
  return absl::OkStatus();
}

// Fields we do not implement are refused rather than ignored, so a client
// never believes it got what it asked for.
absl::Status RefuseUnsupported(const Json& body) {
  auto present = [&](const char* f) {
    return body.contains(f) && !body[f].is_null() &&
           !(body[f].is_array() && body[f].empty()) && !(body[f].is_object() && body[f].empty());
  };
  if (present("tools") || present("functions")) {
    return Bad(body.contains("tools") ? "tools" : "functions", "tool calling is not supported yet");
  }
  if (present("tool_choice") && body["tool_choice"] != "none" && body["tool_choice"] != "auto") {
    return Bad("tool_choice", "tool calling is not supported yet");
  }
  if (present("logit_bias")) return Bad("logit_bias", "is not supported");
  if (present("suffix")) return Bad("suffix", "is not supported");
  if (body.contains("echo") && body["echo"] == true) return Bad("echo", "is not supported");
  if (body.contains("best_of") && body["best_of"].is_number() && body["best_of"] != 1) {
    return Bad("best_of", "only 1 is supported");
  }
  if (present("response_format") &&
      !(body["response_format"].is_object() && body["response_format"].value("type", "") == "text")) {
    return Bad("response_format", "only {\"type\": \"text\"} is supported");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(const std::string& body_text, bool chat) {
  Json body;
  try {
    body = Json::parse(body_text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("body: not valid JSON (", e.what(), ")"));
  }
  if (!body.is_object()) return Bad("body", "must be a JSON object");
  CompletionRequest r;
  r.chat = chat;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) return Bad("model", "must be a string");
    r.model = body["model"].get<std::string>();
  }
  LP_RETURN_IF_ERROR(RefuseUnsupported(body));

  if (chat) {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      return Bad("messages", "must be a non-empty array of {role, content}");
    }
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const Json& m = body["messages"][i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return Bad(absl::StrFormat("messages[%d]", i), "needs a string 'role'");
      }
      if (m.contains("content") && !m["content"].is_string() && !m["content"].is_array() &&
          !m["content"].is_null()) {
        return Bad(absl::StrFormat("messages[%d].content", i),
                   "must be a string or an array of text parts");
      }
    }
    r.messages = body["messages"];
  } else {
    if (!body.contains("prompt")) return Bad("prompt", "is required");
    const Json& p = body["prompt"];
    if (p.is_string()) {
      r.prompt = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt = p[0].get<std::string>();
    } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
      for (size_t i = 0; i < p.size(); ++i) {
        if (!p[i].is_number_integer()) {
          return Bad(absl::StrFormat("prompt[%d]", i), "must be a token id (an integer)");
        }
        const int64_t id = p[i].get<int64_t>();
        if (id < 0 || id > INT32_MAX) {
          return Bad(absl::StrFormat("prompt[%d]", i), absl::StrCat(id, " is not a token id"));
        }
        r.prompt_tokens.push_back(static_cast<int32_t>(id));
      }
    } else if (p.is_array() && p.size() > 1) {
      return Bad("prompt", "several prompts in one request are not supported; send one each");
    } else {
      return Bad("prompt", "must be a string or an array of token ids");
    }
  }

  LP_ASSIGN_OR_RETURN(auto n, Integer(body, "n", 1, 1 << 20));
  if (n && *n != 1) return Bad("n", "only 1 choice per request is supported");
  LP_ASSIGN_OR_RETURN(auto max_tokens, Integer(body, "max_tokens", 1, 1 << 30));
  LP_ASSIGN_OR_RETURN(auto max_completion, Integer(body, "max_completion_tokens", 1, 1 << 30));
  if (max_completion) max_tokens = max_completion;
  r.max_tokens = max_tokens.value_or(0);
  // llama-server's name for it.
  LP_ASSIGN_OR_RETURN(auto n_predict, Integer(body, "n_predict", -1, 1 << 30));
  if (!max_tokens && n_predict && *n_predict > 0) r.max_tokens = *n_predict;

  LP_RETURN_IF_ERROR(ParseSampling(body, &r.sampling));

  if (body.contains("stop") && !body["stop"].is_null()) {
    const Json& s = body["stop"];
    if (s.is_string()) {
      if (!s.get<std::string>().empty()) r.stop.push_back(s.get<std::string>());
    } else if (s.is_array()) {
      if (s.size() > 16) return Bad("stop", "at most 16 stop strings");
      for (const Json& e : s) {
        if (!e.is_string()) return Bad("stop", "must be a string or an array of strings");
        if (!e.get<std::string>().empty()) r.stop.push_back(e.get<std::string>());
      }
    } else {
      return Bad("stop", "must be a string or an array of strings");
    }
  }

  LP_ASSIGN_OR_RETURN(r.stream, Boolean(body, "stream"));
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    if (!body["stream_options"].is_object()) return Bad("stream_options", "must be an object");
    LP_ASSIGN_OR_RETURN(r.include_usage, Boolean(body["stream_options"], "include_usage"));
  }

  if (chat) {
    LP_ASSIGN_OR_RETURN(r.logprobs, Boolean(body, "logprobs"));
    LP_ASSIGN_OR_RETURN(auto top, Integer(body, "top_logprobs", 0, 20));
    if (top && !r.logprobs) return Bad("top_logprobs", "needs logprobs: true");
    r.top_logprobs = static_cast<int>(top.value_or(0));
  } else {
    // The legacy completions API: logprobs is the number of alternatives.
    LP_ASSIGN_OR_RETURN(auto top, Integer(body, "logprobs", 0, 5));
    r.logprobs = top.has_value();
    r.top_logprobs = static_cast<int>(top.value_or(0));
  }
  // Logprobs come from the last stage's sampler: at least the chosen one.
  if (r.logprobs) r.sampling.n_probs = std::max(r.top_logprobs, 1);
  return r;
}

absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(const std::string& body_text) {
  Json body;
  try {
    body = Json::parse(body_text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("body: not valid JSON (", e.what(), ")"));
  }
  if (!body.is_object()) return Bad("body", "must be a JSON object");
  EmbeddingRequest r;
  if (body.contains("model") && !body["model"].is_null()) {
    if (!body["model"].is_string()) return Bad("model", "must be a string");
    r.model = body["model"].get<std::string>();
  }
  if (!body.contains("input")) return Bad("input", "is required");
  auto tokens = [](const Json& a, const std::string& field) -> absl::StatusOr<std::vector<int32_t>> {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_number_integer() || a[i].get<int64_t>() < 0 || a[i].get<int64_t>() > INT32_MAX) {
        return Bad(absl::StrFormat("%s[%d]", field, i), "must be a token id");
      }
      ids.push_back(static_cast<int32_t>(a[i].get<int64_t>()));
    }
    return ids;
  };
  const Json& in = body["input"];
  if (in.is_string()) {
    r.inputs.push_back({in.get<std::string>(), {}});
  } else if (in.is_array() && !in.empty() && in[0].is_number_integer()) {
    LP_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokens(in, "input"));
    r.inputs.push_back({"", std::move(ids)});
  } else if (in.is_array() && !in.empty()) {
    if (in.size() > 2048) return Bad("input", "at most 2048 inputs per request");
    for (size_t i = 0; i < in.size(); ++i) {
      const std::string field = absl::StrFormat("input[%d]", i);
      if (in[i].is_string()) {
        r.inputs.push_back({in[i].get<std::string>(), {}});
      } else if (in[i].is_array() && !in[i].empty()) {
        LP_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokens(in[i], field));
        r.inputs.push_back({"", std::move(ids)});
      } else {
        return Bad(field, "must be a string or a non-empty array of token ids");
      }
    }
  } else {
    return Bad("input", "must be a string, an array of strings or token ids");
  }
  for (size_t i = 0; i < r.inputs.size(); ++i) {
    if (r.inputs[i].text.empty() && r.inputs[i].tokens.empty()) {
      return Bad(r.inputs.size() == 1 ? "input" : absl::StrFormat("input[%d]", i), "is empty");
    }
  }
  if (body.contains("encoding_format") && !body["encoding_format"].is_null()) {
    const Json& f = body["encoding_format"];
    if (f == "base64") {
      r.base64 = true;
    } else if (f != "float") {
      return Bad("encoding_format", "must be float or base64");
    }
  }
  LP_ASSIGN_OR_RETURN(auto dims, Integer(body, "dimensions", 1, 1 << 20));
  r.dimensions = dims.value_or(0);
  return r;
}

std::string EmbeddingBase64(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xFF);
  }
  return absl::Base64Escape(bytes);
}

absl::Status CheckModel(const std::string& requested, const std::string& served) {
  if (requested.empty() || requested == served) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("the model '", requested,
                                          "' is not served here; this server serves '", served,
                                          "' (GET /v1/models)"));
}

namespace {

// How each status reaches the client: HTTP status, OpenAI's type, code and
// param (the last two may be empty).
struct ErrorMapping {
  absl::StatusCode status;
  int http_status;
  const char* type;
  const char* code;
  const char* param;
};
constexpr ErrorMapping kErrorMappings[] = {
    {absl::StatusCode::kInvalidArgument, 400, "invalid_request_error", "", ""},
    // A chat template that refuses the conversation.
    {absl::StatusCode::kFailedPrecondition, 400, "invalid_request_error", "", ""},
    {absl::StatusCode::kOutOfRange, 400, "invalid_request_error", "context_length_exceeded", ""},
    {absl::StatusCode::kNotFound, 404, "invalid_request_error", "model_not_found", "model"},
    {absl::StatusCode::kUnauthenticated, 401, "authentication_error", "invalid_api_key", ""},
    {absl::StatusCode::kResourceExhausted, 429, "rate_limit_error", "queue_full", ""},
    {absl::StatusCode::kUnavailable, 503, "server_error", "unavailable", ""},
    {absl::StatusCode::kCancelled, 499, "cancelled", "", ""},
};

}  // namespace

ApiError ErrorFromStatus(const absl::Status& status) {
  ApiError e{500, "server_error", "", "", std::string(status.message())};
  for (const ErrorMapping& m : kErrorMappings) {
    if (m.status != status.code()) continue;
    e.http_status = m.http_status;
    e.type = m.type;
    e.code = m.code;
    e.param = m.param;
  }
  if (e.http_status == 400 && e.param.empty()) {
    // "field: why" names the field.
    const size_t colon = e.message.find(": ");
    if (colon != std::string::npos && colon < 64 &&
        e.message.find(' ') >= colon) {
      e.param = e.message.substr(0, colon);
    }
  }
  return e;
}

Json ErrorBody(const ApiError& error) {
  Json inner = Json::object();
  inner["message"] = error.message;
  inner["type"] = error.type;
  inner["param"] = error.param.empty() ? Json() : Json(error.param);
  inner["code"] = error.code.empty() ? Json() : Json(error.code);
  Json body = Json::object();
  body["error"] = std::move(inner);
  return body;
}

std::string FinishReasonName(FinishReason reason, bool stop_string_matched) {
  if (stop_string_matched || reason == FinishReason::kStopToken) return "stop";
  return "length";
}

Json UsageJson(const Usage& usage) {
  Json u = Json::object();
  u["prompt_tokens"] = usage.prompt_tokens;
  u["completion_tokens"] = usage.completion_tokens;
  u["total_tokens"] = usage.prompt_tokens + usage.completion_tokens;
  return u;
}

Json ChatLogprobJson(const TokenLogprobText& t) {
  auto bytes = [](const std::string& s) {
    Json b = Json::array();
    for (unsigned char c : s) b.push_back(static_cast<int>(c));
    return b;
  };
  Json entry = Json::object();
  entry["token"] = t.text;
  entry["logprob"] = t.logprob;
  entry["bytes"] = bytes(t.text);
  Json top = Json::array();
  for (const auto& [text, logprob] : t.top) {
    Json alt = Json::object();
    alt["token"] = text;
    alt["logprob"] = logprob;
    alt["bytes"] = bytes(text);
    top.push_back(std::move(alt));
  }
  entry["top_logprobs"] = std::move(top);
  return entry;
}

Json ResponseHead(bool chat, bool chunk, const std::string& id, int64_t created,
                  const std::string& model) {
  Json head = Json::object();
  head["id"] = id;
  head["object"] = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  head["created"] = created;
  head["model"] = model;
  return head;
}

}  // namespace layerpool::http
