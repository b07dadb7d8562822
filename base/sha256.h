// SHA-256 (FIPS 180-4), for content hashes of model data. Plain and
// portable; hashing speed matters little next to reading the bytes.
#ifndef LAYERPOOL_BASE_SHA256_H_
#define LAYERPOOL_BASE_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace layerpool {

class Sha256 {
 public:
  Sha256();
  void Update(std::span<const uint8_t> bytes);
  void Update(const void* data, size_t size) {
    Update(std::span(static_cast<const uint8_t*>(data), size));
  }
  // The digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> Finish();
  // Finish() as 64 lowercase hex digits.
  std::string FinishHex();

 private:
  void Block(const uint8_t* p);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace layerpool

#endif  // LAYERPOOL_BASE_SHA256_H_
