// Read-only memory mapping of a whole file or of a byte range of it.
//
// A MappedFile owns its mapping and unmaps it on destruction; it is movable,
// not copyable. Pages are read from disk only when touched, so mapping a
// 40 GB model and reading one layer costs that layer's pages of resident
// memory. Thread safety: the mapped bytes are immutable and may be read from
// any number of threads.
#ifndef LAYERPOOL_BASE_MAPPED_FILE_H_
#define LAYERPOOL_BASE_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace layerpool {

class MappedFile {
 public:
  // Maps all of `path`. Errors: NotFound / PermissionDenied from open(2),
  // Internal for a failed mmap. An empty file maps to an empty span.
  [[nodiscard]] static absl::StatusOr<MappedFile> Open(const std::string& path);

  // Maps bytes [offset, offset + length) of `path`; the file must be at least
  // that long (OutOfRange otherwise). Only the pages covering the range are
  // mapped, so a worker that maps its own layers never maps the rest.
  [[nodiscard]] static absl::StatusOr<MappedFile> OpenRange(
      const std::string& path, uint64_t offset, uint64_t length);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // The requested bytes (not the page-aligned mapping around them).
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // Size of the whole file on disk when it was opened.
  uint64_t file_size() const { return file_size_; }

 private:
  void Reset();

  void* base_ = nullptr;  // what mmap returned
  size_t mapped_length_ = 0;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint64_t file_size_ = 0;
};

}  // namespace layerpool

#endif  // LAYERPOOL_BASE_MAPPED_FILE_H_
