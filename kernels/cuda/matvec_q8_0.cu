// Q8_0 activation quantization and the fused Q8_0 matrix-vector product.
//
// Work split: one warp per output row, four lanes per 32-weight block, so a
// warp step covers 8 consecutive blocks (272 contiguous bytes of the row)
// and each lane reads 8 weight bytes with no lane reading a byte twice.
// Blocks are 34 bytes and only 2-byte aligned in GGUF, hence the quants are
// gathered with 16-bit loads (the same trick as ggml-cuda's get_int_b2) and
// multiplied four at a time with __dp4a. The four lanes of a block add their
// integer partial sums (exact) before one lane scales the block's sum, so
// each block's term is computed as the CPU computes it.
//
// First version: correct and simple; tuning (several rows per warp to reuse
// the activations from registers, 128-bit loads of realigned copies) waits
// for measurements on a GPU.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "kernels/cuda/matvec_q8_0.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels::cuda {
namespace {

static_assert(sizeof(BlockQ8_0) == 34, "ggml's block_q8_0 layout");

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
// Warps (rows) per thread block; small so that short matrices still spread
// over every SM.
constexpr int kRowsPerThreadBlock = 4;
constexpr int kLanesPerQBlock = 4;
constexpr int kQuantsPerLane = kQk32 / kLanesPerQBlock;       // 8
constexpr int kQBlocksPerStep = kWarpSize / kLanesPerQBlock;  // 8
// Quantization: one warp per block of 32 activations.
constexpr int kQuantWarpsPerThreadBlock = 8;

// Four int8 quants as one int, from a 2-byte-aligned address.
__device__ __forceinline__ int LoadQuants4(const int8_t* p) {
  const auto* halves = reinterpret_cast<const uint16_t*>(p);
  return static_cast<int>(static_cast<uint32_t>(halves[0]) |
                          (static_cast<uint32_t>(halves[1]) << 16));
}

__device__ __forceinline__ float HalfBitsToFloat(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}

// Mirrors QuantizeBlock32 in kernels/quantize_activations.cc step by step:
// max |x| (order-independent, so the warp reduction gives the same value),
// d = amax / 127 and id = 127 / amax as correctly rounded divisions (nvcc's
// default -prec-div=true), quants rounded half to even by __float2int_rn
// (the CPU's NearestInt) and saturated to int8, d stored as a half rounded
// to nearest even.
__global__ void QuantizeQ8_0Kernel(const float* __restrict__ x,
                                   BlockQ8_0* __restrict__ xq, int64_t nb) {
  const int64_t b =
      static_cast<int64_t>(blockIdx.x) * kQuantWarpsPerThreadBlock +
      threadIdx.y;
  if (b >= nb) return;  // uniform across the warp
  const int lane = threadIdx.x;
  const float v = x[b * kQk32 + lane];
  float amax = fabsf(v);
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    amax = fmaxf(amax, __shfl_xor_sync(kFullMask, amax, offset));
  }
  const float d = amax / 127.f;
  const float id = amax != 0.0f ? 127.f / amax : 0.0f;
  const int q = min(max(__float2int_rn(v * id), -128), 127);
  xq[b].qs[lane] = static_cast<int8_t>(q);
  if (lane == 0) xq[b].d = __half_as_ushort(__float2half_rn(d));
}

__global__ void MatVecQ8_0Kernel(const BlockQ8_0* __restrict__ w,
                                 const BlockQ8_0* __restrict__ xq,
                                 float* __restrict__ y, int64_t rows, int nb) {
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * kRowsPerThreadBlock + threadIdx.y;
  if (row >= rows) return;  // uniform across the warp
  const BlockQ8_0* w_row = w + row * nb;
  const int lane = threadIdx.x;
  const int part = lane % kLanesPerQBlock;
  float sum = 0.0f;
  // Every lane runs the same number of steps, so that the shuffles below
  // always have the full warp.
  for (int first = 0; first < nb; first += kQBlocksPerStep) {
    const int b = first + lane / kLanesPerQBlock;
    int isum = 0;
    if (b < nb) {
      const int8_t* wq = w_row[b].qs + part * kQuantsPerLane;
      const int8_t* xv = xq[b].qs + part * kQuantsPerLane;
      isum = __dp4a(LoadQuants4(wq), LoadQuants4(xv), isum);
      isum = __dp4a(LoadQuants4(wq + 4), LoadQuants4(xv + 4), isum);
    }
    isum += __shfl_xor_sync(kFullMask, isum, 1);
    isum += __shfl_xor_sync(kFullMask, isum, 2);
    if (part == 0 && b < nb) {
      const float scale =
          HalfBitsToFloat(w_row[b].d) * HalfBitsToFloat(xq[b].d);
      sum += static_cast<float>(isum) * scale;
    }
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    sum += __shfl_xor_sync(kFullMask, sum, offset);
  }
  if (lane == 0) y[row] = sum;
}

std::string CheckN(int64_t n) {
  if (n <= 0 || n % kQk32 != 0 || n / kQk32 > INT_MAX) {
    return "n = " + std::to_string(n) +
           " is not a positive multiple of 32 (Q8_0 blocks) that fits";
  }
  return "";
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

std::string QuantizeQ8_0(const float* x, void* xq, int64_t n,
                         CUstream_st* stream) {
  if (std::string error = CheckN(n); !error.empty()) {
    return "QuantizeQ8_0: " + error;
  }
  const int64_t nb = n / kQk32;
  const dim3 threads(kWarpSize, kQuantWarpsPerThreadBlock);
  const auto grid =
      static_cast<unsigned>(CeilDiv(nb, kQuantWarpsPerThreadBlock));
  QuantizeQ8_0Kernel<<<grid, threads, 0, stream>>>(
      x, static_cast<BlockQ8_0*>(xq), nb);
  return CudaErrorText(cudaGetLastError(), "launching QuantizeQ8_0");
}

std::string MatVecQ8_0(const void* w, const void* xq, float* y, int64_t rows,
                       int64_t n, CUstream_st* stream) {
  if (std::string error = CheckN(n); !error.empty()) {
    return "MatVecQ8_0: " + error;
  }
  if (rows <= 0 || CeilDiv(rows, kRowsPerThreadBlock) > INT_MAX) {
    return "MatVecQ8_0: rows = " + std::to_string(rows) + " out of range";
  }
  const dim3 threads(kWarpSize, kRowsPerThreadBlock);
  const auto grid = static_cast<unsigned>(CeilDiv(rows, kRowsPerThreadBlock));
  MatVecQ8_0Kernel<<<grid, threads, 0, stream>>>(
      static_cast<const BlockQ8_0*>(w), static_cast<const BlockQ8_0*>(xq), y,
      rows, static_cast<int>(n / kQk32));
  return CudaErrorText(cudaGetLastError(), "launching MatVecQ8_0");
}

std::string Q8_0MatVecOnDevice::Upload(int device, const void* w, int64_t rows,
                                       int64_t n) {
  if (std::string error = CheckN(n); !error.empty()) {
    return "Q8_0MatVecOnDevice: " + error;
  }
  if (rows <= 0) return "Q8_0MatVecOnDevice: rows must be positive";
  const auto blocks = static_cast<size_t>(n / kQk32);
  const size_t w_bytes = static_cast<size_t>(rows) * blocks * sizeof(BlockQ8_0);
  std::string error = w_.Allocate(device, w_bytes);
  if (error.empty()) error = w_.Upload(w, w_bytes);
  if (error.empty()) {
    error = x_.Allocate(device, static_cast<size_t>(n) * sizeof(float));
  }
  if (error.empty()) error = xq_.Allocate(device, blocks * sizeof(BlockQ8_0));
  if (error.empty()) {
    error = y_.Allocate(device, static_cast<size_t>(rows) * sizeof(float));
  }
  if (!error.empty()) return error;
  rows_ = rows;
  n_ = n;
  return "";
}

std::string Q8_0MatVecOnDevice::Run(const float* x, float* y) {
  if (rows_ == 0) return "Q8_0MatVecOnDevice::Run before Upload";
  std::string error = x_.Upload(x, static_cast<size_t>(n_) * sizeof(float));
  if (error.empty()) {
    error = QuantizeQ8_0(static_cast<const float*>(x_.data()), xq_.data(), n_,
                         nullptr);
  }
  if (error.empty()) {
    error = MatVecQ8_0(w_.data(), xq_.data(), static_cast<float*>(y_.data()),
                       rows_, n_, nullptr);
  }
  // Kernel faults surface at the next synchronisation; name them here
  // rather than in the copy that follows.
  if (error.empty()) {
    error = CudaErrorText(cudaDeviceSynchronize(), "running the Q8_0 kernels");
  }
  if (error.empty()) {
    error = y_.Download(y, static_cast<size_t>(rows_) * sizeof(float));
  }
  return error;
}

std::string Q8_0MatVecOnDevice::DownloadQuantizedX(void* xq) const {
  return xq_.Download(xq, static_cast<size_t>(n_ / kQk32) * sizeof(BlockQ8_0));
}

}  // namespace layerpool::kernels::cuda
