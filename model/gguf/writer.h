// Writing GGUF files (version 3).
//
// Metadata and tensor descriptions are collected first; WriteFile then
// writes the header and streams each tensor's bytes, asking a Filler for a
// bounded number of rows at a time, so a file far larger than memory (a
// 405B-shape model) can be written with a few megabytes of buffer. The file
// is written to "<path>.tmp" and renamed into place only when complete, so
// an error or a crash never leaves a half-written model under `path`.
//
// Not thread-safe; one writer per file.
#ifndef LAYERPOOL_MODEL_GGUF_WRITER_H_
#define LAYERPOOL_MODEL_GGUF_WRITER_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/gguf/gguf.h"

namespace layerpool::gguf {

class GgufWriter {
 public:
  // Produces rows [first_row, first_row + n_rows) of a tensor into `out`
  // (exactly n_rows * row bytes). Rows are the tensor's shape[1..] flattened.
  using Filler = std::function<absl::Status(int64_t first_row, int64_t n_rows,
                                            std::span<uint8_t> out)>;
  // Called after each chunk with bytes written so far and the total.
  using Progress = std::function<void(uint64_t done, uint64_t total)>;

  GgufWriter() = default;

  // Sets the data alignment (a power of two) and records it as
  // general.alignment when it differs from the default 32.
  [[nodiscard]] absl::Status SetAlignment(uint64_t alignment);

  // Appends a metadata entry, or replaces the value of an existing key in
  // place (keeping its position).
  void Set(std::string key, Value value);

  // Adds a tensor whose bytes come from `fill`. InvalidArgument for a
  // duplicate or over-long name, more than 4 dimensions, a negative
  // dimension or a row length that is not a multiple of the block size.
  [[nodiscard]] absl::Status AddTensor(std::string name, GgmlType type,
                                       std::vector<int64_t> shape, Filler fill);
  // Adds a tensor from bytes held in memory (copied).
  [[nodiscard]] absl::Status AddTensor(std::string name, GgmlType type,
                                       std::vector<int64_t> shape,
                                       std::vector<uint8_t> data);

  // Writes the file atomically (see above).
  [[nodiscard]] absl::Status WriteFile(const std::string& path,
                                       const Progress& progress = nullptr) const;
  // Whole file in memory (tests, small files).
  [[nodiscard]] absl::StatusOr<std::string> WriteToString() const;

  uint64_t tensor_bytes() const;

 private:
  struct Tensor {
    TensorInfo info;
    Filler fill;
  };
  std::string EncodeHeader() const;
  absl::Status WriteTo(const std::function<absl::Status(const void*, size_t)>& sink,
                       const Progress& progress) const;

  uint64_t alignment_ = kDefaultAlignment;
  std::vector<KeyValue> metadata_;
  std::vector<Tensor> tensors_;
  uint64_t next_offset_ = 0;
};

}  // namespace layerpool::gguf

#endif  // LAYERPOOL_MODEL_GGUF_WRITER_H_
