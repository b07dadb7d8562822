// `layerpool run`: generate text from a prompt in this process (the
// one-stage case of the pipeline).

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>

#include <thread>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "cli/http_flags.h"
#include "cli/local_workers.h"
#include "model/chat/chat_template.h"
#include "model/gguf/gguf.h"
#include "nlohmann/json.hpp"
#include "coordinator/cluster.h"
#include "model/sampling/sampler.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "worker/stage.h"

namespace layerpool::cli {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct RunResult {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;
  std::string text;
  double prompt_seconds = 0;
  double decode_seconds = 0;
  bool line_ended = false;  // the streamed text already ended its line
  bool served_http = false;  // --http: served until a signal, no prompt ran
};

// How --prompt becomes token ids.
struct PromptOptions {
  bool parse_special = false;  // --parse-special
  bool chat = false;           // --chat: a user message through the chat template
  std::string system;          // --system, with --chat
  std::string chat_template;   // --chat-template FILE; else the model's
};

absl::StatusOr<std::vector<int32_t>> PromptTokens(const std::string& model_path,
                                                  const Tokenizer& tokenizer,
                                                  const std::string& prompt,
                                                  const PromptOptions& o) {
  if (!o.chat) return tokenizer.Encode(prompt, /*add_special=*/true, o.parse_special);
  LP_ASSIGN_OR_RETURN(std::optional<ChatTemplate> chat,
                      ChatTemplate::ForModel(model_path, tokenizer, o.chat_template));
  if (!chat) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--chat: ", model_path, " has no tokenizer.chat_template; give --chat-template FILE"));
  }
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
  messages.push_back({{"role", "user"}, {"content", prompt}});
  LP_ASSIGN_OR_RETURN(std::string text, chat->Apply(messages, true), "--chat");
  return TokenizeChatPrompt(tokenizer, text, messages);
}

absl::Status Generate(const EngineFlags& engine, const std::string& prompt,
                      const PromptOptions& prompt_options,
                      int64_t n_predict, const SamplingParams& sampling,
                      bool stream, RunResult* result) {
  LP_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::Open(engine.model, {.map_data = false}));
  LP_ASSIGN_OR_RETURN(auto tokenizer, Tokenizer::FromGguf(*file), engine.model);
  LP_ASSIGN_OR_RETURN(StageOptions options, engine.ToStageOptions());
  LP_ASSIGN_OR_RETURN(auto stage, Stage::Create(*file, options));
  LP_ASSIGN_OR_RETURN(result->prompt_tokens,
                      PromptTokens(engine.model, *tokenizer, prompt, prompt_options));
  if (result->prompt_tokens.empty()) {
    return absl::InvalidArgumentError(
        "the prompt is empty and the model adds no BOS token: nothing to start from");
  }
  const int64_t n_prompt = static_cast<int64_t>(result->prompt_tokens.size());
  const int64_t n_ctx = engine.ContextFor(stage->hparams());
  if (n_prompt + n_predict > n_ctx) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the prompt (%d tokens) plus --n-predict %d exceeds the context of %d "
        "tokens (--ctx)", n_prompt, n_predict, n_ctx));
  }
  LP_ASSIGN_OR_RETURN(auto cache, stage->NewCache(n_ctx));
  Sampler sampler(sampling);
  for (int32_t t : result->prompt_tokens) sampler.Accept(t);

  std::vector<float> logits;
  std::vector<int32_t> positions;
  std::vector<KvCache*> caches;
  auto forward = [&](std::span<const int32_t> tokens, int64_t first_pos,
                     bool want_logits) -> absl::Status {
    positions.resize(tokens.size());
    caches.assign(tokens.size(), cache.get());
    for (size_t i = 0; i < tokens.size(); ++i) positions[i] = first_pos + i;
    const int64_t last_row = static_cast<int64_t>(tokens.size()) - 1;
    StageBatch batch;
    batch.tokens = tokens;
    batch.positions = positions;
    batch.caches = caches;
    if (want_logits) batch.logit_rows = std::span<const int64_t>(&last_row, 1);
    return stage->Forward(batch, &logits);
  };

  const auto prompt_start = Clock::now();
  for (int64_t p = 0; p < n_prompt; p += engine.batch) {
    const int64_t len = std::min(engine.batch, n_prompt - p);
    LP_RETURN_IF_ERROR(forward(std::span(result->prompt_tokens).subspan(p, len), p,
                               p + len == n_prompt));
  }
  result->prompt_seconds = Seconds(prompt_start);

  const auto decode_start = Clock::now();
  for (int64_t i = 0; i < n_predict; ++i) {
    const int32_t next = sampler.Sample(logits);
    if (next == tokenizer->eos_id() || next == tokenizer->eot_id()) break;
    sampler.Accept(next);
    result->tokens.push_back(next);
    const std::string piece = tokenizer->TokenToPiece(next);
    result->text += piece;
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (i + 1 < n_predict) {
      LP_RETURN_IF_ERROR(forward(std::span(&next, 1), n_prompt + i, true));
    }
  }
  result->decode_seconds = Seconds(decode_start);
  return absl::OkStatus();
}

// The same job through a pipeline of `n_workers` worker processes on
// loopback, with this process as the coordinator.
// With --http, serves the HTTP API over that pipeline until SIGINT or
// SIGTERM instead of running the prompt.
absl::Status GenerateOnWorkers(const EngineFlags& engine, const ClusterFlags& cluster_flags,
                               int n_workers, const std::string& prompt,
                               const PromptOptions& prompt_options,
                               int64_t n_predict, const SamplingParams& sampling,
                               bool stream, const HttpFlags& http_flags, RunResult* result) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = engine.threads > 0 ? static_cast<int>(engine.threads)
                                         : std::max(1, cores / n_workers);
  ClusterOptions options;
  LP_RETURN_IF_ERROR(cluster_flags.Apply(engine, &options));
  if (options.tls) {
    return absl::InvalidArgumentError(
        "--tls-dir is for serve and remote workers: run's local workers are reached over "
        "loopback, with a fresh --token-file of their own");
  }
  LP_ASSIGN_OR_RETURN(auto workers, LocalWorkers::Start(n_workers, threads));
  options.workers = workers->addresses();
  options.token = workers->token();
  options.threads = threads;
  options.log = [](const std::string& line) { std::cerr << line << "\n"; };
  if (http_flags.enabled()) {
    // The workers are forked already (they keep the default signal mask);
    // every thread from here on leaves SIGINT/SIGTERM to the sigwait below.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    LP_ASSIGN_OR_RETURN(auto keys, http_flags.ApiKeys());
    LP_ASSIGN_OR_RETURN(auto server,
                        http_flags.Start(keys, options.max_sequences + options.max_queue + 16));
    const std::string model_path = options.model_path;
    LP_ASSIGN_OR_RETURN(auto cluster, Cluster::Start(std::move(options)));
    LP_RETURN_IF_ERROR(http_flags.Attach(*server, *cluster, model_path));
    std::cout << "http listening on " << server->host() << ":" << server->port() << std::endl;
    int signal = 0;
    sigwait(&stop_signals, &signal);
    std::cerr << "run: stopping\n";
    server->Stop();
    result->line_ended = true;
    result->served_http = true;
    return absl::OkStatus();
  }
  LP_ASSIGN_OR_RETURN(auto cluster, Cluster::Start(std::move(options)));
  const Tokenizer& tokenizer = cluster->tokenizer();
  LP_ASSIGN_OR_RETURN(result->prompt_tokens,
                      PromptTokens(engine.model, tokenizer, prompt, prompt_options));
  if (result->prompt_tokens.empty()) {
    return absl::InvalidArgumentError(
        "the prompt is empty and the model adds no BOS token: nothing to start from");
  }
  if (n_predict == 0) return absl::OkStatus();
  GenerateRequest request;
  request.prompt = result->prompt_tokens;
  request.n_predict = n_predict;
  request.sampling = sampling;
  const auto start = Clock::now();
  LP_ASSIGN_OR_RETURN(auto events, cluster->Generate(std::move(request)));
  Clock::time_point first_token = start;
  GenerateEvent e;
  while (events->Next(&e) && !e.done) {
    if (result->tokens.empty()) first_token = Clock::now();
    result->tokens.push_back(e.token);
    const std::string piece = tokenizer.TokenToPiece(e.token);
    result->text += piece;
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
  }
  if (stream) {
    // End the line before the workers, stopping, log to stderr.
    std::fwrite("\n", 1, 1, stdout);
    std::fflush(stdout);
    result->line_ended = true;
  }
  if (e.reason == FinishReason::kFailed) return e.status;
  // As in one process: prefill ends with the first token, decode follows.
  result->prompt_seconds = std::chrono::duration<double>(first_token - start).count();
  result->decode_seconds = Seconds(first_token);
  return absl::OkStatus();
}

}  // namespace

int RunRun(std::span<char* const> args) {
  EngineFlags engine;
  SamplingFlags sampling;
  std::string prompt, output = "text";
  int64_t n_predict = 128;
  FlagSet flags(
      "run --model FILE.gguf --prompt TEXT [--n-predict N] [sampling flags] "
      "[--local-workers K [--split ...] [--http HOST:PORT]] [--output json]",
      "Generates text from a prompt and streams it to stdout: in this process, or "
      "with\n--local-workers K through a pipeline of K worker processes on loopback "
      "(the same\ntokens: each stage computes exactly what one process would). "
      "Generation stops at the\nend-of-sequence token or after --n-predict tokens. "
      "An empty prompt starts from BOS.\nWith --output json, prints one object "
      "instead: {\"prompt_tokens\":[...],\"tokens\":[...],\n\"text\":\"...\","
      "\"timings\":{\"prompt_tokens_per_s\":..,\"decode_tokens_per_s\":..}}.\n"
      "With --local-workers K --http HOST:PORT, serves the OpenAI-compatible HTTP API\n"
      "over that pipeline until Ctrl-C instead (prints 'http listening on HOST:PORT').");
  ClusterFlags cluster;
  int64_t local_workers = 0;
  engine.Register(flags);
  sampling.Register(flags);
  flags.Int("local-workers", "K", &local_workers,
            "run through a pipeline of K worker processes on loopback (0: in this process); "
            "--threads is then per worker (default: cores / K)");
  cluster.Register(flags);
  HttpFlags http_flags;
  http_flags.Register(flags, /*http_on_by_default=*/false);
  flags.String("prompt", "TEXT", &prompt, "the prompt (BOS is added when the model says so)");
  PromptOptions prompt_options;
  flags.Bool("parse-special", &prompt_options.parse_special,
             "special-token text in the prompt (\"<|eot_id|>\") becomes that token");
  flags.Bool("chat", &prompt_options.chat,
             "the prompt is a user message, put through the chat template (the model's, or "
             "--chat-template FILE)");
  flags.String("system", "TEXT", &prompt_options.system, "with --chat: a system message first");
  flags.Int("n-predict", "N", &n_predict, "tokens to generate at most");
  flags.String("output", "FORMAT", &output, "text (stream) or json");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (engine.model.empty()) {
    std::cerr << "error: --model is required\n";
    return 2;
  }
  if (output != "text" && output != "json") {
    std::cerr << "error: --output must be text or json\n";
    return 2;
  }
  if (n_predict < 0) {
    std::cerr << "error: --n-predict must not be negative\n";
    return 2;
  }
  if (local_workers < 0 || local_workers > 64) {
    std::cerr << "error: --local-workers must be in [0, 64]\n";
    return 2;
  }
  if (http_flags.enabled() && local_workers == 0) {
    std::cerr << "error: --http needs --local-workers K (the HTTP API runs on a pipeline)\n";
    return 2;
  }
  prompt_options.chat_template = http_flags.chat_template;
  if (!prompt_options.system.empty() && !prompt_options.chat) {
    std::cerr << "error: --system needs --chat\n";
    return 2;
  }
  if (absl::Status s = engine.Validate(); !s.ok()) return ReportError(s);
  auto params = sampling.ToParams();
  if (!params.ok()) return ReportError(params.status());

  RunResult r;
  const bool json = output == "json";
  const absl::Status s =
      local_workers > 0
          ? GenerateOnWorkers(engine, cluster, static_cast<int>(local_workers), prompt, prompt_options,
                              n_predict, *params, !json, http_flags, &r)
          : Generate(engine, prompt, prompt_options, n_predict, *params, !json, &r);
  if (!s.ok()) {
    if (!json && !r.line_ended) std::cout << "\n";
    return ReportError(s);
  }
  if (r.served_http) return 0;
  const double pp = r.prompt_seconds > 0 ? r.prompt_tokens.size() / r.prompt_seconds : 0;
  const double tg = r.decode_seconds > 0 ? r.tokens.size() / r.decode_seconds : 0;
  if (json) {
    nlohmann::ordered_json j;
    j["prompt_tokens"] = r.prompt_tokens;
    j["tokens"] = r.tokens;
    j["text"] = r.text;
    j["timings"] = {{"prompt_tokens_per_s", pp}, {"decode_tokens_per_s", tg}};
    std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
              << "\n";
  } else {
    if (!r.line_ended) std::cout << "\n";
    std::cerr << absl::StrFormat(
        "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s\n",
        r.prompt_tokens.size(), pp, r.tokens.size(), tg);
  }
  return 0;
}

}  // namespace layerpool::cli
