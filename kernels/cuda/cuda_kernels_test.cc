// The CUDA kernels against their CPU references (kernels/vec_dot.h, scalar
// path), on fresh random inputs: the seed is printed with any failure.
//
// Cases that need a device skip (GTEST_SKIP, exit status 0) when the machine
// has none, so that CI machines with nvcc but no GPU pass; the queries that
// make sense without a device run everywhere. ctest label: gpu.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/matvec_q8_0.h"
#include "kernels/test_util.h"
#include "kernels/vec_dot.h"
#include "model/quant/blocks.h"
#include "model/quant/types.h"

namespace layerpool::kernels::cuda {
namespace {

using ::layerpool::kernels::testing::Bytes;
using ::layerpool::kernels::testing::RandomFloats;
using ::layerpool::kernels::testing::RandomRow;

// Skips every test of a fixture built on it when no device is visible.
template <typename Base>
class RequiresCuda : public Base {
 protected:
  void SetUp() override {
    std::string why;
    if (CudaDeviceCount(&why) == 0) {
      GTEST_SKIP() << "no CUDA device (" << why
                   << "); GPU tests run only where one is visible";
    }
  }
};

// Queries that must behave on any machine, device or not.
TEST(CudaDeviceQueryTest, OutOfRangeDeviceIsAnErrorNamingTheCount) {
  std::string why;
  const int count = CudaDeviceCount(&why);
  EXPECT_GE(count, 0);
  EXPECT_EQ(why.empty(), count > 0) << why;
  const DeviceInfo info = CudaDeviceInfo(count);
  EXPECT_NE(info.error.find("no CUDA device " + std::to_string(count) +
                            ": the machine has " + std::to_string(count)),
            std::string::npos)
      << info.error;
  EXPECT_FALSE(CudaDeviceInfo(-1).error.empty());
}

using CudaDeviceTest = RequiresCuda<::testing::Test>;

TEST_F(CudaDeviceTest, DescribesEveryDevice) {
  const int count = CudaDeviceCount();
  for (int i = 0; i < count; ++i) {
    const DeviceInfo info = CudaDeviceInfo(i);
    ASSERT_EQ(info.error, "") << "device " << i;
    EXPECT_EQ(info.index, i);
    EXPECT_FALSE(info.name.empty());
    EXPECT_EQ(info.uuid.rfind("GPU-", 0), 0u) << info.uuid;
    EXPECT_EQ(info.uuid.size(), 40u) << info.uuid;
    EXPECT_GT(info.total_bytes, 0u);
    EXPECT_LE(info.free_bytes, info.total_bytes);
    EXPECT_GE(info.compute_major, 7);  // CUDA 13 supports Turing and newer
    // For the log of a GPU run: which device the figures come from.
    std::cout << "cuda:" << i << " " << info.name << " sm_"
              << info.compute_major << info.compute_minor << " " << info.uuid
              << " " << info.free_bytes / (1 << 20) << " MiB free of "
              << info.total_bytes / (1 << 20) << " MiB\n";
  }
}

struct Shape {
  int64_t rows;
  int64_t n;
};

class CudaMatVecQ8_0Test
    : public RequiresCuda<::testing::TestWithParam<Shape>> {};

// Activations with the cases quantization must get exactly right planted in
// the first blocks: halfway quants (amax 127 makes the scale 1, so 2.5 and
// -3.5 must round to even: 2 and -4) and an all-zero block.
std::vector<float> TestActivations(std::mt19937& rng, int64_t n) {
  std::vector<float> x = RandomFloats(rng, n);
  if (n >= 2 * kQk32) {
    const float ties[] = {127.f, 2.5f, -3.5f, 0.5f, -0.5f, 126.5f, -127.f};
    for (size_t j = 0; j < std::size(ties); ++j) x[j] = ties[j];
    for (int j = kQk32; j < 2 * kQk32; ++j) x[j] = 0.0f;
  }
  return x;
}

TEST_P(CudaMatVecQ8_0Test, MatchesScalarVecDot) {
  const auto [rows, n] = GetParam();
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(rows) +
               " x " + std::to_string(n));
  std::mt19937 rng(seed);

  const size_t row_bytes = Bytes(GgmlType::kQ8_0, n);
  std::vector<uint8_t> w(static_cast<size_t>(rows) * row_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = RandomRow(rng, GgmlType::kQ8_0, n);
    std::memcpy(w.data() + r * row_bytes, row.data(), row_bytes);
  }
  const std::vector<float> x = TestActivations(rng, n);

  // The CPU oracle.
  std::vector<uint8_t> xq_cpu(Bytes(GgmlType::kQ8_0, n));
  QuantizeActivations(GgmlType::kQ8_0, x.data(), xq_cpu.data(), n);
  const VecDotFn dot = GetVecDotFn(GgmlType::kQ8_0, CpuIsa::kScalar);

  Q8_0MatVecOnDevice device;
  ASSERT_EQ(device.Upload(0, w.data(), rows, n), "");
  std::vector<float> y(static_cast<size_t>(rows));
  ASSERT_EQ(device.Run(x.data(), y.data()), "");

  // Quantization is bit-exact: same quants and the same half scales.
  std::vector<uint8_t> xq_gpu(xq_cpu.size());
  ASSERT_EQ(device.DownloadQuantizedX(xq_gpu.data()), "");
  const auto* bq_cpu = reinterpret_cast<const BlockQ8_0*>(xq_cpu.data());
  const auto* bq_gpu = reinterpret_cast<const BlockQ8_0*>(xq_gpu.data());
  for (int64_t b = 0; b < n / kQk32; ++b) {
    ASSERT_EQ(bq_gpu[b].d, bq_cpu[b].d) << "scale of block " << b;
    for (int j = 0; j < kQk32; ++j) {
      ASSERT_EQ(bq_gpu[b].qs[j], bq_cpu[b].qs[j])
          << "quant " << j << " of block " << b << ", x = " << x[b * kQk32 + j];
    }
  }

  // Tolerance: both sides add the same nb float terms t_b = isum * (d_w d_x)
  // and differ only in the order. Each order's rounding error is at most
  // (nb - 1) u sum |t_b| (u = 2^-24, recursive summation; the GPU's tree is
  // shallower), so they differ by at most 2 nb u sum |t_b|.
  const int64_t nb = n / kQk32;
  for (int64_t r = 0; r < rows; ++r) {
    const auto* wb =
        reinterpret_cast<const BlockQ8_0*>(w.data() + r * row_bytes);
    double abs_sum = 0;
    for (int64_t b = 0; b < nb; ++b) {
      int isum = 0;
      for (int j = 0; j < kQk32; ++j) isum += wb[b].qs[j] * bq_cpu[b].qs[j];
      abs_sum += std::fabs(isum * static_cast<double>(Fp16ToFp32(wb[b].d)) *
                           Fp16ToFp32(bq_cpu[b].d));
    }
    const float want = dot(w.data() + r * row_bytes, xq_cpu.data(), n);
    const double tolerance = 2.0 * nb * 0x1.0p-24 * abs_sum;
    ASSERT_LE(std::fabs(static_cast<double>(y[r]) - want), tolerance)
        << "row " << r << ": gpu " << y[r] << ", cpu " << want;
  }
}

// Single blocks, fewer blocks than a warp step, an odd block count (rows
// start 2-byte aligned only), row counts that do not fill a thread block,
// and the widths of 8B and 70B-shape projections.
INSTANTIATE_TEST_SUITE_P(Shapes, CudaMatVecQ8_0Test,
                         ::testing::Values(Shape{1, 32}, Shape{3, 96},
                                           Shape{5, 288}, Shape{64, 4096},
                                           Shape{1000, 11008},
                                           Shape{4096, 4096}, Shape{13, 28672}),
                         [](const auto& info) {
                           return std::to_string(info.param.rows) + "x" +
                                  std::to_string(info.param.n);
                         });

// Argument checks come before any CUDA call, so they run everywhere.
TEST(CudaArgumentsTest, BadSizesAreRejectedWithoutLaunching) {
  EXPECT_NE(QuantizeQ8_0(nullptr, nullptr, 33, nullptr), "");
  EXPECT_NE(MatVecQ8_0(nullptr, nullptr, nullptr, 1, 0, nullptr), "");
  EXPECT_NE(MatVecQ8_0(nullptr, nullptr, nullptr, 0, 32, nullptr), "");
  Q8_0MatVecOnDevice device;
  float x = 0, y = 0;
  EXPECT_NE(device.Run(&x, &y), "");
}

}  // namespace
}  // namespace layerpool::kernels::cuda
