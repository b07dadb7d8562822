// CUDA devices as layerpool sees them: how many there are, what each one is,
// and device memory owned by a C++ object.
//
// This header is plain C++ (no CUDA headers), so code built by the host
// compiler alone, such as the worker's flag checks, can include it. Like the
// rest of kernels/ it knows nothing of Abseil: fallible calls return an error
// message, empty on success, and are [[nodiscard]]. A missing driver or
// device is not an error here; it is a machine with zero devices.
//
// Thread safety: the queries may be called from any thread. A DeviceBuffer is
// not synchronised; one thread uses it at a time.
#ifndef LAYERPOOL_KERNELS_CUDA_DEVICE_H_
#define LAYERPOOL_KERNELS_CUDA_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <string>

// The CUDA runtime's stream type is `CUstream_st*` (cudaStream_t); naming
// the struct here spares callers the CUDA headers. nullptr is the default
// stream.
struct CUstream_st;

namespace layerpool::kernels::cuda {

// Devices this process may use (after CUDA_VISIBLE_DEVICES). 0 when there is
// none, no driver, or a driver too old for this build; then `why_none`, if
// given, receives the runtime's reason (e.g. "no CUDA-capable device is
// detected"), and is cleared otherwise.
int CudaDeviceCount(std::string* why_none = nullptr);

struct DeviceInfo {
  // Empty when the query succeeded; otherwise why it failed, and the other
  // fields are unset.
  std::string error;
  int index = -1;         // the ordinal asked for
  std::string name;       // e.g. "NVIDIA H100 80GB HBM3"
  std::string uuid;       // "GPU-xxxxxxxx-xxxx-...", as nvidia-smi prints
  int compute_major = 0;  // compute capability, e.g. 9.0 for an H100
  int compute_minor = 0;
  uint64_t total_bytes = 0;  // device memory
  uint64_t free_bytes = 0;   // free now, as the driver reports it
};

// Facts about device `index` in [0, CudaDeviceCount()). Creates the device's
// primary context if this process has none yet (a few hundred MiB of device
// memory and a fraction of a second); the free bytes are measured after it.
// The calling thread's current device is left as it was.
DeviceInfo CudaDeviceInfo(int index);

// Device memory of one allocation, freed by the destructor. Allocate and
// the copies act on the device that was current when Allocate ran (they
// make it current again first). Copies are synchronous.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  ~DeviceBuffer();

  // Frees what it held, then allocates `bytes` on device `device`.
  [[nodiscard]] std::string Allocate(int device, size_t bytes);
  // Copies `bytes` from host memory to the start of the buffer, or from the
  // start of the buffer back. Precondition: bytes <= size().
  [[nodiscard]] std::string Upload(const void* host, size_t bytes);
  [[nodiscard]] std::string Download(void* host, size_t bytes) const;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  int device() const { return device_; }

 private:
  void Free();

  void* data_ = nullptr;
  size_t size_ = 0;
  int device_ = -1;
};

// "" when `status` (a cudaError_t as int) is cudaSuccess, else
// "<what>: <the runtime's description> (<error name>)". For the .cu files,
// which check every runtime call and kernel launch.
std::string CudaErrorText(int status, const char* what);

}  // namespace layerpool::kernels::cuda

#endif  // LAYERPOOL_KERNELS_CUDA_DEVICE_H_
