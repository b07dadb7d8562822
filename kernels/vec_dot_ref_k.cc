// Scalar reference dot products for the 256-weight super-block formats (the
// K-quants and IQ4_XS) against Q8_K activations.
//
// Each function unpacks a super-block into its integer levels q[0..256) in
// natural weight order and its per-sub-block integer scales (and minimums),
// then forms, exactly in integers,
//   isum  = sum over sub-blocks s of scale[s] * sum_{l in s} q[l] * y.qs[l]
//   summs = sum over sub-blocks s of min[s] * (sum of y.qs over s)
// (summs from the activations' bsums, as ggml does), and adds
//   d * isum - dmin * summs,   d = x.d * y.d, dmin = x.dmin * y.d
// to a float total. ggml's scalar code spreads isum over eight float lanes
// and its SIMD code over vector lanes, so results agree to float rounding.

#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels::ref {
namespace {

// sum_s scale[s] * sum_{l in sub-block s} q[l] * y[l], over 256 weights cut
// into sub-blocks of `sub` weights.
int ScaledSuperBlockDot(const int8_t* q, const int8_t* y, const int* scale,
                        int sub) {
  int isum = 0;
  for (int s = 0; s < kQkK / sub; ++s) {
    int block = 0;
    for (int l = s * sub; l < (s + 1) * sub; ++l) block += q[l] * y[l];
    isum += scale[s] * block;
  }
  return isum;
}

// sum_s min[s] * (sum of the activations' quants over sub-block s), for 8
// sub-blocks of 32 (two bsums each) or 16 of 16 (one each).
int MinTerm(const int* min, const int16_t* bsums, int sub) {
  int summs = 0;
  const int per = sub / 16;
  for (int s = 0; s < kQkK / sub; ++s) {
    int bsum = 0;
    for (int k = 0; k < per; ++k) bsum += bsums[s * per + k];
    summs += min[s] * bsum;
  }
  return summs;
}

// Weight 128 * half + 32 * j + l of the Q2_K/Q3_K layout lives in bits
// 2j..2j+1 of qs[32 * half + l].
int Low2Bits(const uint8_t* qs, int i) {
  const int half = i / 128, j = (i % 128) / 32, l = i % 32;
  return (qs[32 * half + l] >> (2 * j)) & 3;
}

// Scale and min (6 bits each) of sub-block j (0..7) of Q4_K/Q5_K.
void ScaleMinK4(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// The 4-bit part of weight i of Q4_K/Q5_K: pairs of sub-blocks share 32
// bytes, low nibbles for the first, high for the second.
int Nibble64(const uint8_t* qs, int i) {
  const int pair = i / 64, l = i % 32;
  return (i % 64) < 32 ? qs[32 * pair + l] & 0xF : qs[32 * pair + l] >> 4;
}

}  // namespace

// x = d * sc * q - dmin * m, q in 0..3, 16 sub-blocks of 16.
float DotQ2_K(const void* w, const void* x, int64_t n) {
  const BlockQ2_K* wb = static_cast<const BlockQ2_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[16], min[16];
    for (int l = 0; l < kQkK; ++l)
      q[l] = static_cast<int8_t>(Low2Bits(wb[i].qs, l));
    for (int s = 0; s < 16; ++s) {
      scale[s] = wb[i].scales[s] & 0xF;
      min[s] = wb[i].scales[s] >> 4;
    }
    const int isum = ScaledSuperBlockDot(q, xb[i].qs, scale, 16);
    const int summs = MinTerm(min, xb[i].bsums, 16);
    const float d = xb[i].d * Fp16ToFp32(wb[i].d);
    const float dmin = xb[i].d * Fp16ToFp32(wb[i].dmin);
    sum += d * isum - dmin * summs;
  }
  return sum;
}

// x = d * (sc - 32) * q, q = low two bits - (high bit ? 0 : 4).
float DotQ3_K(const void* w, const void* x, int64_t n) {
  const BlockQ3_K* wb = static_cast<const BlockQ3_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[16];
    for (int l = 0; l < kQkK; ++l) {
      const bool high = (wb[i].hmask[l % 32] >> (l / 32)) & 1;
      q[l] = static_cast<int8_t>(Low2Bits(wb[i].qs, l) - (high ? 0 : 4));
    }
    for (int s = 0; s < 16; ++s) {
      const int low = s < 8 ? wb[i].scales[s] & 0xF : wb[i].scales[s - 8] >> 4;
      const int top = (wb[i].scales[8 + s % 4] >> (2 * (s / 4))) & 3;
      scale[s] = (low | (top << 4)) - 32;
    }
    const int isum = ScaledSuperBlockDot(q, xb[i].qs, scale, 16);
    sum += Fp16ToFp32(wb[i].d) * xb[i].d * isum;
  }
  return sum;
}

// x = d * sc * q - dmin * m, q in 0..15, 8 sub-blocks of 32.
float DotQ4_K(const void* w, const void* x, int64_t n) {
  const BlockQ4_K* wb = static_cast<const BlockQ4_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[8], min[8];
    for (int l = 0; l < kQkK; ++l)
      q[l] = static_cast<int8_t>(Nibble64(wb[i].qs, l));
    for (int s = 0; s < 8; ++s) ScaleMinK4(s, wb[i].scales, &scale[s], &min[s]);
    const int isum = ScaledSuperBlockDot(q, xb[i].qs, scale, 32);
    const int summs = MinTerm(min, xb[i].bsums, 32);
    const float d = Fp16ToFp32(wb[i].d) * xb[i].d;
    const float dmin = Fp16ToFp32(wb[i].dmin) * xb[i].d;
    sum += d * isum - dmin * summs;
  }
  return sum;
}

// As Q4_K with a fifth bit: bit 4 of weight 32k + l is bit k of qh[l].
float DotQ5_K(const void* w, const void* x, int64_t n) {
  const BlockQ5_K* wb = static_cast<const BlockQ5_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[8], min[8];
    for (int l = 0; l < kQkK; ++l) {
      const int high = (wb[i].qh[l % 32] >> (l / 32)) & 1;
      q[l] = static_cast<int8_t>(Nibble64(wb[i].qs, l) | (high << 4));
    }
    for (int s = 0; s < 8; ++s) ScaleMinK4(s, wb[i].scales, &scale[s], &min[s]);
    const int isum = ScaledSuperBlockDot(q, xb[i].qs, scale, 32);
    const int summs = MinTerm(min, xb[i].bsums, 32);
    const float d = Fp16ToFp32(wb[i].d) * xb[i].d;
    const float dmin = Fp16ToFp32(wb[i].dmin) * xb[i].d;
    sum += d * isum - dmin * summs;
  }
  return sum;
}

// x = d * sc * (q - 32), q in 0..63, 16 sub-blocks of 16 with int8 scales.
float DotQ6_K(const void* w, const void* x, int64_t n) {
  const BlockQ6_K* wb = static_cast<const BlockQ6_K*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[16];
    for (int l = 0; l < kQkK; ++l) {
      // Within a 128-weight half: ql[r] holds weights r (low nibble) and
      // r + 64 (high) for r < 64, where r = l % 64 picks the byte, and qh
      // holds the top two bits of weights r, r+32, r+64, r+96 (r < 32).
      const int half = l / 128, k = l % 128;
      const uint8_t* ql = wb[i].ql + 64 * half;
      const uint8_t* qh = wb[i].qh + 32 * half;
      const int low = k < 64 ? ql[k] & 0xF : ql[k - 64] >> 4;
      const int top = (qh[k % 32] >> (2 * (k / 32))) & 3;
      q[l] = static_cast<int8_t>((low | (top << 4)) - 32);
    }
    for (int s = 0; s < 16; ++s) scale[s] = wb[i].scales[s];
    const int isum = ScaledSuperBlockDot(q, xb[i].qs, scale, 16);
    sum += Fp16ToFp32(wb[i].d) * xb[i].d * isum;
  }
  return sum;
}

// x = d * (ls - 32) * kIq4NlValues[q], 8 sub-blocks of 32.
float DotIQ4_XS(const void* w, const void* x, int64_t n) {
  const BlockIQ4_XS* wb = static_cast<const BlockIQ4_XS*>(w);
  const BlockQ8_K* xb = static_cast<const BlockQ8_K*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    int8_t q[kQkK];
    int scale[8];
    for (int s = 0; s < 8; ++s) {
      const uint8_t* qs = wb[i].qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        q[32 * s + j] = kIq4NlValues[qs[j] & 0xF];
        q[32 * s + j + 16] = kIq4NlValues[qs[j] >> 4];
      }
      const int ls = ((wb[i].scales_l[s / 2] >> (4 * (s % 2))) & 0xF) |
                     (((wb[i].scales_h >> (2 * s)) & 3) << 4);
      scale[s] = ls - 32;
    }
    const int isum = ScaledSuperBlockDot(q, xb[i].qs, scale, 32);
    sum += Fp16ToFp32(wb[i].d) * xb[i].d * isum;
  }
  return sum;
}

}  // namespace layerpool::kernels::ref
