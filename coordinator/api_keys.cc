#include "coordinator/api_keys.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace layerpool {

absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the API key file ", path));
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    const std::string key(absl::StripAsciiWhitespace(line));
    if (key.empty() || key[0] == '#') continue;
    keys.push_back(key);
  }
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
  for (const std::string& key : keys) {
    unsigned char diff = given.size() == key.size() ? 0 : 1;
    for (size_t i = 0; i < key.size(); ++i) {
      diff |= static_cast<unsigned char>(key[i] ^ (i < given.size() ? given[i] : 0));
    }
    match |= diff == 0;
  }
  return match;
}

}  // namespace layerpool
