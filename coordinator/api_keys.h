// API keys for the public APIs: read from a file, checked in constant time.
// The HTTP API reads them from the Authorization header, the gRPC Inference
// API from the `authorization` metadata; both take "Bearer KEY".
#ifndef LAYERPOOL_COORDINATOR_API_KEYS_H_
#define LAYERPOOL_COORDINATOR_API_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace layerpool {

// One key per line; blank lines and lines starting with '#' are skipped,
// surrounding whitespace dropped. NotFound for an unreadable file,
// InvalidArgument for one that holds no key.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ReadApiKeys(const std::string& path);

// Whether "Bearer KEY" (or a bare KEY) names one of `keys`. Every byte of
// every key is compared, so the time taken does not tell how much matched.
bool KeyMatches(const std::string& authorization, const std::vector<std::string>& keys);

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_API_KEYS_H_
