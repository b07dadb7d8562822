#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace layerpool {
namespace {

absl::Status ErrnoStatus(int err, const std::string& what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Closes a file descriptor at scope exit; the mapping outlives it.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

absl::StatusOr<MappedFile> MappedFile::Open(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file"));
  }
  return OpenRange(path, 0, static_cast<uint64_t>(st.st_size));
}

absl::StatusOr<MappedFile> MappedFile::OpenRange(const std::string& path,
                                                 uint64_t offset,
                                                 uint64_t length) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  FdCloser closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (offset > file_size || length > file_size - offset) {
    return absl::OutOfRangeError(
        absl::StrCat("range [", offset, ", ", offset + length, ") of ", path,
                     " lies outside the file (", file_size, " bytes)"));
  }
  MappedFile mapped;
  mapped.file_size_ = file_size;
  if (length == 0) return mapped;

  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t map_offset = offset - offset % page;
  const uint64_t lead = offset - map_offset;
  void* base = mmap(nullptr, lead + length, PROT_READ, MAP_PRIVATE, fd,
                    static_cast<off_t>(map_offset));
  if (base == MAP_FAILED) return ErrnoStatus(errno, absl::StrCat("mmap ", path));
  mapped.base_ = base;
  mapped.mapped_length_ = lead + length;
  mapped.data_ = static_cast<const uint8_t*>(base) + lead;
  mapped.size_ = length;
  return mapped;
}

MappedFile::MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Reset();
    base_ = other.base_;
    mapped_length_ = other.mapped_length_;
    data_ = other.data_;
    size_ = other.size_;
    file_size_ = other.file_size_;
    other.base_ = nullptr;
    other.mapped_length_ = 0;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() { Reset(); }

void MappedFile::Reset() {
  if (base_ != nullptr) munmap(base_, mapped_length_);
  base_ = nullptr;
  mapped_length_ = 0;
  data_ = nullptr;
  size_ = 0;
}

}  // namespace layerpool
