// Worker processes on this machine, for `run --local-workers` and the split
// benchmark: each is this binary's `worker` command on a free loopback port.
//
// The children die with the parent (PR_SET_PDEATHSIG), so a crash here
// never leaves workers behind; the destructor stops them with SIGTERM and,
// after a grace period, SIGKILL.
#ifndef LAYERPOOL_CLI_LOCAL_WORKERS_H_
#define LAYERPOOL_CLI_LOCAL_WORKERS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace layerpool::cli {

class LocalWorkers {
 public:
  // Starts `count` workers with `threads` compute threads each, and waits
  // until each says where it listens. Must be called before this process
  // starts threads of its own (it forks).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LocalWorkers>> Start(
      int count, int threads);
  ~LocalWorkers();

  const std::vector<std::string>& addresses() const { return addresses_; }
  // The shared secret the workers were started with (--token-file): give it
  // to the coordinator (ClusterOptions::token).
  const std::string& token() const { return token_; }
  const std::vector<pid_t>& pids() const { return pids_; }

 private:
  LocalWorkers() = default;
  std::vector<pid_t> pids_;
  std::vector<std::string> addresses_;
  std::string token_;
};

}  // namespace layerpool::cli

#endif  // LAYERPOOL_CLI_LOCAL_WORKERS_H_
