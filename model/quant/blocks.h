// The storage blocks of ggml's quantized types, byte for byte as they lie in a
// GGUF file, and the half-precision conversions every format relies on.
//
// Each struct below is the C layout of ggml's `block_*` (ggml-common.h): a
// block of `block_size` weights (32, or 256 for the K-quants and IQ4_XS)
// stored in `type_size` bytes. Every member is a byte array or a 16-bit
// little-endian scalar on a 2-byte boundary, so the structs have no padding
// and may be read straight from a mapped file on any little-endian host
// (layerpool supports no other). Scales stored as half floats are kept as
// their raw uint16_t bit pattern; decode them with Fp16ToFp32.
//
// The conversions reproduce ggml's scalar code bit for bit:
//   Fp16ToFp32  ggml_compute_fp16_to_fp32 (exact; NaNs come out quiet),
//   Fp32ToFp16  ggml_compute_fp32_to_fp16 (round to nearest even; overflow
//               goes to infinity; every NaN becomes 0x7E00 with its sign),
//   Bf16ToFp32  ggml_compute_bf16_to_fp32 (exact),
//   Fp32ToBf16  ggml_compute_fp32_to_bf16 (round to nearest even; a NaN keeps
//               its top payload bits and is forced quiet).
// They are branch-light and allocation-free so that SIMD and CUDA kernels can
// use them as their scalar tail and as the test oracle. Their multiplies are
// exact scalings by powers of two, so they give the same bits whether or not
// the compiler fuses multiply-adds.
//
// Standard library only: kernels include this header, and they know nothing
// of Abseil.
#ifndef LAYERPOOL_MODEL_QUANT_BLOCKS_H_
#define LAYERPOOL_MODEL_QUANT_BLOCKS_H_

#include <bit>
#include <cmath>
#include <cstdint>

namespace layerpool {

// Weights per block of the legacy formats and of IQ4_NL.
inline constexpr int kQk32 = 32;
// Weights per super-block of the K-quants and IQ4_XS (ggml's QK_K).
inline constexpr int kQkK = 256;
// Bytes of packed 6-bit scales and mins in Q4_K and Q5_K.
inline constexpr int kKScaleSize = 12;

// x = d * (q - 8), q in [0, 15]. Weights j and j + 16 share byte qs[j]:
// low nibble holds j, high nibble holds j + 16.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQk32 / 2];
};

// x = d * q + m, q in [0, 15]; nibble layout as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQk32 / 2];
};

// x = d * (q - 16), q in [0, 31]: low 4 bits as Q4_0, bit 4 of weight j in
// bit j of the little-endian 32-bit word qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQk32 / 2];
};

// x = d * q + m, q in [0, 31]; bit layout as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQk32 / 2];
};

// x = d * q, q a signed byte.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQk32];
};

// 16 sub-blocks of 16: x = d * sc * q - dmin * mn with q in [0, 3]. Byte
// scales[i] holds sc (low nibble) and mn (high nibble) of sub-block i. Each
// 128-weight half uses 32 bytes of qs; bits 2k..2k+1 of qs[l] are weight
// 32k + l of that half.
struct BlockQ2_K {
  uint8_t scales[kQkK / 16];
  uint8_t qs[kQkK / 4];
  uint16_t d;
  uint16_t dmin;
};

// 16 sub-blocks of 16: x = d * (sc - 32) * (q - 4), q in [0, 7]. The low two
// bits of q are packed like Q2_K; the third bit of weight 32k + l (k = 0..7
// over the whole block) is bit k of hmask[l]. The 6-bit scales are split:
// low nibbles in scales[0..7] (sub-blocks 0..7 low nibble, 8..15 high
// nibble), top two bits in scales[8..11] (sub-block j at byte 8 + j % 4,
// bits 2 * (j / 4)).
struct BlockQ3_K {
  uint8_t hmask[kQkK / 8];
  uint8_t qs[kQkK / 4];
  uint8_t scales[12];
  uint16_t d;
};

// 8 sub-blocks of 32: x = d * sc * q - dmin * mn with q in [0, 15]; 6-bit sc
// and mn packed in `scales` (see GetScaleMinK4 in dequantize.cc). Each
// 64-weight pair of sub-blocks uses 32 bytes of qs: low nibbles the first
// sub-block, high nibbles the second.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQkK / 2];
};

// As Q4_K with a fifth bit: q in [0, 31]; bit 4 of weight 32k + l is bit k of
// qh[l].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQkK / 8];
  uint8_t qs[kQkK / 2];
};

// 16 sub-blocks of 16: x = d * sc * (q - 32), q in [0, 63], sc a signed byte.
// Per 128-weight half: ql[l] holds weights l (low) and l + 64 (high), ql[l +
// 32] weights l + 32 and l + 96; qh[l] holds the top two bits of weights l,
// l + 32, l + 64, l + 96 in bits 0-1, 2-3, 4-5, 6-7.
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint16_t d;
};

// Non-linear 4-bit: x = d * kIq4NlValues[q]; nibble layout as Q4_0.
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQk32 / 2];
};

// 8 sub-blocks of 32: x = d * (ls - 32) * kIq4NlValues[q]. The 6-bit ls of
// sub-block i: low nibble i % 2 of scales_l[i / 2], high two bits at bits
// 2i..2i+1 of scales_h. Nibble layout per sub-block as Q4_0.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQkK / 64];
  uint8_t qs[kQkK / 2];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);

// The 16 levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl).
inline constexpr int8_t kIq4NlValues[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// Half (IEEE binary16) bits to float. Exact for every input.
inline float Fp16ToFp32(uint16_t h) {
  // Shift the half into the top of a 32-bit word; doubling drops the sign.
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;

  // Normal halves (and inf/NaN): move exponent and mantissa into float
  // position with the exponent biased up by 224, then scale by 2^-112 so
  // that the net rebias is 127 - 15. The multiply also quiets NaNs.
  constexpr uint32_t kExpOffset = 0xE0u << 23;
  constexpr float kExpScale = 0x1.0p-112f;
  const float normalized =
      std::bit_cast<float>((two_w >> 4) + kExpOffset) * kExpScale;

  // Subnormal halves: place the mantissa under a float of value 0.5 and
  // subtract 0.5, which normalises it exactly.
  constexpr uint32_t kMagicMask = 126u << 23;
  constexpr float kMagicBias = 0.5f;
  const float denormalized =
      std::bit_cast<float>((two_w >> 17) | kMagicMask) - kMagicBias;

  constexpr uint32_t kDenormalizedCutoff = 1u << 27;
  const uint32_t result = sign | (two_w < kDenormalizedCutoff
                                      ? std::bit_cast<uint32_t>(denormalized)
                                      : std::bit_cast<uint32_t>(normalized));
  return std::bit_cast<float>(result);
}

// Float to half bits, rounding to nearest even.
inline uint16_t Fp32ToFp16(float f) {
  // Scaling up then down by powers of two saturates values too large for a
  // half to infinity and leaves the rest unchanged.
  constexpr float kScaleToInf = 0x1.0p+112f;
  constexpr float kScaleToZero = 0x1.0p-110f;
  float base = (std::fabs(f) * kScaleToInf) * kScaleToZero;

  const uint32_t w = std::bit_cast<uint32_t>(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  // Adding a power of two whose ulp is the half's ulp at this exponent makes
  // the float adder do the round-to-nearest-even; the floor 0x71000000 gives
  // halves' subnormals their fixed ulp of 2^-24.
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;

  const uint32_t bits = std::bit_cast<uint32_t>(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  const bool is_nan = shl1_w > 0xFF000000u;
  return static_cast<uint16_t>((sign >> 16) | (is_nan ? 0x7E00u : nonsign));
}

// bfloat16 bits to float: the top half of a float. Exact.
inline float Bf16ToFp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// Float to bfloat16 bits, rounding to nearest even.
inline uint16_t Fp32ToBf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) {
    // Truncating could turn a NaN whose payload is all in the low half into
    // infinity; setting the quiet bit keeps it a NaN.
    return static_cast<uint16_t>((u >> 16) | 64u);
  }
  // Adding 0x7FFF plus the lowest kept bit rounds ties to even.
  return static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}

}  // namespace layerpool

#endif  // LAYERPOOL_MODEL_QUANT_BLOCKS_H_
