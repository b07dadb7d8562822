#include "coordinator/http/openai.h"

#include "coordinator/api_keys.h"
#include "coordinator/http/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool::http {
namespace {

using testing::HasSubstr;

TEST(ParseCompletionRequest, ChatWithEveryField) {
  auto r = ParseCompletionRequest(R"({
      "model": "m", "messages": [{"role": "user", "content": "hi"}],
      "max_completion_tokens": 7, "temperature": 0, "top_p": 0.5, "top_k": 3, "min_p": 0.1,
      "typical_p": 0.9, "tfs_z": 0.8, "repeat_penalty": 1.1, "repeat_last_n": 32,
      "presence_penalty": 0.5, "frequency_penalty": -0.5, "seed": 42, "stop": ["\n", "x"],
      "stream": true, "stream_options": {"include_usage": true}, "n": 1,
      "logprobs": true, "top_logprobs": 3})", true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
  EXPECT_EQ(r->max_tokens, 7);
  EXPECT_EQ(r->sampling.temperature, 0.0f);
  EXPECT_EQ(r->sampling.top_k, 3);
  EXPECT_FLOAT_EQ(r->sampling.top_p, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r->sampling.typical_p, 0.9f);
  EXPECT_FLOAT_EQ(r->sampling.tfs_z, 0.8f);
  EXPECT_FLOAT_EQ(r->sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r->sampling.repeat_last_n, 32);
  EXPECT_FLOAT_EQ(r->sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r->sampling.frequency_penalty, -0.5f);
  EXPECT_EQ(r->sampling.seed, 42u);
  EXPECT_EQ(r->sampling.n_probs, 3);
  EXPECT_THAT(r->stop, testing::ElementsAre("\n", "x"));
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(ParseCompletionRequest, DefaultsAreLlamaCpps) {
  auto r = ParseCompletionRequest(R"({"prompt": "x", "stop": "end", "seed": -1})", false);
  ASSERT_TRUE(r.ok()) << r.status();
  const SamplingParams defaults;
  EXPECT_EQ(r->sampling.temperature, defaults.temperature);
  EXPECT_EQ(r->sampling.top_k, defaults.top_k);
  EXPECT_EQ(r->sampling.seed, kRandomSeed);
  EXPECT_EQ(r->max_tokens, 0);
  EXPECT_THAT(r->stop, testing::ElementsAre("end"));
}

TEST(ParseCompletionRequest, PromptAsTokens) {
  auto r = ParseCompletionRequest(R"({"prompt": [1, 15043, 3186], "logprobs": 2})", false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->prompt_tokens, testing::ElementsAre(1, 15043, 3186));
  EXPECT_FALSE(r->prompt.has_value());
  EXPECT_EQ(r->sampling.n_probs, 2);
}

TEST(ParseCompletionRequest, BadFieldsAreNamed) {
  struct Bad {
    const char* body;
    bool chat;
    const char* param;
  };
  for (const Bad& b : {
           Bad{R"({"messages": []})", true, "messages"},
           Bad{R"({"messages": [{"content": "x"}]})", true, "messages[0]"},
           Bad{R"({"messages": [{"role": "user", "content": 3}]})", true, "messages[0].content"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", true, "n"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", true,
               "temperature"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "top_p": 1.5})", true, "top_p"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", true,
               "max_tokens"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "stop": [1]})", true, "stop"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", true,
               "top_logprobs"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})", true, "tools"},
           Bad{R"({"messages": [{"role": "user", "content": "x"}], "logit_bias": {"1": 2}})", true,
               "logit_bias"},
           Bad{R"({"prompt": ["a", "b"]})", false, "prompt"},
           Bad{R"({"prompt": [1, "b"]})", false, "prompt[1]"},
           Bad{R"({})", false, "prompt"},
           Bad{R"({"prompt": "x", "seed": 5000000000})", false, "seed"},
           Bad{R"([1])", false, "body"},
           Bad{R"({"prompt": )", false, "body"},
       }) {
    auto r = ParseCompletionRequest(b.body, b.chat);
    ASSERT_FALSE(r.ok()) << b.body;
    const ApiError e = ErrorFromStatus(r.status());
    EXPECT_EQ(e.http_status, 400) << b.body;
    EXPECT_EQ(e.param, b.param) << b.body << ": " << e.message;
    EXPECT_EQ(e.type, "invalid_request_error");
  }
}

TEST(ErrorFromStatus, MapsCodesToHttp) {
  EXPECT_EQ(ErrorFromStatus(absl::UnauthenticatedError("k")).http_status, 401);
  EXPECT_EQ(ErrorFromStatus(absl::NotFoundError("m")).http_status, 404);
  EXPECT_EQ(ErrorFromStatus(absl::ResourceExhaustedError("q")).http_status, 429);
  EXPECT_EQ(ErrorFromStatus(absl::UnavailableError("stage 1 down")).http_status, 503);
  const ApiError ctx = ErrorFromStatus(absl::OutOfRangeError("max_tokens: too many"));
  EXPECT_EQ(ctx.http_status, 400);
  EXPECT_EQ(ctx.code, "context_length_exceeded");
  EXPECT_EQ(ctx.param, "max_tokens");
  const Json body = ErrorBody(ctx);
  EXPECT_EQ(body["error"]["message"], "max_tokens: too many");
  EXPECT_EQ(body["error"]["code"], "context_length_exceeded");
}

TEST(ApiKeys, MatchBearerOrBareKeyOnly) {
  const std::vector<std::string> keys = {"sk-one", "sk-two"};
  EXPECT_TRUE(KeyMatches("Bearer sk-one", keys));
  EXPECT_TRUE(KeyMatches("bearer sk-two", keys));
  EXPECT_TRUE(KeyMatches("sk-two", keys));
  EXPECT_FALSE(KeyMatches("Bearer sk-on", keys));
  EXPECT_FALSE(KeyMatches("Bearer sk-one1", keys));
  EXPECT_FALSE(KeyMatches("", keys));
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m;
  m.CountRequest("/v1/completions", 200);
  m.CountRequest("/v1/completions", 200);
  m.AddTokens(10, 5);
  m.ObserveTimeToFirstToken(0.2);
  m.ObserveTokenLatency(0.004);
  ClusterSnapshot c;
  v1::StageDescription* s = c.description.add_stages();
  s->set_worker_address("127.0.0.1:1");
  s->set_state(v1::STAGE_STATE_READY);
  v1::StatsResponse stats;
  stats.set_busy_fraction(0.5);
  stats.set_tokens_processed(100);
  c.stats.push_back(stats);
  const std::string text = m.Render(c);
  EXPECT_THAT(text, HasSubstr("layerpool_http_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("layerpool_generated_tokens_total 5\n"));
  EXPECT_THAT(text, HasSubstr("layerpool_time_to_first_token_seconds_bucket{le=\"0.25\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("layerpool_time_to_first_token_seconds_bucket{le=\"0.10000000000000001\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("layerpool_time_to_first_token_seconds_count 1\n"));
  EXPECT_THAT(text, HasSubstr("layerpool_stage_busy_fraction{stage=\"0\",worker=\"127.0.0.1:1\"} 0.5\n"));
  EXPECT_THAT(text, HasSubstr("layerpool_stage_up{stage=\"0\",worker=\"127.0.0.1:1\"} 1\n"));
}

}  // namespace
}  // namespace layerpool::http
