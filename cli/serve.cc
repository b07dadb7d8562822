// `layerpool serve`: the coordinator. Plans the split over running workers,
// loads the stages, then serves the public Inference API over gRPC until
// SIGINT or SIGTERM.

#include <csignal>
#include <iostream>

#include "absl/strings/str_split.h"
#include "cli/cluster_flags.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "coordinator/cluster.h"
#include "coordinator/inference_service.h"
#include "coordinator/worker_link.h"
#include "grpcpp/grpcpp.h"

namespace layerpool::cli {

int RunServe(std::span<char* const> args) {
  EngineFlags engine;
  ClusterFlags cluster_flags;
  std::string workers, listen = "127.0.0.1:50050";
  int64_t max_queue = 64;
  FlagSet flags(
      "serve --model FILE.gguf --workers HOST:PORT,... [--split auto|N,N,... | "
      "--tensor-split R,R,...] [--listen HOST:PORT]",
      "The coordinator: reads the model's header (never its weights), asks each "
      "worker for its\nfree memory, plans contiguous layer ranges, loads one stage "
      "per worker (each maps the\nmodel from its own disk), chains them, and serves "
      "the layerpool.v1.Inference gRPC API\nuntil SIGINT or SIGTERM. Prints "
      "'listening on HOST:PORT' once serving (port 0 picks one).\nWorkers must reach "
      "each other at the addresses given here.");
  engine.Register(flags);
  cluster_flags.Register(flags);
  flags.String("workers", "HOST:PORT,...", &workers, "the workers, in stage order");
  flags.String("listen", "HOST:PORT", &listen, "address of the public API");
  flags.Int("max-queue", "N", &max_queue,
            "requests waiting for a free sequence slot before new ones are refused");
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
  options.max_queue = static_cast<int>(max_queue);
  options.log = [](const std::string& line) { std::cerr << line << "\n"; };

  // Every thread started from here on inherits the blocked signals, so that
  // only the sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto cluster = Cluster::Start(std::move(options));
  if (!cluster.ok()) return ReportError(cluster.status());
  InferenceService service(**cluster);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return ReportError(absl::UnavailableError("cannot listen on " + listen));
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::cout << "listening on " << host << ":" << port << std::endl;

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::cerr << "serve: stopping\n";
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace layerpool::cli
