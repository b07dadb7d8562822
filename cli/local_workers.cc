#include "cli/local_workers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "proto/peer_token.h"

namespace layerpool::cli {
namespace {

constexpr int kStartTimeoutMs = 15000;

// Reads one line from `fd` within the timeout; false on timeout or EOF.
bool ReadLine(int fd, int timeout_ms, std::string* line) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(timeout_ms);
  line->clear();
  char c;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (c == '\n') return true;
    line->push_back(c);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalWorkers>> LocalWorkers::Start(int count,
                                                                  int threads) {
  std::unique_ptr<LocalWorkers> w(new LocalWorkers());
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return absl::InternalError("cannot find this program's path");
  self[len] = '\0';
  const std::string threads_arg = std::to_string(threads);
  // A fresh shared secret, in a file only we can read, for the workers'
  // --token-file: nothing else on this host can drive them.
  w->token_ = RandomPeerToken();
  char token_path[] = "/tmp/layerpool-token-XXXXXX";
  const int token_fd = mkstemp(token_path);  // mode 0600
  if (token_fd < 0 || write(token_fd, w->token_.data(), w->token_.size()) !=
                          static_cast<ssize_t>(w->token_.size())) {
    if (token_fd >= 0) close(token_fd);
    return absl::InternalError(absl::StrCat("writing the workers' token: ", std::strerror(errno)));
  }
  close(token_fd);
  // Every worker has read it once it reports its address.
  struct Unlink {
    const char* path;
    ~Unlink() { unlink(path); }
  } unlink_token{token_path};
  for (int i = 0; i < count; ++i) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
    }
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
      dup2(out[1], STDOUT_FILENO);
      const char* argv[] = {self,          "worker",      "--listen",
                            "127.0.0.1:0", "--threads",   threads_arg.c_str(),
                            "--token-file", token_path,  nullptr};
      execv(self, const_cast<char* const*>(argv));
      _exit(127);
    }
    close(out[1]);
    w->pids_.push_back(pid);
    std::string line;
    const bool ok = ReadLine(out[0], kStartTimeoutMs, &line);
    close(out[0]);
    absl::string_view address = line;
    if (!ok || !absl::ConsumePrefix(&address, "listening on ")) {
      return absl::UnavailableError(absl::StrCat(
          "local worker ", i, " (pid ", pid, ") did not report its address within ",
          kStartTimeoutMs / 1000, " s", line.empty() ? "" : absl::StrCat(": got '", line, "'")));
    }
    w->addresses_.emplace_back(address);
  }
  return w;
}

LocalWorkers::~LocalWorkers() {
  for (pid_t pid : pids_) kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (pid_t pid : pids_) {
    while (waitpid(pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

}  // namespace layerpool::cli
