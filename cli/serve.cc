// `layerpool serve`: the coordinator. Plans the split over running workers,
// loads the stages, then serves the public Inference API over gRPC and the
// OpenAI-compatible API over HTTP until SIGINT or SIGTERM.

#include <csignal>
#include <iostream>

#include "absl/strings/str_split.h"
#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "cli/http_flags.h"
#include "coordinator/cluster.h"
#include "coordinator/inference_service.h"
#include "coordinator/worker_link.h"
#include "grpcpp/grpcpp.h"

namespace layerpool::cli {
namespace {

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.starts_with("127.") || host == "::1" || host == "[::1]";
}

}  // namespace

int RunServe(std::span<char* const> args) {
  EngineFlags engine;
  ClusterFlags cluster_flags;
  std::string workers, spares, listen = "127.0.0.1:50050";
  int64_t max_queue = 64;
  double replay_budget_s = 2;
  double replan_after_s = 10;
  FlagSet flags(
      "serve --model FILE.gguf --workers HOST:PORT,... [--split auto|N,N,... | "
      "--tensor-split R,R,...] [--listen HOST:PORT]",
      "The coordinator: reads the model's header (never its weights), asks each "
      "worker for its\nfree memory, plans contiguous layer ranges, loads one stage "
      "per worker (each maps the\nmodel from its own disk), chains them, and serves "
      "the layerpool.v1.Inference gRPC API\nuntil SIGINT or SIGTERM. Prints "
      "'listening on HOST:PORT' once serving (port 0 picks one), and 'http listening\n"
      "on HOST:PORT' for the HTTP API (on from the start: /health says 'loading' until\n"
      "the stages are up). Workers must reach each other at the addresses given here.");
  engine.Register(flags);
  cluster_flags.Register(flags);
  flags.String("workers", "HOST:PORT,...", &workers, "the workers, in stage order");
  flags.String("spares", "HOST:PORT,...", &spares,
               "workers that take a failed stage's place when its own worker does not come "
               "back\non its address (tried in order; each must have the model)");
  flags.Double("replay-budget", "SECONDS", &replay_budget_s,
               "how long requests in flight wait for a failed stage to come back (its worker\n"
               "restarted or woken, or a spare): when it does, they are replayed and carry on\n"
               "unchanged; past it they end with 503/UNAVAILABLE (recovery goes on). Raise it\n"
               "for machines that reboot");
  flags.Double("replan-after", "SECONDS", &replan_after_s,
               "when a failed stage has been down this long and neither its worker nor a\n"
               "spare took it back, plan the layers again, by free memory, over the workers\n"
               "that answer (each loads its new range; requests wait or are replayed as\n"
               "above). 0: never");
  flags.String("listen", "HOST:PORT", &listen, "address of the public API");
  flags.Int("max-queue", "N", &max_queue,
            "requests waiting for a free sequence slot before new ones are refused");
  HttpFlags http_flags;
  http_flags.Register(flags, /*http_on_by_default=*/true);
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  if (engine.model.empty() || workers.empty()) {
    std::cerr << "error: --model and --workers are required\n";
    return 2;
  }
  if (absl::Status s = engine.Validate(); !s.ok()) return ReportError(s);
  ClusterOptions options;
  if (absl::Status s = cluster_flags.Apply(engine, &options); !s.ok()) return ReportError(s);
  options.workers = absl::StrSplit(workers, ',', absl::SkipWhitespace());
  options.spares = absl::StrSplit(spares, ',', absl::SkipWhitespace());
  if (!(replay_budget_s >= 0 && replay_budget_s <= 24 * 3600)) {
    std::cerr << "error: --replay-budget must be between 0 and 86400 seconds\n";
    return 2;
  }
  options.replay_budget = absl::Seconds(replay_budget_s);
  if (!(replan_after_s >= 0 && replan_after_s <= 24 * 3600)) {
    std::cerr << "error: --replan-after must be between 0 and 86400 seconds\n";
    return 2;
  }
  options.replan_after = absl::Seconds(replan_after_s);
  options.max_queue = static_cast<int>(max_queue);
  options.log = [](const std::string& line) { std::cerr << line << "\n"; };

  // Every thread started from here on inherits the blocked signals, so that
  // only the sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto api_keys = http_flags.ApiKeys();
  if (!api_keys.ok()) return ReportError(api_keys.status());
  std::unique_ptr<http::HttpServer> http_server;
  if (http_flags.enabled()) {
    // Each streaming request holds a connection thread; leave room for the
    // queue and for health checks and scrapes besides.
    auto started = http_flags.Start(*api_keys, options.max_sequences + options.max_queue + 16);
    if (!started.ok()) return ReportError(started.status());
    http_server = std::move(*started);
  }
  const std::string model_path = options.model_path;
  auto cluster = Cluster::Start(std::move(options));
  if (!cluster.ok()) return ReportError(cluster.status());
  if (http_server) {
    if (absl::Status s = http_flags.Attach(*http_server, **cluster, model_path); !s.ok()) {
      return ReportError(s);
    }
  }
  InferenceService service(**cluster, *api_keys);
  grpc::ServerBuilder builder;
  int port = 0;
  auto credentials = http_flags.GrpcCredentials();
  if (!credentials.ok()) return ReportError(credentials.status());
  builder.AddListeningPort(listen, *credentials, &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return ReportError(absl::UnavailableError("cannot listen on " + listen));
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  if (http_flags.api_tls_dir.empty()) {
    for (const std::string& h : {host, http_server ? http_server->host() : std::string()}) {
      if (!h.empty() && !IsLoopback(h)) {
        std::cerr << "serve: the public APIs on " << h
                  << " are plain text; give --api-tls-dir for TLS\n";
        break;
      }
    }
  }
  std::cout << "listening on " << host << ":" << port << std::endl;
  if (http_server) {
    std::cout << "http listening on " << http_server->host() << ":" << http_server->port()
              << std::endl;
  }

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cerr << "serve: stopping\n";
  if (http_server) http_server->Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace layerpool::cli
