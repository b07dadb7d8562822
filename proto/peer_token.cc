#include "proto/peer_token.h"

#include <random>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/secret_file.h"
#include "base/status_macros.h"

namespace layerpool {

absl::StatusOr<std::string> ReadPeerToken(const std::string& path) {
  LP_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadSecretLines(path, "the token file"));
  if (lines.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " holds no token"));
  if (lines[0].size() < 16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the token in ", path, " has ", lines[0].size(), " characters; use at least 16"));
  }
  return lines[0];
}

std::string RandomPeerToken() {
  std::random_device source;  // the system's random source on Linux
  std::string token;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&token, absl::Hex(source(), absl::kZeroPad8));
  return token;
}

void AddPeerToken(grpc::ClientContext* context, const std::string& token) {
  if (!token.empty()) context->AddMetadata(kPeerTokenMetadata, token);
}

bool IsCoordinatorId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

const std::string& ThisCoordinatorId() {
  static const std::string id = RandomPeerToken();
  return id;
}

void AddCoordinatorId(grpc::ClientContext* context, const std::string& id) {
  if (!id.empty()) context->AddMetadata(kCoordinatorMetadata, id);
}

std::string CoordinatorIdOf(const grpc::ServerContext* context) {
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find(kCoordinatorMetadata);
  if (it == metadata.end()) return "";
  std::string id(it->second.data(), it->second.size());
  return IsCoordinatorId(id) ? id : "";
}

grpc::Status CheckPeerToken(const grpc::ServerContext* context, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find(kPeerTokenMetadata);
  const bool same =
      it != metadata.end() &&
      SecretEquals(std::string_view(it->second.data(), it->second.size()), token);
  if (same) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      it == metadata.end()
                          ? "this worker requires a token: start the coordinator with the same "
                            "--token-file"
                          : "wrong token: the coordinator's --token-file differs from this worker's");
}

}  // namespace layerpool
