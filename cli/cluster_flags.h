// Flags of the commands that run a pipeline (run --local-workers, serve,
// bench-split): how to split the layers and what crosses the links.
#ifndef LAYERPOOL_CLI_CLUSTER_FLAGS_H_
#define LAYERPOOL_CLI_CLUSTER_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "coordinator/cluster.h"

namespace layerpool::cli {

struct ClusterFlags {
  std::string split = "auto";  // "auto" or layer counts "3,3,6"
  std::string tensor_split;    // ratios "0.25,0.75"
  std::string activation_type = "f32";
  std::string stage_links = "auto";
  int64_t max_sequences = 8;
  std::string token_file;  // the workers' shared secret
  std::string tls_dir;     // mutual TLS with the workers

  void Register(FlagSet& flags);
  // Fills the split, wire type and engine settings of `options`;
  // InvalidArgument naming the flag.
  [[nodiscard]] absl::Status Apply(const EngineFlags& engine,
                                   ClusterOptions* options) const;
};

// --activation-type's value: f32, f16, bf16 or q8_0 (InvalidArgument
// naming the flag otherwise).
[[nodiscard]] absl::StatusOr<v1::ElementType> ParseActivationType(const std::string& name);

}  // namespace layerpool::cli

#endif  // LAYERPOOL_CLI_CLUSTER_FLAGS_H_
