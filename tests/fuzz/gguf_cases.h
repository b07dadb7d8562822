// Hand-made GGUF files for tests and the fuzzer: one valid example that
// uses every metadata value type, and a list of corrupt files, each with the
// status code and message fragment the reader must answer with. The unit
// test checks those answers; tests/fuzz/gguf_corpus writes the same bytes as
// the fuzzer's seed corpus.
#ifndef LAYERPOOL_TESTS_FUZZ_GGUF_CASES_H_
#define LAYERPOOL_TESTS_FUZZ_GGUF_CASES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/gguf/writer.h"

namespace layerpool::gguf::cases {

// A small valid file: 13 metadata entries of every type (with a nested
// array) and two tensors (f32 and q8_0).
GgufWriter ExampleWriter();

struct CorruptCase {
  const char* name;  // also the corpus file name: bad-<name>
  std::string bytes;
  absl::StatusCode code;
  const char* message;  // must appear in the error message
};
std::vector<CorruptCase> CorruptGgufCases();

}  // namespace layerpool::gguf::cases

#endif  // LAYERPOOL_TESTS_FUZZ_GGUF_CASES_H_
