#include "worker/model_access.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace layerpool {

bool IsLocalPeer(std::string_view peer) {
  for (std::string_view local : {"ipv4:127.", "ipv6:[::1]", "ipv6:%5B::1%5D", "unix:"}) {
    if (peer.starts_with(local)) return true;
  }
  return false;
}

absl::StatusOr<std::string> CanonicalModelDir(const std::string& dir) {
  std::error_code error;
  const std::filesystem::path canonical = std::filesystem::canonical(dir, error);
  if (error || !std::filesystem::is_directory(canonical, error)) {
    return absl::InvalidArgumentError(absl::StrCat(dir, " is not a directory"));
  }
  return canonical.string();
}

absl::Status CheckModelAccess(const std::string& path, const std::string& model_dir,
                              bool local_peer) {
  if (model_dir.empty()) {
    if (local_peer) return absl::OkStatus();
    return absl::PermissionDeniedError(
        "this worker has no --model-dir, so it opens models only for a coordinator on its own "
        "host; start it with --model-dir DIR");
  }
  std::error_code error;
  const std::filesystem::path resolved = std::filesystem::canonical(path, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat("model_path ", path, ": ", error.message()));
  }
  const std::string inside = model_dir == "/" ? "/" : model_dir + "/";
  if (!resolved.string().starts_with(inside)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "model_path ", path, " (", resolved.string(), ") is outside this worker's --model-dir ",
        model_dir));
  }
  if (!std::filesystem::is_regular_file(resolved, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_path ", path, " is not a regular file"));
  }
  return absl::OkStatus();
}

}  // namespace layerpool
