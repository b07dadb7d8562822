// Unit tests of the reference (de)quantizers that need no files: block
// layouts decoded independently from raw bytes, hand-built blocks with known
// values, and round-trip error bounds on seeded random data. (The
// half-float conversions are tested in blocks_test.cc; bit equality with
// llama.cpp is tested on its own output in real_files_test.cc.)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/quant/blocks.h"
#include "model/quant/dequantize.h"
#include "model/quant/quantize.h"
#include "model/quant/quantize_k.h"
#include "model/quant/types.h"

namespace layerpool {
namespace {

constexpr GgmlType kDequantTypes[] = {
    GgmlType::kF32,  GgmlType::kF16,    GgmlType::kBF16,  GgmlType::kQ4_0,
    GgmlType::kQ4_1, GgmlType::kQ5_0,   GgmlType::kQ5_1,  GgmlType::kQ8_0,
    GgmlType::kQ2_K, GgmlType::kQ3_K,   GgmlType::kQ4_K,  GgmlType::kQ5_K,
    GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS};

// Every value of the on-disk enum that names a type.
std::vector<GgmlType> AllKnownTypes() {
  std::vector<GgmlType> out;
  for (uint32_t raw = 0; raw < 64; ++raw) {
    if (GetTypeTraits(raw)) out.push_back(static_cast<GgmlType>(raw));
  }
  return out;
}

int64_t BlockSize(GgmlType t) { return GetTypeTraits(t)->block_size; }
int64_t TypeSize(GgmlType t) { return GetTypeTraits(t)->type_size; }

std::vector<float> Dequantize(GgmlType type, const std::vector<uint8_t>& src,
                              int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  EXPECT_TRUE(DequantizeRow(type, src.data(), out.data(), n));
  return out;
}

std::vector<uint8_t> Quantize(GgmlType type, const std::vector<float>& src) {
  const int64_t n = static_cast<int64_t>(src.size());
  std::vector<uint8_t> out(static_cast<size_t>(*RowBytes(type, n)));
  EXPECT_TRUE(QuantizeRow(type, src.data(), out.data(), n));
  return out;
}

TEST(QuantTypes, DequantizableIsExactlyTheSupportedTypes) {
  for (GgmlType t : AllKnownTypes()) {
    EXPECT_EQ(CanDequantize(t), GetTypeTraits(t)->supported)
        << GetTypeTraits(t)->name;
    if (IsQuantizable(t)) {
      EXPECT_TRUE(CanDequantize(t));
    }
  }
}

TEST(DequantizeRow, RejectsWhatItCannotDoWithoutWriting) {
  const std::vector<uint8_t> src(1024, 0x11);
  std::vector<float> dst(256, 42.0f);
  EXPECT_FALSE(DequantizeRow(GgmlType::kQ8_1, src.data(), dst.data(), 32));
  EXPECT_FALSE(DequantizeRow(GgmlType::kIQ2_XXS, src.data(), dst.data(), 256));
  EXPECT_FALSE(DequantizeRow(GgmlType::kI32, src.data(), dst.data(), 4));
  EXPECT_FALSE(DequantizeRow(GgmlType::kQ4_0, src.data(), dst.data(), 31));
  EXPECT_FALSE(DequantizeRow(GgmlType::kQ4_K, src.data(), dst.data(), 128));
  EXPECT_FALSE(DequantizeRow(GgmlType::kF16, src.data(), dst.data(), -2));
  EXPECT_FALSE(
      DequantizeRow(static_cast<GgmlType>(4), src.data(), dst.data(), 32));
  for (float v : dst) ASSERT_EQ(v, 42.0f);
  EXPECT_TRUE(DequantizeRow(GgmlType::kQ4_K, src.data(), dst.data(), 0));
}

TEST(QuantizeRow, RejectsWhatItCannotDoWithoutWriting) {
  const std::vector<float> src(256, 1.0f);
  std::vector<uint8_t> dst(1024, 0xAB);
  EXPECT_FALSE(QuantizeRow(GgmlType::kIQ4_NL, src.data(), dst.data(), 32));
  EXPECT_FALSE(QuantizeRow(GgmlType::kQ8_K, src.data(), dst.data(), 256));
  EXPECT_FALSE(QuantizeRow(GgmlType::kQ8_0, src.data(), dst.data(), 48));
  EXPECT_FALSE(QuantizeRow(GgmlType::kQ6_K, src.data(), dst.data(), -256));
  for (uint8_t b : dst) ASSERT_EQ(b, 0xAB);
}

TEST(NearestInt, RoundsHalfToEven) {
  using quant_internal::NearestInt;
  EXPECT_EQ(NearestInt(0.5f), 0);
  EXPECT_EQ(NearestInt(1.5f), 2);
  EXPECT_EQ(NearestInt(2.5f), 2);
  EXPECT_EQ(NearestInt(-0.5f), 0);
  EXPECT_EQ(NearestInt(-1.5f), -2);
  EXPECT_EQ(NearestInt(-2.4999998f), -2);
  EXPECT_EQ(NearestInt(4194303.0f), 4194303);
  EXPECT_EQ(NearestInt(-4194303.0f), -4194303);
}

// ------------------------------------------------- known-value blocks

TEST(Dequantize, Q4_0KnownBlock) {
  BlockQ4_0 b;
  b.d = Fp32ToFp16(0.5f);
  for (int j = 0; j < 16; ++j) {
    b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  }
  float y[32];
  ASSERT_TRUE(DequantizeRow(GgmlType::kQ4_0, &b, y, 32));
  // Weight j is low nibble j: (j - 8) * 0.5; weight 16 + j is high nibble j.
  EXPECT_EQ(y[0], -4.0f);
  EXPECT_EQ(y[1], -3.5f);
  EXPECT_EQ(y[8], 0.0f);
  EXPECT_EQ(y[15], 3.5f);
  EXPECT_EQ(y[16], 3.5f);
  EXPECT_EQ(y[31], -4.0f);
}

TEST(Dequantize, Q8_0AndIQ4_NLKnownBlocks) {
  BlockQ8_0 q8 = {};
  q8.d = Fp32ToFp16(-2.0f);
  q8.qs[0] = 127;
  q8.qs[1] = -128;
  q8.qs[31] = 3;
  float y[32];
  ASSERT_TRUE(DequantizeRow(GgmlType::kQ8_0, &q8, y, 32));
  EXPECT_EQ(y[0], -254.0f);
  EXPECT_EQ(y[1], 256.0f);
  EXPECT_EQ(y[2], -0.0f);
  EXPECT_EQ(y[31], -6.0f);

  BlockIQ4_NL nl = {};
  nl.d = Fp32ToFp16(0.5f);
  nl.qs[0] = 0xF0;
  nl.qs[15] = 0x78;
  ASSERT_TRUE(DequantizeRow(GgmlType::kIQ4_NL, &nl, y, 32));
  EXPECT_EQ(y[0], -63.5f);  // level 0 = -127
  EXPECT_EQ(y[16], 56.5f);  // level 15 = 113
  EXPECT_EQ(y[15], 0.5f);   // level 8 = 1
  EXPECT_EQ(y[31], -5.0f);  // level 7 = -10
}

TEST(Dequantize, Q4_KSixBitScalePacking) {
  BlockQ4_K b = {};
  b.d = Fp32ToFp16(1.0f);
  b.dmin = Fp32ToFp16(0.5f);
  // Sub-block 0: scale 1, min 2 (low 6 bits of bytes 0 and 4).
  b.scales[0] = 1;
  b.scales[4] = 2;
  // Sub-block 5: scale 33 = 0b10'0001, min 40 = 0b10'1000. Low nibbles go to
  // byte 9, the top two bits to the spare bits 6-7 of bytes 1 and 5.
  b.scales[9] = 0x81;
  b.scales[1] |= 0x80;
  b.scales[5] |= 0x80;
  std::memset(b.qs, 0x21, sizeof(b.qs));  // low nibble 1, high nibble 2
  float y[256];
  ASSERT_TRUE(DequantizeRow(GgmlType::kQ4_K, &b, y, 256));
  EXPECT_EQ(y[0], 1 * 1 * 1 - 0.5f * 2);     // sub-block 0
  EXPECT_EQ(y[40], 0.0f);                    // sub-block 1: scale and min 0
  EXPECT_EQ(y[170], 33.0f * 2 - 0.5f * 40);  // sub-block 5, high nibble
}

TEST(Dequantize, PlainFloatTypes) {
  const uint16_t f16[4] = {0x3C00, 0xC100, 0x7BFF, 0x8000};
  const float f16_want[4] = {1.0f, -2.5f, 65504.0f, -0.0f};
  const uint16_t bf16[4] = {0x3F80, 0xC020, 0x477F, 0x0001};
  const float bf16_want[4] = {1.0f, -2.5f, 65280.0f, std::ldexp(1.0f, -133)};
  float y[4];
  ASSERT_TRUE(DequantizeRow(GgmlType::kF16, f16, y, 4));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], f16_want[i]);
  EXPECT_TRUE(std::signbit(y[3]));
  ASSERT_TRUE(DequantizeRow(GgmlType::kBF16, bf16, y, 4));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], bf16_want[i]);
  ASSERT_TRUE(DequantizeRow(GgmlType::kF32, f16_want, y, 4));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], f16_want[i]);
}

// ------------------------------------ layouts decoded from raw bytes

uint16_t U16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | p[1] << 8);
}
double Half(const uint8_t* p) { return Fp16ToFp32(U16(p)); }

// Weight w of one block of `type`, decoded from the byte offsets and bit
// positions of the format's definition (not from blocks.h's structs) in
// double precision.
double ReferenceWeight(GgmlType type, const uint8_t* b, int w) {
  const int half = w / 128, k = (w % 128) / 32, l = w % 32;  // 2-bit layouts
  const int nib = w % 32 < 16 ? 0 : 4;  // 32-weight nibble layouts
  switch (type) {
    case GgmlType::kQ4_0:
      return Half(b) * (((b[2 + w % 16] >> nib) & 15) - 8);
    case GgmlType::kQ4_1:
      return Half(b) * ((b[4 + w % 16] >> nib) & 15) + Half(b + 2);
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1: {
      const bool q5_1 = type == GgmlType::kQ5_1;
      const uint8_t* qh = b + (q5_1 ? 4 : 2);
      const int q =
          ((qh[w / 8] >> (w % 8)) & 1) << 4 | ((qh[4 + w % 16] >> nib) & 15);
      return q5_1 ? Half(b) * q + Half(b + 2) : Half(b) * (q - 16);
    }
    case GgmlType::kQ8_0:
      return Half(b) * static_cast<int8_t>(b[2 + w]);
    case GgmlType::kQ2_K: {
      const uint8_t sc = b[w / 16];
      const int q = (b[16 + 32 * half + l] >> (2 * k)) & 3;
      return Half(b + 80) * (sc & 15) * q - Half(b + 82) * (sc >> 4);
    }
    case GgmlType::kQ3_K: {
      const int s = w / 16;
      const uint8_t* sc = b + 96;
      const int low = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4;
      const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
      const int q = ((b[32 + 32 * half + l] >> (2 * k)) & 3) +
                    4 * ((b[w % 32] >> (w / 32)) & 1) - 4;
      return Half(b + 108) * ((low | high << 4) - 32) * q;
    }
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K: {
      const int s = w / 32;
      const uint8_t* sc = b + 4;
      const int scale =
          s < 4 ? sc[s] & 63 : (sc[s + 4] & 15) | (sc[s - 4] >> 6) << 4;
      const int min =
          s < 4 ? sc[s + 4] & 63 : (sc[s + 4] >> 4) | (sc[s] >> 6) << 4;
      const bool q5 = type == GgmlType::kQ5_K;
      const uint8_t* qs = b + (q5 ? 48 : 16);
      int q = (qs[32 * (w / 64) + l] >> (s % 2 ? 4 : 0)) & 15;
      if (q5) q += 16 * ((b[16 + l] >> s) & 1);
      return Half(b) * scale * q - Half(b + 2) * min;
    }
    case GgmlType::kQ6_K: {
      const uint8_t* ql = b + 64 * half;
      const int low = (ql[l + (k % 2) * 32] >> (k / 2 * 4)) & 15;
      const int high = (b[128 + 32 * half + l] >> (2 * k)) & 3;
      const int8_t sc = static_cast<int8_t>(b[192 + w / 16]);
      return Half(b + 208) * sc * ((low | high << 4) - 32);
    }
    case GgmlType::kIQ4_NL:
      return Half(b) * kIq4NlValues[(b[2 + w % 16] >> nib) & 15];
    case GgmlType::kIQ4_XS: {
      const int s = w / 32;
      const int ls = ((b[4 + s / 2] >> (4 * (s % 2))) & 15) |
                     ((U16(b + 2) >> (2 * s)) & 3) << 4;
      const int q = (b[8 + 16 * s + w % 16] >> nib) & 15;
      return Half(b) * (ls - 32) * kIq4NlValues[q];
    }
    default:
      ADD_FAILURE() << "no reference for type " << static_cast<int>(type);
      return 0;
  }
}

// Byte offsets of the half-float scales of each block type: d first, then
// the min (dmin / m) where there is one.
std::vector<int> ScaleOffsets(GgmlType type) {
  switch (type) {
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
      return {0, 2};
    case GgmlType::kQ2_K:
      return {80, 82};
    case GgmlType::kQ3_K:
      return {108};
    case GgmlType::kQ6_K:
      return {208};
    default:
      return {0};
  }
}

TEST(Dequantize, MatchesLayoutDecodedFromRawBytes) {
  // Random quant bytes under small dyadic scales, so that every product and
  // difference is exact in float and the comparison can be exact whatever
  // the order of operations: this checks bit positions, not rounding.
  const uint16_t kScales[] = {0x3800 /*0.5*/, 0xB400 /*-0.25*/, 0x1C00 /*2^-8*/,
                              0x4200 /*3*/};
  const uint16_t kMins[] = {0x3000 /*0.125*/, 0xBE00 /*-1.5*/, 0x0000};
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  for (GgmlType type : kDequantTypes) {
    if (BlockSize(type) == 1) continue;  // plain floats: tested above
    SCOPED_TRACE(std::string(GetTypeTraits(type)->name));
    const int nb = 12;
    const int64_t n = nb * BlockSize(type);
    std::vector<uint8_t> bytes(static_cast<size_t>(nb * TypeSize(type)));
    for (uint8_t& v : bytes) v = static_cast<uint8_t>(byte(rng));
    const std::vector<int> offsets = ScaleOffsets(type);
    for (int i = 0; i < nb; ++i) {
      uint8_t* block = bytes.data() + i * TypeSize(type);
      const uint16_t d = kScales[i % 4];
      std::memcpy(block + offsets[0], &d, 2);
      if (offsets.size() > 1) std::memcpy(block + offsets[1], &kMins[i % 3], 2);
    }
    const std::vector<float> y = Dequantize(type, bytes, n);
    for (int64_t w = 0; w < n; ++w) {
      const uint8_t* block =
          bytes.data() + w / BlockSize(type) * TypeSize(type);
      const double want =
          ReferenceWeight(type, block, static_cast<int>(w % BlockSize(type)));
      ASSERT_EQ(static_cast<double>(y[static_cast<size_t>(w)]), want)
          << "weight " << w;
    }
  }
}

// ------------------------------------------------------------ round trips

// sqrt(sum (x - y)^2 / sum x^2).
double RelativeRms(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(x[i]) - y[i];
    err += e * e;
    norm += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(err / norm);
}

struct RoundTripCase {
  GgmlType type;
  // Bound on the relative RMS error for i.i.d. standard normal weights.
  double bound;
};

// Rounding to a grid of step s costs s / sqrt(12) RMS when the error is
// uniform. For the float types the step is relative (2^-10 and 2^-7 of the
// leading power of two, ~0.72 of that on average relative to the value);
// for the block formats it follows from the group's extreme, ~2.0 standard
// deviations for 16 normals and ~2.2 for 32 (range ~3.6 and ~4.2). That
// predicts, per format:
//   F16 2.0e-4, BF16 1.6e-3, Q8_0 (amax/127) 0.005, Q6_K (amax/32) 0.018,
//   Q5_0 (amax/16) 0.04, Q5_1 / Q5_K (range/31) 0.04, Q4_0 (amax/8) 0.08,
//   Q4_1 / Q4_K (range/15) 0.08, Q3_K (amax/4) 0.14, Q2_K (range/3) 0.35.
// The measured values agree (the K-quants' scale searches gain a little);
// the bounds leave ~30% headroom over them, enough for another seed or
// standard library, tight enough to catch a wrong scale or level.
TEST(RoundTrip, ErrorOnGaussianWeightsIsWithinTheFormatsStep) {
  const RoundTripCase kCases[] = {
      {GgmlType::kF32, 0.0},      // measured 0
      {GgmlType::kF16, 3e-4},     // measured 2.09e-4
      {GgmlType::kBF16, 2.3e-3},  // measured 1.63e-3
      {GgmlType::kQ8_0, 0.007},   // measured 0.0053
      {GgmlType::kQ6_K, 0.023},   // measured 0.0177
      {GgmlType::kQ5_0, 0.055},   // measured 0.042
      {GgmlType::kQ5_1, 0.05},    // measured 0.038
      {GgmlType::kQ5_K, 0.047},   // measured 0.036
      {GgmlType::kQ4_0, 0.11},    // measured 0.085
      {GgmlType::kQ4_1, 0.1},     // measured 0.077
      {GgmlType::kQ4_K, 0.093},   // measured 0.071
      {GgmlType::kQ3_K, 0.2},     // measured 0.151
      {GgmlType::kQ2_K, 0.39},    // measured 0.297
  };
  std::mt19937 rng(20240531);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 64);
  for (float& v : x) v = normal(rng);
  for (const RoundTripCase& c : kCases) {
    SCOPED_TRACE(std::string(GetTypeTraits(c.type)->name));
    ASSERT_TRUE(IsQuantizable(c.type));
    const std::vector<float> y =
        Dequantize(c.type, Quantize(c.type, x), static_cast<int64_t>(x.size()));
    const double rms = RelativeRms(x, y);
    EXPECT_LE(rms, c.bound);
    std::printf("%-5s relative RMS error %.4g (bound %.4g)\n",
                std::string(GetTypeTraits(c.type)->name).c_str(), rms, c.bound);
  }
}

TEST(RoundTrip, ScaleIsPerBlock) {
  // Blocks of very different magnitude must not share a scale: each block's
  // error stays relative to its own size.
  std::mt19937 rng(99);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (GgmlType type : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_K,
                        GgmlType::kQ6_K, GgmlType::kQ3_K}) {
    SCOPED_TRACE(std::string(GetTypeTraits(type)->name));
    const int64_t bs = BlockSize(type);
    std::vector<float> x(static_cast<size_t>(bs * 4));
    for (size_t i = 0; i < x.size(); ++i) {
      // Magnitudes 2^-4 .. 2^8: scales stored as halves bound the range.
      x[i] = normal(rng) * std::ldexp(1.0f, 4 * static_cast<int>(i / bs) - 4);
    }
    const std::vector<float> y =
        Dequantize(type, Quantize(type, x), static_cast<int64_t>(x.size()));
    for (int b = 0; b < 4; ++b) {
      const std::vector<float> xb(x.begin() + b * bs, x.begin() + (b + 1) * bs);
      const std::vector<float> yb(y.begin() + b * bs, y.begin() + (b + 1) * bs);
      EXPECT_LE(RelativeRms(xb, yb), 0.25) << "block " << b;
    }
  }
}

TEST(RoundTrip, ZerosStayZeroAndExactValuesStayExact) {
  for (GgmlType type : kDequantTypes) {
    if (!IsQuantizable(type)) continue;
    SCOPED_TRACE(std::string(GetTypeTraits(type)->name));
    const std::vector<float> zeros(512, 0.0f);
    for (float v : Dequantize(type, Quantize(type, zeros), 512)) {
      ASSERT_EQ(v, 0.0f);
    }
  }
  // Integers up to 127 in magnitude, with 127 present in every block, are
  // exactly representable in Q8_0 (d = 1).
  std::vector<float> ints(64);
  for (int i = 0; i < 64; ++i) {
    ints[i] = static_cast<float>(i % 32 == 0 ? 127 : i * 37 % 255 - 127);
  }
  EXPECT_EQ(Dequantize(GgmlType::kQ8_0, Quantize(GgmlType::kQ8_0, ints), 64),
            ints);
}

TEST(Quantize, Q4_0KnownBlock) {
  // The value of largest magnitude is -8, so d = -8 / -8 = 1 and level
  // q = x + 8 (ties round up: x0 + 8.5 is truncated).
  std::vector<float> x(32, 0.0f);
  for (int j = 0; j < 16; ++j) x[j] = static_cast<float>(j - 8);
  x[16] = 7.6f;   // 16.1 -> clamped to level 15
  x[17] = -0.5f;  // tie -> level 8
  const std::vector<uint8_t> q = Quantize(GgmlType::kQ4_0, x);
  BlockQ4_0 b;
  std::memcpy(&b, q.data(), sizeof(b));
  EXPECT_EQ(b.d, 0x3C00);
  EXPECT_EQ(b.qs[0], 0xF0);  // x[0] = -8 -> 0; x[16] -> 15
  EXPECT_EQ(b.qs[1], 0x81);  // x[1] = -7 -> 1; x[17] -> 8
  for (int j = 2; j < 16; ++j) EXPECT_EQ(b.qs[j], 0x80 | j) << j;
}

TEST(Quantize, Q8_0RoundsHalfAwayFromZero) {
  // amax = 127 gives d = 1 and id = 1, so levels are roundf(x).
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.49f;
  const std::vector<uint8_t> q = Quantize(GgmlType::kQ8_0, x);
  BlockQ8_0 b;
  std::memcpy(&b, q.data(), sizeof(b));
  EXPECT_EQ(b.d, 0x3C00);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 0);
}

}  // namespace
}  // namespace layerpool
