// Byte counts for people, both ways.
//
// HumanBytes writes "512 B", "6.1 KiB", "643.8 MiB", "41.2 GiB" (binary
// units, one decimal), for CLI output and error messages.
//
// ParseBytes reads what a person types for a memory size (--mem-limit):
// a non-negative number, optionally with a fraction, then an optional unit,
// case-insensitive, with optional space between:
//   B                    bytes (the default)
//   KiB MiB GiB TiB      powers of 1024
//   K M G T              powers of 1024 too (as docker and the JVM read them)
//   KB MB GB TB          powers of 1000
// e.g. "24GiB", "512MiB", "1.5GB", "1000000". Fractions of a byte round
// down. InvalidArgument names the text for anything else: no number, an
// unknown unit, a negative value, or more than 2^64 - 1 bytes.
#ifndef LAYERPOOL_BASE_HUMAN_BYTES_H_
#define LAYERPOOL_BASE_HUMAN_BYTES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace layerpool {

std::string HumanBytes(uint64_t bytes);

[[nodiscard]] absl::StatusOr<uint64_t> ParseBytes(absl::string_view text);

}  // namespace layerpool

#endif  // LAYERPOOL_BASE_HUMAN_BYTES_H_
