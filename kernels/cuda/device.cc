// The device queries and DeviceBuffer over the CUDA runtime API. Built by the
// host compiler: nothing here runs on the device.

#include "kernels/cuda/device.h"

#include <cuda_runtime.h>

#include <cstdio>
#include <utility>

namespace layerpool::kernels::cuda {
namespace {

// nvidia-smi's spelling of a GPU UUID, which is also what NCCL and
// CUDA_VISIBLE_DEVICES accept, so that logs can be matched with both.
std::string FormatUuid(const cudaUUID_t& uuid) {
  const auto* b = reinterpret_cast<const unsigned char*>(uuid.bytes);
  char text[64];
  std::snprintf(text, sizeof(text),
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                "%02x%02x%02x%02x%02x%02x",
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                b[10], b[11], b[12], b[13], b[14], b[15]);
  return text;
}

}  // namespace

std::string CudaErrorText(int status, const char* what) {
  if (status == cudaSuccess) return "";
  const auto error = static_cast<cudaError_t>(status);
  return std::string(what) + ": " + cudaGetErrorString(error) + " (" +
         cudaGetErrorName(error) + ")";
}

int CudaDeviceCount(std::string* why_none) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // The runtime latches some of these errors; clear the sticky copy so
    // that later, unrelated calls do not report it again.
    (void)cudaGetLastError();
    count = 0;
  }
  if (why_none != nullptr) {
    *why_none = status != cudaSuccess ? cudaGetErrorString(status)
                : count == 0          ? "no CUDA device is visible"
                                      : "";
  }
  return count;
}

DeviceInfo CudaDeviceInfo(int index) {
  DeviceInfo info;
  info.index = index;
  std::string why_none;
  const int count = CudaDeviceCount(&why_none);
  if (index < 0 || index >= count) {
    info.error = "no CUDA device " + std::to_string(index) +
                 ": the machine has " + std::to_string(count) +
                 (count == 1 ? " device" : " devices");
    if (!why_none.empty()) info.error += " (" + why_none + ")";
    return info;
  }
  cudaDeviceProp prop{};
  info.error = CudaErrorText(cudaGetDeviceProperties(&prop, index),
                             "cudaGetDeviceProperties");
  if (!info.error.empty()) return info;
  info.name = prop.name;
  info.uuid = FormatUuid(prop.uuid);
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;

  // cudaMemGetInfo reports on the current device, so switch to `index` for
  // the call and back afterwards.
  int previous = 0;
  info.error = CudaErrorText(cudaGetDevice(&previous), "cudaGetDevice");
  if (!info.error.empty()) return info;
  info.error = CudaErrorText(cudaSetDevice(index), "cudaSetDevice");
  if (!info.error.empty()) return info;
  size_t free_bytes = 0, total_bytes = 0;
  info.error = CudaErrorText(cudaMemGetInfo(&free_bytes, &total_bytes),
                             "cudaMemGetInfo");
  (void)cudaSetDevice(previous);
  info.free_bytes = free_bytes;
  info.total_bytes = total_bytes;
  return info;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      device_(std::exchange(other.device_, -1)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Free(); }

void DeviceBuffer::Free() {
  if (data_ != nullptr) {
    // A failure here means the context is already gone (process exit, a
    // sticky kernel fault); there is nothing left to release.
    (void)cudaSetDevice(device_);
    (void)cudaFree(data_);
  }
  data_ = nullptr;
  size_ = 0;
  device_ = -1;
}

std::string DeviceBuffer::Allocate(int device, size_t bytes) {
  Free();
  std::string error = CudaErrorText(cudaSetDevice(device), "cudaSetDevice");
  if (!error.empty()) return error;
  error = CudaErrorText(
      cudaMalloc(&data_, bytes),
      ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  if (!error.empty()) {
    data_ = nullptr;
    return error;
  }
  size_ = bytes;
  device_ = device;
  return "";
}

std::string DeviceBuffer::Upload(const void* host, size_t bytes) {
  if (bytes > size_) return "DeviceBuffer::Upload: more bytes than the buffer";
  std::string error = CudaErrorText(cudaSetDevice(device_), "cudaSetDevice");
  if (!error.empty()) return error;
  return CudaErrorText(cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice),
                       "cudaMemcpy to the device");
}

std::string DeviceBuffer::Download(void* host, size_t bytes) const {
  if (bytes > size_) {
    return "DeviceBuffer::Download: more bytes than the buffer";
  }
  std::string error = CudaErrorText(cudaSetDevice(device_), "cudaSetDevice");
  if (!error.empty()) return error;
  return CudaErrorText(cudaMemcpy(host, data_, bytes, cudaMemcpyDeviceToHost),
                       "cudaMemcpy from the device");
}

}  // namespace layerpool::kernels::cuda
