#include "proto/peer_token.h"

#include <fstream>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace layerpool {

absl::StatusOr<std::string> ReadPeerToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the token file ", path));
  std::string line;
  while (std::getline(in, line)) {
    const std::string token(absl::StripAsciiWhitespace(line));
    if (token.empty() || token[0] == '#') continue;
    if (token.size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the token in ", path, " has ", token.size(), " characters; use at least 16"));
    }
    return token;
  }
  return absl::InvalidArgumentError(absl::StrCat(path, " holds no token"));
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

grpc::Status CheckPeerToken(const grpc::ServerContext* context, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find(kPeerTokenMetadata);
  bool same = false;
  if (it != metadata.end() && it->second.size() == token.size()) {
    unsigned char diff = 0;  // every byte compared, whatever matches
    for (size_t i = 0; i < token.size(); ++i) {
      diff |= static_cast<unsigned char>(it->second.data()[i] ^ token[i]);
    }
    same = diff == 0;
  }
  if (same) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      it == metadata.end()
                          ? "this worker requires a token: start the coordinator with the same "
                            "--token-file"
                          : "wrong token: the coordinator's --token-file differs from this worker's");
}

}  // namespace layerpool
