// Tests of blocks.h: the block layouts' sizes and the half-precision
// conversions, checked against independent definitions.
#include "model/quant/blocks.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "model/quant/types.h"

namespace layerpool {
namespace {

int64_t TypeSize(GgmlType t) { return GetTypeTraits(t)->type_size; }
int64_t BlockSize(GgmlType t) { return GetTypeTraits(t)->block_size; }

TEST(Blocks, SizesMatchTypeTraits) {
  EXPECT_EQ(sizeof(BlockQ4_0), TypeSize(GgmlType::kQ4_0));
  EXPECT_EQ(sizeof(BlockQ4_1), TypeSize(GgmlType::kQ4_1));
  EXPECT_EQ(sizeof(BlockQ5_0), TypeSize(GgmlType::kQ5_0));
  EXPECT_EQ(sizeof(BlockQ5_1), TypeSize(GgmlType::kQ5_1));
  EXPECT_EQ(sizeof(BlockQ8_0), TypeSize(GgmlType::kQ8_0));
  EXPECT_EQ(sizeof(BlockQ2_K), TypeSize(GgmlType::kQ2_K));
  EXPECT_EQ(sizeof(BlockQ3_K), TypeSize(GgmlType::kQ3_K));
  EXPECT_EQ(sizeof(BlockQ4_K), TypeSize(GgmlType::kQ4_K));
  EXPECT_EQ(sizeof(BlockQ5_K), TypeSize(GgmlType::kQ5_K));
  EXPECT_EQ(sizeof(BlockQ6_K), TypeSize(GgmlType::kQ6_K));
  EXPECT_EQ(sizeof(BlockIQ4_NL), TypeSize(GgmlType::kIQ4_NL));
  EXPECT_EQ(sizeof(BlockIQ4_XS), TypeSize(GgmlType::kIQ4_XS));
  EXPECT_EQ(BlockSize(GgmlType::kQ4_K), kQkK);
  EXPECT_EQ(BlockSize(GgmlType::kQ8_0), kQk32);
}

// ------------------------------------------------------------ half floats

// Independent decoding of binary16, by its definition.
double HalfValue(uint16_t h) {
  const int sign = h >> 15;
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant == 0 ? std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  } else {
    v = std::ldexp(1024 + mant, exp - 25);
  }
  return sign ? -v : v;
}

// Round to nearest even, by searching the ordered finite halves.
uint16_t ReferenceFp32ToFp16(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return sign | 0x7E00;
  const double a = std::fabs(static_cast<double>(f));
  // 65520 is the midpoint between the largest half (65504) and 2^16.
  if (a >= 65520.0) return sign | 0x7C00;
  uint16_t lo = 0, hi = 0x7BFF;  // largest h with HalfValue(h) <= a
  while (lo < hi) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi + 1) / 2);
    if (HalfValue(mid) <= a) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  if (lo == 0x7BFF) return sign | lo;
  const double below = a - HalfValue(lo);
  const double above = HalfValue(lo + 1) - a;
  uint16_t h = lo;
  if (above < below || (above == below && (lo & 1))) h = lo + 1;
  return sign | h;
}

TEST(Fp16, DecodesEveryHalfExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    const double want = HalfValue(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      // ggml's multiply by 2^-112 quiets signalling NaNs.
      ASSERT_TRUE(std::bit_cast<uint32_t>(f) & 0x00400000u) << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), want) << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;  // -0 stays -0
      ASSERT_EQ(Fp32ToFp16(f), h) << h;  // every half survives a round trip
    }
  }
  EXPECT_EQ(std::bit_cast<uint32_t>(Fp16ToFp32(0x7C01)), 0x7FC02000u);
}

TEST(Fp16, EncodesEdgeCases) {
  const float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Fp32ToFp16(1.0f), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(-2.0f), 0xC000);
  EXPECT_EQ(Fp32ToFp16(0.0f), 0x0000);
  EXPECT_EQ(Fp32ToFp16(-0.0f), 0x8000);
  EXPECT_EQ(Fp32ToFp16(65504.0f), 0x7BFF);
  EXPECT_EQ(Fp32ToFp16(65519.996f), 0x7BFF);  // just below the midpoint
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7C00);    // tie rounds to even: inf
  EXPECT_EQ(Fp32ToFp16(1e10f), 0x7C00);
  EXPECT_EQ(Fp32ToFp16(kInf), 0x7C00);
  EXPECT_EQ(Fp32ToFp16(-kInf), 0xFC00);
  EXPECT_EQ(Fp32ToFp16(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
  EXPECT_EQ(Fp32ToFp16(-std::numeric_limits<float>::quiet_NaN()), 0xFE00);
  EXPECT_EQ(Fp32ToFp16(std::bit_cast<float>(0x7F800001u)), 0x7E00);  // sNaN
  // Subnormal halves: unit 2^-24; ties go to the even neighbour.
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25) * 1.0000001f), 0x0001);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(3.0f, -25)), 0x0002);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1023.0f, -24)), 0x03FF);  // largest subnormal
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(Fp32ToFp16(1e-10f), 0x0000);
  EXPECT_EQ(Fp32ToFp16(-1e-40f), 0x8000);  // a float subnormal
  // Normal ties: 1 + 2^-11 lies between 0x3C00 and 0x3C01.
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)),
            0x3C01);
}

TEST(Fp16, EncodingMatchesAReferenceOnHardCases) {
  std::vector<float> cases;
  // Every midpoint between adjacent halves, and the floats either side.
  for (uint32_t h = 0; h < 0x7BFF; ++h) {
    const double mid = (HalfValue(h) + HalfValue(h + 1)) / 2;
    const float m = static_cast<float>(mid);  // exact: halves have 11 bits
    for (float f : {m, std::nextafter(m, 0.0f), std::nextafter(m, 1e9f)}) {
      cases.push_back(f);
      cases.push_back(-f);
    }
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    // Random floats with exponents around the half range.
    const uint32_t u = bits(rng);
    const uint32_t exp = 100 + (u >> 24) % 50;  // 2^-27 .. 2^22
    cases.push_back(std::bit_cast<float>((u & 0x807FFFFFu) | (exp << 23)));
  }
  for (float f : cases) {
    ASSERT_EQ(Fp32ToFp16(f), ReferenceFp32ToFp16(f))
        << f << " bits " << std::bit_cast<uint32_t>(f);
  }
}

TEST(Bf16, RoundTripsAndRounds) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Bf16ToFp32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::bit_cast<uint32_t>(f), h << 16);
    // NaNs come back quiet; everything else comes back unchanged.
    const uint16_t want = std::isnan(f) ? static_cast<uint16_t>(h | 0x40)
                                        : static_cast<uint16_t>(h);
    ASSERT_EQ(Fp32ToBf16(f), want) << h;
  }
  auto from_bits = [](uint32_t u) { return std::bit_cast<float>(u); };
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(Fp32ToBf16(from_bits(0x3F808000u)), 0x3F80);  // tie, even below
  EXPECT_EQ(Fp32ToBf16(from_bits(0x3F818000u)), 0x3F82);  // tie, even above
  EXPECT_EQ(Fp32ToBf16(from_bits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(Fp32ToBf16(from_bits(0x3F807FFFu)), 0x3F80);
  EXPECT_EQ(Fp32ToBf16(from_bits(0xBF808001u)), 0xBF81);
  EXPECT_EQ(Fp32ToBf16(std::numeric_limits<float>::max()), 0x7F80);  // to inf
  EXPECT_EQ(Fp32ToBf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(Fp32ToBf16(from_bits(0x7F800001u)), 0x7FC0);  // NaN stays NaN
  EXPECT_EQ(Fp32ToBf16(from_bits(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(Fp32ToBf16(from_bits(0x00010000u)), 0x0001);  // subnormal kept
  EXPECT_EQ(Fp32ToBf16(from_bits(0x00008000u)), 0x0000);  // tie to even
  EXPECT_EQ(Fp32ToBf16(-0.0f), 0x8000);
}

}  // namespace
}  // namespace layerpool
