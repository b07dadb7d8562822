#include "worker/device.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

TEST(DeviceSpecTest, ParsesCpuAndCudaOrdinals) {
  absl::StatusOr<DeviceSpec> cpu = ParseDeviceSpec("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->kind, DeviceSpec::Kind::kCpu);
  EXPECT_EQ(cpu->ToString(), "cpu");

  absl::StatusOr<DeviceSpec> cuda = ParseDeviceSpec("cuda:3");
  ASSERT_TRUE(cuda.ok());
  EXPECT_EQ(cuda->kind, DeviceSpec::Kind::kCuda);
  EXPECT_EQ(cuda->index, 3);
  EXPECT_EQ(cuda->ToString(), "cuda:3");
}

TEST(DeviceSpecTest, RejectsEverythingElse) {
  for (const char* text :
       {"", "gpu", "CPU", "cuda", "cuda:", "cuda:-1", "cuda:+1", "cuda: 1",
        "cuda:1x", "cuda:12345", "cuda0", "cpu:0"}) {
    absl::StatusOr<DeviceSpec> device = ParseDeviceSpec(text);
    EXPECT_EQ(device.status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << text << "'";
    EXPECT_THAT(device.status().message(), HasSubstr("use cpu or cuda:N"));
  }
}

TEST(DeviceSpecTest, CpuIsAlwaysUsable) {
  EXPECT_TRUE(CheckDeviceUsable(DeviceSpec{}).ok());
}

TEST(DeviceSpecTest, AbsentCudaDeviceIsRefusedNamingCuda) {
  DeviceSpec device;
  device.kind = DeviceSpec::Kind::kCuda;
  device.index = 999;  // no machine has this many
  const absl::Status status = CheckDeviceUsable(device);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("cuda:999: "));
  EXPECT_THAT(status.message(), HasSubstr("CUDA"));
}

}  // namespace
}  // namespace layerpool
