// libFuzzer target for the GGUF reader: any byte string must either parse or
// be rejected with a status, never crash or read outside the input. When a
// file parses, everything a caller could touch is touched too.

#include <cstddef>
#include <cstdint>
#include <span>

#include "model/gguf/gguf.h"
#include "model/hparams/hparams.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace layerpool;
  auto file = gguf::GgufFile::Parse(std::span<const uint8_t>(data, size));
  if (!file.ok()) return 0;
  size_t sink = 0;
  for (const gguf::KeyValue& kv : (*file)->metadata()) {
    sink += kv.value.DebugString().size();
  }
  for (const gguf::TensorInfo& t : (*file)->tensors()) {
    auto bytes = (*file)->TensorData(t);
    if (bytes.ok() && !bytes->empty()) sink += (*bytes)[bytes->size() - 1];
  }
  auto hp = ReadHParams(**file);
  if (hp.ok()) sink += static_cast<size_t>(KvBytesPerToken(*hp, hp->n_layer, 2));
  return sink == 1 ? 0 : 0;
}
