// Writes the fuzzer's seed corpus into the folder given as argv[1]: the
// valid example file and every corrupt case of gguf_cases.h.

#include <cstdio>
#include <fstream>
#include <iostream>

#include "tests/fuzz/gguf_cases.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: gguf_corpus DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out << bytes;
    return static_cast<bool>(out);
  };
  auto example = layerpool::gguf::cases::ExampleWriter().WriteToString();
  if (!example.ok() || !write("good-example.gguf", *example)) return 1;
  for (const auto& c : layerpool::gguf::cases::CorruptGgufCases()) {
    if (!write(std::string("bad-") + c.name + ".gguf", c.bytes)) return 1;
  }
  return 0;
}
