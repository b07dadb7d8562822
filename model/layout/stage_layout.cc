#include "model/layout/stage_layout.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "base/sha256.h"

namespace layerpool {
namespace {

constexpr uint64_t kWindowBytes = 4096;

// Reads [offset, offset + size) of the open file into `out`.
absl::Status ReadAt(int fd, const std::string& path, uint64_t offset,
                    uint64_t size, std::vector<uint8_t>* out) {
  out->resize(size);
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, out->data() + done, size - done,
                            static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::DataLossError(absl::StrFormat(
          "%s: reading %d bytes at offset %d: %s", path, size - done,
          offset + done, n < 0 ? std::strerror(errno) : "unexpected end of file"));
    }
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

template <typename T>
void HashValue(Sha256& h, T value) {
  h.Update(&value, sizeof(value));
}

}  // namespace

int64_t LayerOfTensor(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "blk.")) return -1;
  int64_t layer = 0;
  size_t p = 0;
  while (p < name.size() && absl::ascii_isdigit(static_cast<unsigned char>(name[p]))) {
    layer = layer * 10 + (name[p++] - '0');
    if (layer > (int64_t{1} << 30)) return -1;
  }
  return p > 0 && p < name.size() && name[p] == '.' ? layer : -1;
}

bool HasTiedOutput(const gguf::GgufFile& file) {
  return file.FindTensor("output.weight") == nullptr;
}

bool StageHoldsTensor(absl::string_view name, int64_t first, int64_t end,
                      int64_t n_layer, bool tied_output) {
  const int64_t layer = LayerOfTensor(name);
  if (layer >= 0) return layer >= first && layer < end;
  const bool is_last = end == n_layer;
  if (name == "token_embd.weight") return first == 0 || (is_last && tied_output);
  if (name == "output_norm.weight" || name == "output.weight") return is_last;
  // Llama 3.1's and Phi-3's RoPE factors: every layer rotates with them.
  if (name == "rope_freqs.weight" || name == "rope_factors_long.weight" ||
      name == "rope_factors_short.weight") {
    return true;
  }
  return false;
}

uint64_t StageScratchBytes(const HParams& hp, int64_t batch) {
  const uint64_t rows = static_cast<uint64_t>(std::max<int64_t>(batch, 1));
  const uint64_t q = static_cast<uint64_t>(hp.n_head * hp.head_dim);
  const uint64_t kv = static_cast<uint64_t>(hp.n_head_kv * hp.head_dim);
  const uint64_t per_row = 4 * static_cast<uint64_t>(hp.n_embd) + 2 * q + 2 * kv +
                           2 * static_cast<uint64_t>(hp.n_ff) +
                           static_cast<uint64_t>(hp.n_vocab);
  return rows * per_row * sizeof(float) + (uint64_t{16} << 20);
}

absl::StatusOr<std::string> StageFingerprint(const gguf::GgufFile& file,
                                             int64_t first, int64_t end,
                                             int64_t n_layer) {
  if (first < 0 || first >= end || end > n_layer) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "layer range [%d, %d) is not inside [0, %d)", first, end, n_layer));
  }
  const int fd = open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(
        absl::StrCat(file.path(), ": ", std::strerror(errno)));
  }
  const bool tied = HasTiedOutput(file);
  Sha256 h;
  std::vector<uint8_t> window;
  absl::Status status;
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (!StageHoldsTensor(t.name, first, end, n_layer, tied)) continue;
    h.Update(t.name.data(), t.name.size() + 1);  // with the terminating NUL
    HashValue(h, static_cast<uint32_t>(t.type));
    HashValue(h, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) HashValue(h, d);
    HashValue(h, t.size_bytes);
    const uint64_t base = file.data_offset() + t.offset;
    const uint64_t starts[3] = {
        0, (t.size_bytes / 2) & ~(kWindowBytes - 1),
        t.size_bytes > kWindowBytes ? t.size_bytes - kWindowBytes : 0};
    for (uint64_t start : starts) {
      const uint64_t size = std::min(kWindowBytes, t.size_bytes - start);
      status = ReadAt(fd, file.path(), base + start, size, &window);
      if (!status.ok()) break;
      h.Update(window);
    }
    if (!status.ok()) break;
  }
  close(fd);
  if (!status.ok()) return status;
  return absl::StrCat("sha256:", h.FinishHex());
}

}  // namespace layerpool
