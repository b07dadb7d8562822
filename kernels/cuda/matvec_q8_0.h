// Decode's matrix-vector product for Q8_0 weights on a CUDA device, and the
// Q8_0 quantization of activations it consumes.
//
// The numerics are those of the CPU path (kernels/vec_dot.h), which is the
// oracle: activations are quantized to Q8_0 bit for bit as
// QuantizeActivations(kQ8_0, ...) does (d = amax / 127, quants
// round-half-to-even(x * 127 / amax)), and each output is
//   y[r] = sum over blocks b of  isum(r, b) * (d_w(r, b) * d_x(b)),
// with isum the exact int8 x int8 dot product of the block's 32 quants. Only
// the order of the float additions differs from VecDot, so results agree to
// a few float ulps of the sum of |terms|.
//
// The kernel is fused: each weight byte is read from device memory once and
// dequantization happens in registers, since decode is bound by weight
// bandwidth. Weights are row-major, rows of RowBytes(kQ8_0, n) bytes (the
// GGUF layout, 2-byte aligned), exactly as mapped from the file.
//
// All pointers are device pointers on the current device. Functions enqueue
// on `stream` (nullptr: the default stream) and return at once; they return
// an error message (empty on success) for bad sizes or a failed launch.
// Plain C++ header: no CUDA or Abseil types.
#ifndef LAYERPOOL_KERNELS_CUDA_MATVEC_Q8_0_H_
#define LAYERPOOL_KERNELS_CUDA_MATVEC_Q8_0_H_

#include <cstdint>
#include <string>

#include "kernels/cuda/device.h"

namespace layerpool::kernels::cuda {

// x: n floats; xq: room for n / 32 BlockQ8_0 (34 bytes each). n must be a
// positive multiple of 32.
[[nodiscard]] std::string QuantizeQ8_0(const float* x, void* xq, int64_t n,
                                       CUstream_st* stream);

// y[r] = dot(row r of w, xq) for r in [0, rows). w: rows x n Q8_0 weights;
// xq: n activations from QuantizeQ8_0; y: rows floats. n must be a positive
// multiple of 32, rows positive.
[[nodiscard]] std::string MatVecQ8_0(const void* w, const void* xq, float* y,
                                     int64_t rows, int64_t n,
                                     CUstream_st* stream);

// A Q8_0 weight matrix held on one device, multiplied by host vectors: the
// upload / run / download round trip that tests and benchmarks need. Each
// call is synchronous. Not thread-safe.
class Q8_0MatVecOnDevice {
 public:
  // Copies rows x n weights (rows * RowBytes(kQ8_0, n) bytes at `w`) to
  // `device` and allocates the activation and output buffers there.
  [[nodiscard]] std::string Upload(int device, const void* w, int64_t rows,
                                   int64_t n);
  // y[0..rows) = W x for n floats at x; both on the host.
  [[nodiscard]] std::string Run(const float* x, float* y);
  // The Q8_0 activations the last Run computed on the device (n / 32
  // blocks), for comparing with QuantizeActivations.
  [[nodiscard]] std::string DownloadQuantizedX(void* xq) const;

  int64_t rows() const { return rows_; }
  int64_t n() const { return n_; }

 private:
  int64_t rows_ = 0;
  int64_t n_ = 0;
  DeviceBuffer w_, x_, xq_, y_;
};

}  // namespace layerpool::kernels::cuda

#endif  // LAYERPOOL_KERNELS_CUDA_MATVEC_Q8_0_H_
