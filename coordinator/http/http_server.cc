#include "coordinator/http/http_server.h"
#include "coordinator/http/web_page.h"

#include <chrono>
#include <iostream>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "coordinator/api_keys.h"
#include "coordinator/generation.h"
#include "coordinator/http/embeddings.h"
#include "coordinator/http/metrics.h"
#include "coordinator/http/openai.h"
#include "httplib.h"

namespace layerpool::http {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One completion request, ready to run.
struct Job {
  CompletionRequest request;
  GenerateRequest generate;
  std::string id;
  std::string model;
  Clock::time_point received;
};

// The text of a generated token, for logprobs.
TokenLogprobText LogprobText(const Tokenizer& tok, const TokenOut& t) {
  TokenLogprobText out;
  out.text = tok.TokenToPiece(t.token);
  out.logprob = t.logprob.value_or(0.0f);
  for (const auto& [id, logprob] : t.top_logprobs) out.top.emplace_back(tok.TokenToPiece(id), logprob);
  return out;
}

}  // namespace

struct HttpServer::Impl {
  HttpOptions options;
  std::unique_ptr<httplib::Server> server;
  Metrics metrics;
  std::atomic<int> in_flight{0};
  std::atomic<uint64_t> next_id{1};
  const int64_t started = UnixNow();

  std::mutex mu;  // guards the two below, set once
  Cluster* cluster = nullptr;
  std::optional<ChatTemplate> chat;

  Cluster* GetCluster() {
    std::lock_guard lock(mu);
    return cluster;
  }

  void Reply(httplib::Response& res, int status, const Json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  }

  void ReplyError(httplib::Response& res, const absl::Status& status) {
    const ApiError e = ErrorFromStatus(status);
    Reply(res, e.http_status, ErrorBody(e));
  }

  // Authentication and readiness, shared by every API endpoint. Returns the
  // cluster, or null after answering the request.
  Cluster* Admit(const httplib::Request& req, httplib::Response& res) {
    if (!options.api_keys.empty() &&
        !KeyMatches(req.get_header_value("Authorization"), options.api_keys)) {
      ReplyError(res, absl::UnauthenticatedError(
                          req.has_header("Authorization")
                              ? "the API key is not valid"
                              : "this server needs an API key: send 'Authorization: Bearer KEY'"));
      return nullptr;
    }
    Cluster* c = GetCluster();
    if (c == nullptr) {
      ReplyError(res, absl::UnavailableError("the model is still loading; see GET /health"));
    }
    return c;
  }

  absl::StatusOr<Job> Prepare(Cluster& c, const std::string& body, bool chat_endpoint) {
    Job job;
    job.received = Clock::now();
    LP_ASSIGN_OR_RETURN(job.request, ParseCompletionRequest(body, chat_endpoint));
    CompletionRequest& r = job.request;
    job.model = c.model_id();
    LP_RETURN_IF_ERROR(CheckModel(r.model, job.model));
    const Tokenizer& tok = c.tokenizer();
    if (r.chat) {
      std::optional<ChatTemplate> t;
      {
        std::lock_guard lock(mu);
        t = chat;
      }
      if (!t) {
        return absl::InvalidArgumentError(
            "messages: this model has no chat template (tokenizer.chat_template); start the "
            "server with --chat-template FILE, or send a formatted prompt to /v1/completions");
      }
      LP_ASSIGN_OR_RETURN(std::string prompt, t->Apply(r.messages, true));
      job.generate.prompt = TokenizeChatPrompt(tok, prompt, r.messages);
    } else if (r.prompt) {
      // As llama-server: special-token text in a raw prompt is parsed.
      job.generate.prompt = tok.Encode(*r.prompt, true, true);
    } else {
      job.generate.prompt = r.prompt_tokens;
    }
    if (job.generate.prompt.empty()) {
      return absl::InvalidArgumentError("prompt: no tokens (empty text, and the model adds no BOS)");
    }
    const int64_t n_prompt = static_cast<int64_t>(job.generate.prompt.size());
    const int64_t n_ctx = c.n_ctx();
    if (r.max_tokens > 0 && n_prompt + r.max_tokens > n_ctx) {
      return absl::OutOfRangeError(absl::StrFormat(
          "max_tokens: the prompt (%d tokens) plus max_tokens (%d) is %d tokens, more than "
          "the context of %d tokens; shorten the prompt or lower max_tokens",
          n_prompt, r.max_tokens, n_prompt + r.max_tokens, n_ctx));
    }
    if (n_prompt >= n_ctx) {
      return absl::OutOfRangeError(absl::StrFormat(
          "messages: the prompt is %d tokens, which leaves no room in the context of %d tokens",
          n_prompt, n_ctx));
    }
    job.generate.n_predict = r.max_tokens;
    job.generate.sampling = r.sampling;
    job.id = absl::StrCat(r.chat ? "chatcmpl-" : "cmpl-", started, "-", next_id.fetch_add(1));
    return job;
  }

  // The choice object of a complete (not streamed) answer.
  Json Choice(const Job& job, const std::string& text, const std::string& finish,
              const Json& logprobs) {
    Json choice = Json::object();
    choice["index"] = 0;
    if (job.request.chat) {
      Json message = Json::object();
      message["role"] = "assistant";
      message["content"] = text;
      choice["message"] = std::move(message);
    } else {
      choice["text"] = text;
    }
    choice["logprobs"] = logprobs;
    choice["finish_reason"] = finish;
    return choice;
  }

  void ObserveTokens(const Job& job, Clock::time_point* last, int n) {
    const Clock::time_point now = Clock::now();
    if (n == 1) {
      metrics.ObserveTimeToFirstToken(Seconds(now - job.received));
    } else {
      metrics.ObserveTokenLatency(Seconds(now - *last));
    }
    *last = now;
  }

  void Complete(Cluster& c, Job job, httplib::Response& res) {
    const Tokenizer& tok = c.tokenizer();
    std::string text;
    Json logprobs = job.request.logprobs ? Json::object() : Json();
    Json content = Json::array();
    // Legacy completions logprobs: parallel arrays.
    Json tokens = Json::array(), token_logprobs = Json::array(), top = Json::array();
    Clock::time_point last;
    int n = 0;
    ++in_flight;
    absl::StatusOr<GenerationSummary> summary = GenerateText(
        c, job.generate, job.request.stop, [&](const TokenOut& t) {
          ObserveTokens(job, &last, ++n);
          text += t.piece;
          if (job.request.logprobs) {
            TokenLogprobText lt = LogprobText(tok, t);
            if (job.request.chat) {
              content.push_back(ChatLogprobJson(lt));
            } else {
              tokens.push_back(lt.text);
              token_logprobs.push_back(lt.logprob);
              Json alts = Json::object();
              for (const auto& [s, lp] : lt.top) alts[s] = lp;
              top.push_back(std::move(alts));
            }
          }
          return true;
        });
    --in_flight;
    if (!summary.ok()) {
      ReplyError(res, summary.status());
      return;
    }
    text += summary->tail;
    metrics.AddTokens(summary->prompt_tokens, summary->generated_tokens);
    if (job.request.logprobs) {
      if (job.request.chat) {
        logprobs["content"] = std::move(content);
      } else {
        logprobs["tokens"] = std::move(tokens);
        logprobs["token_logprobs"] = std::move(token_logprobs);
        logprobs["top_logprobs"] = std::move(top);
      }
    }
    Json body = ResponseHead(job.request.chat, false, job.id, UnixNow(), job.model);
    body["choices"] = Json::array(
        {Choice(job, text, FinishReasonName(summary->reason, !summary->stop_matched.empty()),
                logprobs)});
    body["usage"] = UsageJson({summary->prompt_tokens, summary->generated_tokens});
    Reply(res, 200, body);
  }

  // A chunk with one choice: `delta` (chat) or `text`, and finish_reason.
  Json Chunk(const Job& job, const std::string& text, const Json& finish, bool first,
             const Json& logprobs) {
    Json chunk = ResponseHead(job.request.chat, true, job.id, UnixNow(), job.model);
    Json choice = Json::object();
    choice["index"] = 0;
    if (job.request.chat) {
      Json delta = Json::object();
      if (first) delta["role"] = "assistant";
      if (!text.empty() || first) delta["content"] = text;
      choice["delta"] = std::move(delta);
    } else {
      choice["text"] = text;
    }
    choice["logprobs"] = logprobs;
    choice["finish_reason"] = finish;
    chunk["choices"] = Json::array({std::move(choice)});
    if (job.request.include_usage) chunk["usage"] = Json();
    return chunk;
  }

  static bool Send(httplib::DataSink& sink, const std::string& event) {
    return sink.write(event.data(), event.size());
  }
  static std::string Data(const Json& j) {
    return absl::StrCat("data: ", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        "\n\n");
  }

  void Stream(Cluster& c, Job job, httplib::Response& res) {
    // Admission happens here, before the 200 goes out, so that a full queue
    // or a down stage is still an HTTP error.
    const int32_t n_prompt = static_cast<int32_t>(job.generate.prompt.size());
    absl::StatusOr<std::unique_ptr<Cluster::Stream>> started_stream = c.Generate(job.generate);
    if (!started_stream.ok()) {
      ReplyError(res, started_stream.status());
      return;
    }
    auto stream = std::shared_ptr<Cluster::Stream>(std::move(*started_stream));
    auto shared_job = std::make_shared<Job>(std::move(job));
    ++in_flight;  // until the releaser below runs
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, &c, stream, shared_job, n_prompt](size_t, httplib::DataSink& sink) {
          const Job& job = *shared_job;
          const Tokenizer& tok = c.tokenizer();
          Clock::time_point last;
          int n = 0;
          bool first = true;
          int idle_polls = 0;
          auto on_token = [&](const TokenOut& t) {
            ObserveTokens(job, &last, ++n);
            idle_polls = 0;
            Json logprobs;
            if (job.request.logprobs) {
              const TokenLogprobText lt = LogprobText(tok, t);
              logprobs = Json::object();
              if (job.request.chat) {
                logprobs["content"] = Json::array({ChatLogprobJson(lt)});
              } else {
                Json alts = Json::object();
                for (const auto& [text, lp] : lt.top) alts[text] = lp;
                logprobs["tokens"] = Json::array({lt.text});
                logprobs["token_logprobs"] = Json::array({lt.logprob});
                logprobs["top_logprobs"] = Json::array({std::move(alts)});
              }
            }
            if (t.piece.empty() && !first && logprobs.is_null()) return true;
            const bool ok = Send(sink, Data(Chunk(job, t.piece, Json(), first, logprobs)));
            first = false;
            return ok;
          };
          // Every 500 ms without a token, an SSE comment: the write fails once
          // the client has gone, and the request is cancelled.
          auto gone = [&] { return ++idle_polls % 5 == 0 && !Send(sink, ": waiting\n\n"); };
          absl::StatusOr<GenerationSummary> summary = StreamText(
              c, *stream, n_prompt, job.received, job.request.stop, on_token, gone);
          if (!summary.ok()) {
            if (summary.status().code() == absl::StatusCode::kCancelled) {
              return false;  // the client is gone: close the connection
            }
            // Headers are out: the error travels as an event, as OpenAI's do.
            Send(sink, Data(ErrorBody(ErrorFromStatus(summary.status()))));
            Send(sink, "data: [DONE]\n\n");
            sink.done();
            return true;
          }
          metrics.AddTokens(summary->prompt_tokens, summary->generated_tokens);
          const std::string finish =
              FinishReasonName(summary->reason, !summary->stop_matched.empty());
          Send(sink, Data(Chunk(job, summary->tail, finish, first, Json())));
          if (job.request.include_usage) {
            Json usage = ResponseHead(job.request.chat, true, job.id, UnixNow(), job.model);
            usage["choices"] = Json::array();
            usage["usage"] = UsageJson({summary->prompt_tokens, summary->generated_tokens});
            Send(sink, Data(usage));
          }
          Send(sink, "data: [DONE]\n\n");
          sink.done();
          return true;
        },
        [this, stream](bool) {
          stream->Cancel();  // no-op when it ended; frees the sequence otherwise
          --in_flight;
        });
  }

  void Completions(const httplib::Request& req, httplib::Response& res, bool chat_endpoint) {
    Cluster* c = Admit(req, res);
    if (c == nullptr) return;
    absl::StatusOr<Job> job = Prepare(*c, req.body, chat_endpoint);
    if (!job.ok()) {
      ReplyError(res, job.status());
      return;
    }
    if (job->request.stream) {
      Stream(*c, std::move(*job), res);
    } else {
      Complete(*c, std::move(*job), res);
    }
  }

  void Embeddings(const httplib::Request& req, httplib::Response& res) {
    Cluster* c = Admit(req, res);
    if (c == nullptr) return;
    absl::StatusOr<EmbeddingRequest> r = ParseEmbeddingRequest(req.body);
    if (!r.ok()) return ReplyError(res, r.status());
    if (absl::Status s = CheckModel(r->model, c->model_id()); !s.ok()) return ReplyError(res, s);
    int64_t prompt_tokens = 0;
    ++in_flight;
    absl::StatusOr<Json> answer = RunEmbeddings(*c, *r, &prompt_tokens);
    --in_flight;
    if (!answer.ok()) return ReplyError(res, answer.status());
    metrics.AddTokens(prompt_tokens, 0);
    Reply(res, 200, *answer);
  }

  void Models(const httplib::Request& req, httplib::Response& res) {
    Cluster* c = Admit(req, res);
    if (c == nullptr) return;
    const v1::ClusterDescription d = c->Describe();
    Json model = Json::object();
    model["id"] = d.model().id();
    model["object"] = "model";
    model["created"] = started;
    model["owned_by"] = "layerpool";
    Json meta = Json::object();
    meta["architecture"] = d.model().architecture();
    meta["file_type"] = d.model().file_type();
    meta["n_layer"] = d.model().n_layer();
    meta["n_ctx"] = d.model().n_ctx();
    meta["n_vocab"] = d.model().n_vocab();
    meta["stages"] = d.stages_size();
    model["meta"] = std::move(meta);
    Json body = Json::object();
    body["object"] = "list";
    body["data"] = Json::array({std::move(model)});
    Reply(res, 200, body);
  }

  void Health(httplib::Response& res) {
    Cluster* c = GetCluster();
    Json body = Json::object();
    if (c == nullptr) {
      body["status"] = "loading";
      Reply(res, 503, body);
      return;
    }
    const v1::ClusterDescription d = c->Describe();
    const absl::Status health = c->health();
    Json stages = Json::array();
    bool all_up = health.ok();
    for (const v1::StageDescription& s : d.stages()) {
      Json stage = Json::object();
      stage["index"] = s.index();
      stage["worker"] = s.worker_address();
      stage["layers"] = Json::array({s.layers().first(), s.layers().last()});
      stage["state"] = s.state() == v1::STAGE_STATE_READY ? "ready" : "down";
      all_up = all_up && s.state() == v1::STAGE_STATE_READY;
      stages.push_back(std::move(stage));
    }
    body["status"] = all_up ? "ready" : "degraded";
    body["model"] = d.model().id();
    body["stages"] = std::move(stages);
    if (!all_up) {
      body["reason"] = health.ok() ? "a stage does not answer its health check"
                                   : std::string(health.message());
    }
    Reply(res, all_up ? 200 : 503, body);
  }

  void MetricsPage(const httplib::Request& req, httplib::Response& res) {
    if (!options.api_keys.empty() &&
        !KeyMatches(req.get_header_value("Authorization"), options.api_keys)) {
      ReplyError(res, absl::UnauthenticatedError("this server needs an API key"));
      return;
    }
    ClusterSnapshot snapshot;
    snapshot.requests_in_flight = in_flight.load();
    if (Cluster* c = GetCluster()) {
      snapshot.description = c->Describe();
      snapshot.queued_requests = c->queued_requests();
      snapshot.active_sequences = c->active_sequences();
      snapshot.activation_bytes_per_token = c->activation_bytes_per_token();
      for (int i = 0; i < snapshot.description.stages_size(); ++i) {
        std::optional<v1::StatsResponse> stats;
        if (snapshot.description.stages(i).state() == v1::STAGE_STATE_READY) {
          absl::StatusOr<v1::StatsResponse> s = c->StageStats(i);
          if (s.ok()) stats = std::move(*s);
        }
        snapshot.stats.push_back(std::move(stats));
      }
    }
    res.status = 200;
    res.set_content(metrics.Render(snapshot), "text/plain; version=0.0.4; charset=utf-8");
  }

  void Route() {
    server->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Completions(req, res, true);
    });
    server->Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Completions(req, res, false);
    });
    server->Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      Models(req, res);
    });
    server->Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
      Embeddings(req, res);
    });
    server->Get("/health", [this](const httplib::Request&, httplib::Response& res) { Health(res); });
    server->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      MetricsPage(req, res);
    });
    // The web page: static files need no key (the page asks for one when
    // the API does), its status JSON does.
    server->Get("/status", [this](const httplib::Request& req, httplib::Response& res) {
      if (!options.api_keys.empty() &&
          !KeyMatches(req.get_header_value("Authorization"), options.api_keys)) {
        ReplyError(res, absl::UnauthenticatedError("this server needs an API key"));
        return;
      }
      Reply(res, 200, StatusJson(GetCluster(), metrics, in_flight.load()));
    });
    for (const char* path : {"/", "/index.html", "/app.js", "/style.css"}) {
      server->Get(path, [](const httplib::Request& req, httplib::Response& res) {
        const WebAsset* asset = FindWebAsset(req.path);
        res.status = 200;
        res.set_header("Cache-Control", "no-cache");
        res.set_header("Content-Security-Policy",
                       "default-src 'self'; style-src 'self'; script-src 'self'; "
                       "img-src 'self' data:; connect-src 'self'");
        res.set_content(std::string(asset->body), std::string(asset->content_type));
      });
    }
    server->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404 && res.body.empty()) {
        Reply(res, 404, ErrorBody({404, "invalid_request_error", "not_found", "",
                                   absl::StrCat("no endpoint ", req.method, " ", req.path)}));
      }
    });
    server->set_exception_handler(
        [this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          Reply(res, 500, ErrorBody({500, "server_error", "", "", "internal error"}));
        });
    server->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (req.path == "/metrics" || req.path == "/health" || req.path == "/status" ||
          FindWebAsset(req.path) != nullptr) {
        return;
      }
      metrics.CountRequest(req.path, res.status);
    });
  }
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpOptions options) {
  const size_t colon = options.listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(options.listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http: '", options.listen, "' is not HOST:PORT"));
  }
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& impl = *s->impl_;
  impl.options = options;
  s->host_ = options.listen.substr(0, colon);
  if (!options.tls_cert_file.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                    options.tls_key_file.c_str());
    if (!tls->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "HTTPS: cannot use ", options.tls_cert_file, " and ", options.tls_key_file,
          " (not a PEM certificate and its key?)"));
    }
    impl.server = std::move(tls);
  } else {
    impl.server = std::make_unique<httplib::Server>();
  }
  const int threads = std::max(options.threads, 4);
  impl.server->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl.server->set_payload_max_length(16 << 20);
  impl.Route();
  const int bound = port == 0 ? impl.server->bind_to_any_port(s->host_)
                              : (impl.server->bind_to_port(s->host_, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", options.listen));
  }
  s->port_ = bound;
  s->thread_ = std::thread([&impl] { impl.server->listen_after_bind(); });
  return s;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (impl_) impl_->server->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::SetCluster(Cluster* cluster, std::optional<ChatTemplate> chat_template) {
  std::lock_guard lock(impl_->mu);
  impl_->chat = std::move(chat_template);
  impl_->cluster = cluster;
}

}  // namespace layerpool::http
