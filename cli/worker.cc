// `layerpool worker`: serve one pipeline stage to a coordinator over gRPC.

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/human_bytes.h"
#include "base/status_macros.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "proto/peer_token.h"
#include "proto/tls.h"
#include "worker/device.h"
#include "worker/model_access.h"
#include "worker/service.h"

namespace layerpool::cli {
namespace {

constexpr char kDescription[] =
    "Runs a worker: a process that holds one pipeline stage (a range of a\n"
    "model's layers, loaded from its own copy of the GGUF file) and serves\n"
    "the internal Worker gRPC API to a coordinator (`layerpool serve`, or\n"
    "`layerpool run --local-workers`, which starts workers itself). The\n"
    "coordinator tells it which file and layers to load, where the next\n"
    "stage listens, and streams activations through it.\n"
    "\n"
    "stdout: once listening, exactly one line `listening on HOST:PORT` with\n"
    "        the bound port (useful with port 0), flushed at once; nothing\n"
    "        more.\n"
    "stderr: one line per LoadStage and ConnectDownstream, and errors.\n"
    "\n"
    "SIGINT or SIGTERM stop it cleanly (exit status 0). Exit status 1 means\n"
    "it could not listen or cannot use --device, 2 bad flags.";

// HOST:PORT -> HOST, or empty when there is no numeric port.
std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return "";
  }
  return address.substr(0, colon);
}

}  // namespace

int RunWorker(std::span<char* const> args) {
  std::string listen = "127.0.0.1:50051";
  int64_t threads = 0;
  std::string mem_limit_text = "0";
  std::string device_text = "cpu";
  FlagSet flags(
      "worker [--listen HOST:PORT] [--threads N] [--mem-limit BYTES] "
      "[--device cpu|cuda:N] [--token-file FILE] [--model-dir DIR] [--tls-dir DIR] "
      "[--coordinator-timeout SECONDS]",
      kDescription);
  flags.String("listen", "HOST:PORT", &listen,
               "address to serve on; port 0 picks a free one (printed on\n"
               "stdout). 0.0.0.0:PORT accepts other hosts: give them\n"
               "--token-file too");
  std::string token_file, model_dir, tls_dir;
  flags.String("tls-dir", "DIR", &tls_dir,
               "mutual TLS: DIR holds ca.pem, cert.pem and key.pem\n"
               "(deploy/make-certs.sh); only callers whose certificate that CA\n"
               "signed are served, and the next stage is reached the same way");
  flags.String("model-dir", "DIR", &model_dir,
               "serve only models inside DIR (links resolved first; FIFOs and\n"
               "devices refused). Without it, only a coordinator on this host\n"
               "may name a model file");
  flags.String("token-file", "FILE", &token_file,
               "a shared secret (its first line, 16 characters or more):\n"
               "calls that do not carry it are refused, and calls to the next\n"
               "stage carry it. Give serve the same file");
  flags.Int("threads", "N", &threads,
            "compute threads when the coordinator does not say; 0 uses\n"
            "every core");
  flags.String("mem-limit", "BYTES", &mem_limit_text,
               "memory a stage may take (weights, KV cache, work buffers),\n"
               "e.g. 24GiB, 512MiB, 1.5GB or plain bytes; 0 means the host's\n"
               "available memory. LoadStage is refused, naming the shortfall,\n"
               "when a stage needs more");
  double coordinator_timeout_s = 10;
  flags.Double("coordinator-timeout", "SECONDS", &coordinator_timeout_s,
               "the worker serves one coordinator at a time; after this long\n"
               "without a call from it (it polls twice a second; killed, or its\n"
               "host gone) its lease ends, every sequence the stage holds is\n"
               "freed and another coordinator may take over; the stage stays\n"
               "loaded. 0: never (only the coordinator's own exit frees it)");
  flags.String("device", "cpu|cuda:N", &device_text,
               "where stages compute: the CPU, or CUDA device N (not in\n"
               "this version: cuda:N is checked and refused at startup)");
  int exit_code = 0;
  if (!ParseOrExit(flags, args, &exit_code)) return exit_code;
  auto usage_error = [](const std::string& message) {
    std::cerr << "error: " << message
              << "\n(run with --help for the contract)\n";
    return 2;
  };
  if (!flags.positional().empty()) {
    return usage_error("unexpected argument '" + flags.positional()[0] + "'");
  }
  const std::string host = HostOf(listen);
  if (host.empty()) {
    return usage_error("--listen: '" + listen + "' is not HOST:PORT");
  }
  if (threads < 0 || threads > 1024) {
    return usage_error("--threads must be in [0, 1024], got " +
                       std::to_string(threads));
  }
  absl::StatusOr<uint64_t> mem_limit = ParseBytes(mem_limit_text);
  if (!mem_limit.ok()) {
    return usage_error(
        absl::StrCat("--mem-limit: ", mem_limit.status().message()));
  }
  absl::StatusOr<DeviceSpec> device = ParseDeviceSpec(device_text);
  if (!device.ok()) {
    return usage_error(absl::StrCat("--device: ", device.status().message()));
  }
  // Before listening: a worker that cannot use its device must not look
  // ready to a coordinator.
  if (absl::Status usable = CheckDeviceUsable(*device); !usable.ok()) {
    return ReportError(absl::Status(
        usable.code(), absl::StrCat("--device ", usable.message())));
  }

  // Block the stop signals before gRPC starts its threads, which inherit
  // the mask, so that only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  // A coordinator that started us may close our stdout after the first
  // line; a stray write must not kill the worker.
  signal(SIGPIPE, SIG_IGN);

  WorkerOptions options;
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token = ReadPeerToken(token_file);
    if (!token.ok()) return ReportError(Annotate(token.status(), "--token-file"));
    options.token = *token;
  }
  if (!model_dir.empty()) {
    absl::StatusOr<std::string> dir = CanonicalModelDir(model_dir);
    if (!dir.ok()) return usage_error(absl::StrCat("--model-dir: ", dir.status().message()));
    options.model_dir = *dir;
  }
  if (!tls_dir.empty()) {
    absl::StatusOr<TlsFiles> tls = ReadTlsDir(tls_dir);
    if (!tls.ok()) return ReportError(Annotate(tls.status(), "--tls-dir"));
    options.tls = *tls;
  }
  options.threads = static_cast<int>(threads);
  options.mem_limit = *mem_limit;
  if (!(coordinator_timeout_s >= 0 && coordinator_timeout_s <= 86400)) {
    return usage_error("--coordinator-timeout must be between 0 and 86400 seconds");
  }
  options.coordinator_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(coordinator_timeout_s * 1000));
  options.log = [](const std::string& line) {
    std::cerr << "worker: " << line << std::endl;
  };
  WorkerService service(options);
  int port = 0;
  absl::StatusOr<std::unique_ptr<grpc::Server>> server =
      StartWorkerServer(&service, listen, &port);
  if (!server.ok()) return ReportError(server.status());
  std::cout << "listening on " << host << ":" << port << std::endl;
  if (options.token.empty() && !options.tls && host != "127.0.0.1" && host != "localhost" && host != "[::1]") {
    std::cerr << "worker: no --token-file: anyone who can reach " << host << ":" << port
              << " can load models and send activations" << std::endl;
  }
  if (*mem_limit > 0) {
    std::cerr << "worker: memory limit " << HumanBytes(*mem_limit) << std::endl;
  }

  int signal_number = 0;
  sigwait(&stop, &signal_number);
  std::cerr << "worker: " << strsignal(signal_number) << ", shutting down"
            << std::endl;
  service.Shutdown();
  (*server)->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
  (*server)->Wait();
  return 0;
}

}  // namespace layerpool::cli
