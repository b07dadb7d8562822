// Byte counts for people: "512 B", "6.1 KiB", "643.8 MiB", "41.2 GiB"
// (binary units, one decimal). Used in CLI output and error messages.
#ifndef LAYERPOOL_BASE_HUMAN_BYTES_H_
#define LAYERPOOL_BASE_HUMAN_BYTES_H_

#include <cstdint>
#include <string>

namespace layerpool {

std::string HumanBytes(uint64_t bytes);

}  // namespace layerpool

#endif  // LAYERPOOL_BASE_HUMAN_BYTES_H_
