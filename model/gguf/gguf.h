// Reading GGUF model files (versions 2 and 3).
//
// A GGUF file is a header (magic, version, counts), a list of typed key/value
// metadata, a list of tensor descriptions, then, after padding to the file's
// alignment, the tensor data. GgufFile parses and validates everything up to
// the data and gives access to the data through read-only memory mappings.
//
// Validation is strict and every error names what is wrong and where, e.g.
// "tensor 7 (blk.0.attn_q.weight): data [4096, 8192) lies outside the data
// section (6000 bytes)". Input is never trusted: no read outside the file,
// no count or size that can overflow, no crash. Errors are InvalidArgument
// (not a GGUF file / malformed), DataLoss (truncated), Unimplemented (a
// version this reader does not speak), or the I/O error of opening the file.
//
// Thread safety: a GgufFile is immutable after Open and may be shared between
// threads. TensorData spans stay valid as long as the GgufFile (or the
// TensorMap they came from) lives.
#ifndef LAYERPOOL_MODEL_GGUF_GGUF_H_
#define LAYERPOOL_MODEL_GGUF_GGUF_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mapped_file.h"
#include "model/gguf/value.h"
#include "model/quant/types.h"

namespace layerpool::gguf {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr int kMaxDims = 4;  // GGML_MAX_DIMS

struct TensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  // GGML order: shape[0] is the fastest-varying (row length); a matrix of
  // `rows` x `cols` is {cols, rows}.
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t size_bytes = 0;
  int64_t n_elements = 0;

  int64_t row_length() const { return shape.empty() ? 1 : shape[0]; }
  int64_t n_rows() const;  // product of shape[1..]
};

class GgufFile {
 public:
  struct Options {
    // Keep the whole file mapped so TensorData works for every tensor. A
    // worker that holds a few layers turns this off and calls MapTensors.
    bool map_data = true;
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GgufFile>> Open(
      const std::string& path, Options options);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GgufFile>> Open(
      const std::string& path) {
    return Open(path, Options());
  }

  // Parses a file held in memory (tests and the fuzzer). `bytes` must stay
  // alive as long as TensorData results are used.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<GgufFile>> Parse(
      std::span<const uint8_t> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of data
  uint64_t file_size() const { return file_size_; }
  const std::string& path() const { return path_; }

  // Metadata in file order.
  const std::vector<KeyValue>& metadata() const { return metadata_; }
  const Value* FindValue(absl::string_view key) const;

  // Typed lookups. NotFound when absent, InvalidArgument when the stored type
  // does not fit (e.g. a negative int32 read as unsigned, a string as int).
  absl::StatusOr<std::string> GetString(absl::string_view key) const;
  absl::StatusOr<uint64_t> GetUint(absl::string_view key) const;
  absl::StatusOr<int64_t> GetInt(absl::string_view key) const;
  absl::StatusOr<double> GetFloat(absl::string_view key) const;
  absl::StatusOr<bool> GetBool(absl::string_view key) const;
  absl::StatusOr<const Array*> GetArray(absl::string_view key) const;

  // Tensors in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(absl::string_view name) const;

  // The bytes of one tensor. FailedPrecondition if opened with
  // map_data = false.
  absl::StatusOr<std::span<const uint8_t>> TensorData(
      const TensorInfo& tensor) const;

  // Sum of all tensors' bytes and elements.
  uint64_t total_tensor_bytes() const;
  int64_t total_elements() const;

 private:
  friend class Parser;
  GgufFile() = default;

  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  uint64_t file_size_ = 0;
  std::vector<KeyValue> metadata_;
  absl::flat_hash_map<std::string, size_t> metadata_index_;
  std::vector<TensorInfo> tensors_;
  absl::flat_hash_map<std::string, size_t> tensor_index_;
  MappedFile mapping_;                      // when opened from a path
  std::span<const uint8_t> bytes_;          // whole file, when mapped
};

// The data of a chosen subset of a file's tensors, mapped on its own: only
// the byte range from the first to the last chosen tensor is mapped, so a
// pipeline stage never maps the other stages' layers.
class TensorMap {
 public:
  // Maps the tensors of `file` for which `keep` returns true.
  [[nodiscard]] static absl::StatusOr<TensorMap> Map(
      const GgufFile& file, const std::function<bool(const TensorInfo&)>& keep);

  const std::vector<const TensorInfo*>& tensors() const { return tensors_; }
  const TensorInfo* Find(absl::string_view name) const;
  // NotFound if `tensor` is not one of the mapped ones.
  absl::StatusOr<std::span<const uint8_t>> Data(const TensorInfo& tensor) const;
  uint64_t mapped_bytes() const { return mapping_.bytes().size(); }

 private:
  std::vector<const TensorInfo*> tensors_;
  MappedFile mapping_;
  uint64_t base_offset_ = 0;  // data-section offset of mapping_.bytes()[0]
};

}  // namespace layerpool::gguf

#endif  // LAYERPOOL_MODEL_GGUF_GGUF_H_
