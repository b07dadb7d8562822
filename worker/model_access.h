// Which model files a worker opens for a coordinator (`worker --model-dir`).
//
// A coordinator names the model by path on the worker's disk. With a model
// directory, only regular files inside it are served: the path is resolved
// (every symlink followed) before the check, so a link that escapes the
// directory is refused, and so are FIFOs and devices. Without one, only a
// coordinator on the worker's own host (loopback or a Unix socket) may name
// files: the quick start keeps working, a remote one must be given a
// directory to read from.
#ifndef LAYERPOOL_WORKER_MODEL_ACCESS_H_
#define LAYERPOOL_WORKER_MODEL_ACCESS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace layerpool {

// Whether gRPC's peer string ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000",
// "unix:...") is this host.
bool IsLocalPeer(std::string_view peer);

// `dir` resolved to an absolute path without symlinks; InvalidArgument when
// it is not a directory.
[[nodiscard]] absl::StatusOr<std::string> CanonicalModelDir(const std::string& dir);

// OK when the worker may open `path` for a peer (`local_peer`: IsLocalPeer)
// under `model_dir` (CanonicalModelDir's result, or empty for none).
// PermissionDenied naming the rule otherwise; InvalidArgument for something
// that is not a regular file; NotFound for a missing one.
[[nodiscard]] absl::Status CheckModelAccess(const std::string& path, const std::string& model_dir,
                                            bool local_peer);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_MODEL_ACCESS_H_
