#include "model/quant/dequantize.h"

#include <cstring>
#include <optional>

#include "model/quant/blocks.h"

// Every expression below keeps llama.cpp's operand order: float arithmetic is
// not associative, so `d * sc * q` and `d * (sc * q)` can differ in the last
// bit, as can `d1 * q - m1` computed with and without a fused multiply-add.
// A kernel that must match this file bit for bit has to do the same; one that
// does not is compared with a tolerance. Integers are combined first and
// converted to float once, as the C code does through its usual arithmetic
// conversions.

namespace layerpool {
namespace {

// ---------------------------------------------------------------- plain types

void DequantizeF32(const float* x, float* y, int64_t n) {
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}

void DequantizeF16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Fp16ToFp32(x[i]);
}

void DequantizeBF16(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Bf16ToFp32(x[i]);
}

// ------------------------------------------------ 32-weight legacy formats

void DequantizeQ4_0(const BlockQ4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQk32) {
    const float d = Fp16ToFp32(x[i].d);
    for (int j = 0; j < kQk32 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[j] = x0 * d;
      y[j + kQk32 / 2] = x1 * d;
    }
  }
}

void DequantizeQ4_1(const BlockQ4_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQk32) {
    const float d = Fp16ToFp32(x[i].d);
    const float m = Fp16ToFp32(x[i].m);
    for (int j = 0; j < kQk32 / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      y[j] = x0 * d + m;
      y[j + kQk32 / 2] = x1 * d + m;
    }
  }
}

// Bit 4 of weight j (0..31) of a Q5 block, as 0 or 0x10.
uint32_t Q5HighBit(const uint8_t qh[4], int j) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof(bits));
  return ((bits >> j) << 4) & 0x10;
}

void DequantizeQ5_0(const BlockQ5_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQk32) {
    const float d = Fp16ToFp32(x[i].d);
    for (int j = 0; j < kQk32 / 2; ++j) {
      const int x0 =
          static_cast<int>((x[i].qs[j] & 0x0Fu) | Q5HighBit(x[i].qh, j)) - 16;
      const int x1 = static_cast<int>((x[i].qs[j] >> 4) |
                                      Q5HighBit(x[i].qh, j + kQk32 / 2)) -
                     16;
      y[j] = x0 * d;
      y[j + kQk32 / 2] = x1 * d;
    }
  }
}

void DequantizeQ5_1(const BlockQ5_1* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQk32) {
    const float d = Fp16ToFp32(x[i].d);
    const float m = Fp16ToFp32(x[i].m);
    for (int j = 0; j < kQk32 / 2; ++j) {
      const int x0 =
          static_cast<int>((x[i].qs[j] & 0x0Fu) | Q5HighBit(x[i].qh, j));
      const int x1 = static_cast<int>((x[i].qs[j] >> 4) |
                                      Q5HighBit(x[i].qh, j + kQk32 / 2));
      y[j] = x0 * d + m;
      y[j + kQk32 / 2] = x1 * d + m;
    }
  }
}

void DequantizeQ8_0(const BlockQ8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQk32) {
    const float d = Fp16ToFp32(x[i].d);
    for (int j = 0; j < kQk32; ++j) y[j] = x[i].qs[j] * d;
  }
}

// ------------------------------------------------------------------ K-quants

void DequantizeQ2_K(const BlockQ2_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    const float dmin = Fp16ToFp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;  // sub-block of 16, 0..15
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        // Two sub-blocks per shift: q[0..15] and q[16..31].
        for (int part = 0; part < 2; ++part, ++is) {
          const uint8_t sc = x[i].scales[is];
          const float dl = d * (sc & 0xF);
          const float ml = dmin * (sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * ((q[16 * part + l] >> shift) & 3) - ml;
          }
        }
      }
    }
  }
}

// The 6-bit scale of sub-block j (0..15) of a Q3_K block, still offset by 32.
int Q3Scale(const uint8_t scales[12], int j) {
  const int low = j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4;
  const int high = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
  return low | (high << 4);
}

void DequantizeQ3_K(const BlockQ3_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d_all = Fp16ToFp32(x[i].d);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;  // walks the 8 bits of hmask across both halves
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
        for (int part = 0; part < 2; ++part, ++is) {
          const float dl = d_all * (Q3Scale(x[i].scales, is) - 32);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int low = (q[l] >> shift) & 3;
            *y++ = dl * (low - ((hm[l] & m) ? 0 : 4));
          }
        }
      }
    }
  }
}

// Scale and min (6 bits each) of sub-block j (0..7) of a Q4_K or Q5_K block:
// sub-blocks 0..3 keep them in the low 6 bits of bytes j and j + 4; 4..7 in
// the nibbles of byte j + 4, with the top two bits in the spare high bits of
// bytes j - 4 (scale) and j (min).
void GetScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void DequantizeQ4_K(const BlockQ4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    const float dmin = Fp16ToFp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      GetScaleMinK4(is, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = dmin * m;
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void DequantizeQ5_K(const BlockQ5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    const float dmin = Fp16ToFp32(x[i].dmin);
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    uint8_t u1 = 1, u2 = 2;  // qh bits of the current pair of sub-blocks
    for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      GetScaleMinK4(is, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = dmin * m;
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      }
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        // (d * sc) * q, left to right, as ggml writes `d * sc[is] * q1`.
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// ------------------------------------------------------- non-linear 4-bit

void DequantizeIQ4_NL(const BlockIQ4_NL* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQk32) {
    const float d = Fp16ToFp32(x[i].d);
    for (int j = 0; j < kQk32 / 2; ++j) {
      y[j] = d * kIq4NlValues[x[i].qs[j] & 0xF];
      y[j + kQk32 / 2] = d * kIq4NlValues[x[i].qs[j] >> 4];
    }
  }
}

void DequantizeIQ4_XS(const BlockIQ4_XS* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < kQkK / 32; ++ib, y += 32, qs += 16) {
      const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) |
                     (((x[i].scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * (ls - 32);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIq4NlValues[qs[j] & 0xF];
        y[j + 16] = dl * kIq4NlValues[qs[j] >> 4];
      }
    }
  }
}

// Views `src` as an array of blocks of type T.
template <typename T>
const T* As(const void* src) {
  return static_cast<const T*>(src);
}

}  // namespace

bool CanDequantize(GgmlType type) {
  // The type table marks exactly the types DequantizeRow handles.
  const std::optional<TypeTraits> traits = GetTypeTraits(type);
  return traits && traits->supported;
}

bool DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  if (!CanDequantize(type)) return false;
  const std::optional<TypeTraits> traits = GetTypeTraits(type);
  if (!traits || n < 0 || n % traits->block_size != 0) return false;
  const int64_t nb = n / traits->block_size;
  switch (type) {
    case GgmlType::kF32:
      DequantizeF32(As<float>(src), dst, n);
      return true;
    case GgmlType::kF16:
      DequantizeF16(As<uint16_t>(src), dst, n);
      return true;
    case GgmlType::kBF16:
      DequantizeBF16(As<uint16_t>(src), dst, n);
      return true;
    case GgmlType::kQ4_0:
      DequantizeQ4_0(As<BlockQ4_0>(src), dst, nb);
      return true;
    case GgmlType::kQ4_1:
      DequantizeQ4_1(As<BlockQ4_1>(src), dst, nb);
      return true;
    case GgmlType::kQ5_0:
      DequantizeQ5_0(As<BlockQ5_0>(src), dst, nb);
      return true;
    case GgmlType::kQ5_1:
      DequantizeQ5_1(As<BlockQ5_1>(src), dst, nb);
      return true;
    case GgmlType::kQ8_0:
      DequantizeQ8_0(As<BlockQ8_0>(src), dst, nb);
      return true;
    case GgmlType::kQ2_K:
      DequantizeQ2_K(As<BlockQ2_K>(src), dst, nb);
      return true;
    case GgmlType::kQ3_K:
      DequantizeQ3_K(As<BlockQ3_K>(src), dst, nb);
      return true;
    case GgmlType::kQ4_K:
      DequantizeQ4_K(As<BlockQ4_K>(src), dst, nb);
      return true;
    case GgmlType::kQ5_K:
      DequantizeQ5_K(As<BlockQ5_K>(src), dst, nb);
      return true;
    case GgmlType::kQ6_K:
      DequantizeQ6_K(As<BlockQ6_K>(src), dst, nb);
      return true;
    case GgmlType::kIQ4_NL:
      DequantizeIQ4_NL(As<BlockIQ4_NL>(src), dst, nb);
      return true;
    case GgmlType::kIQ4_XS:
      DequantizeIQ4_XS(As<BlockIQ4_XS>(src), dst, nb);
      return true;
    default:
      return false;
  }
}

}  // namespace layerpool
