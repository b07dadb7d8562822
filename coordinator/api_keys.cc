#include "coordinator/api_keys.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/secret_file.h"
#include "base/status_macros.h"

namespace layerpool {

absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& path) {
  LP_ASSIGN_OR_RETURN(std::vector<std::string> keys, ReadSecretLines(path, "the API key file"));
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": holds no API key (one per line)"));
  }
  return keys;
}

bool KeyMatches(const std::string& authorization, const std::vector<std::string>& keys) {
  std::string given = authorization;
  if (absl::StartsWithIgnoreCase(given, "Bearer ")) given = given.substr(7);
  given = std::string(absl::StripAsciiWhitespace(given));
  bool match = false;
  for (const std::string& key : keys) match |= SecretEquals(given, key);
  return match;
}

}  // namespace layerpool
