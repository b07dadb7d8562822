#include "base/human_bytes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

TEST(HumanBytesTest, PicksTheUnit) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(6246), "6.1 KiB");
  EXPECT_EQ(HumanBytes(24ull << 30), "24.0 GiB");
  EXPECT_EQ(HumanBytes(3ull << 40), "3.0 TiB");
}

TEST(ParseBytesTest, ReadsNumbersAndUnits) {
  EXPECT_EQ(*ParseBytes("0"), 0u);
  EXPECT_EQ(*ParseBytes("1000000"), 1000000u);
  EXPECT_EQ(*ParseBytes("512B"), 512u);
  EXPECT_EQ(*ParseBytes("24GiB"), 24ull << 30);
  EXPECT_EQ(*ParseBytes("24gib"), 24ull << 30);
  EXPECT_EQ(*ParseBytes("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseBytes("512 MiB"), 512ull << 20);
  EXPECT_EQ(*ParseBytes("1.5GB"), 1500000000u);
  EXPECT_EQ(*ParseBytes("2K"), 2048u);
  EXPECT_EQ(*ParseBytes("2KB"), 2000u);
  EXPECT_EQ(*ParseBytes("1TiB"), 1ull << 40);
  EXPECT_EQ(*ParseBytes("0.5KiB"), 512u);
  EXPECT_EQ(*ParseBytes("1.0001B"), 1u);  // fractions of a byte round down
  EXPECT_EQ(*ParseBytes(" 8G "), 8ull << 30);
  EXPECT_EQ(*ParseBytes("18446744073709549568"), 18446744073709549568ull);
}

TEST(ParseBytesTest, RefusesWhatIsNotAByteCount) {
  for (const char* bad : {"", "GiB", "-5", "-5GiB", "1e9", "inf", "nan",
                          "1..5G", "12 apples", "5 XB", "1GiBB", "0x10"}) {
    absl::StatusOr<uint64_t> parsed = ParseBytes(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("is not a byte count"));
  }
  EXPECT_THAT(ParseBytes("99999999TiB").status().message(),
              HasSubstr("too large"));
  EXPECT_THAT(ParseBytes("3 parsecs").status().message(),
              HasSubstr("unknown unit 'parsecs'"));
}

}  // namespace
}  // namespace layerpool
