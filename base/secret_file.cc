#include "base/secret_file.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace layerpool {

absl::StatusOr<std::vector<std::string>> ReadSecretLines(const std::string& path,
                                                         std::string_view what) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", std::string(what), " ", path));
  std::vector<std::string> secrets;
  std::string line;
  while (std::getline(in, line)) {
    std::string secret(absl::StripAsciiWhitespace(line));
    if (!secret.empty() && secret[0] != '#') secrets.push_back(std::move(secret));
  }
  return secrets;
}

bool SecretEquals(std::string_view given, std::string_view secret) {
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i) {
    diff |= static_cast<unsigned char>(secret[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

}  // namespace layerpool
