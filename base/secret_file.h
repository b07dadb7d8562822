// Secrets kept in files, one per line (the public APIs' keys, the workers'
// shared token): read with blank lines and '#' comments skipped, and
// compared in constant time.
#ifndef LAYERPOOL_BASE_SECRET_FILE_H_
#define LAYERPOOL_BASE_SECRET_FILE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace layerpool {

// The lines of `path` that are neither blank nor '#' comments, without
// surrounding whitespace (possibly none). NotFound "cannot read <what>
// <path>" for an unreadable file.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ReadSecretLines(const std::string& path,
                                                                       std::string_view what);

// given == secret, looking at every byte of `secret` whatever matches, so
// the time taken does not tell how much of it was right.
bool SecretEquals(std::string_view given, std::string_view secret);

}  // namespace layerpool

#endif  // LAYERPOOL_BASE_SECRET_FILE_H_
