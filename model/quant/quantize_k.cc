#include "model/quant/quantize_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// A transcription of ggml's K-quant reference quantizers (ggml-quants.c,
// quantize_row_q{2,3,4,5,6}_K_ref; their scale searches are in
// scale_search.cc). The goal is byte equality with llama-quantize's output,
// so each float expression keeps ggml's operand order and types, and integer
// results are narrowed to uint8_t/int8_t exactly where ggml narrows them
// (which matters: in Q4_K a negative scale index wraps before the MIN).

namespace layerpool::quant_internal {
namespace {

int Clamp(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

// Packs the 2-bit levels of 256 weights as Q2_K and Q3_K store them.
void Pack2Bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQkK; j += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[j / 4 + l] =
          static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) |
                               (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
  }
}

// Same unpacking as GetScaleMinK4 in dequantize.cc.
void GetScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// The shared part of Q4_K and Q5_K (levels in [0, nmax]): fits each
// 32-weight sub-block with make_qkx2_quants, quantizes the eight scales and
// mins to 6 bits against the super-block's d and dmin, then requantizes
// every weight against the stored (rounded) scales. Leaves the final levels
// in L[0..256).
void QuantizeScalesMinsK(const float* x, int nmax, float rmin, float rdelta,
                         int nstep, uint16_t* d_out, uint16_t* dmin_out,
                         uint8_t* scales, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  float mins[kQkK / 32];
  float sub_scales[kQkK / 32];
  float max_scale = 0;  // scales are never negative: the min is taken out
  float max_min = 0;
  for (int j = 0; j < kQkK / 32; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    sub_scales[j] = MakeQkx2Quants(32, nmax, xs, weights, L + 32 * j, &mins[j],
                                   Laux, rmin, rdelta, nstep, false);
    if (sub_scales[j] > max_scale) max_scale = sub_scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }

  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQkK / 32; ++j) {
    // ggml stores nearest_int into a uint8_t before clamping, so a negative
    // value wraps to a large one and clamps to 63.
    uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * sub_scales[j]));
    uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
    ls = std::min<uint8_t>(63, ls);
    lm = std::min<uint8_t>(63, lm);
    if (j < 4) {
      scales[j] = ls;
      scales[j + 4] = lm;
    } else {
      scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = Fp32ToFp16(max_scale / 63.f);
  *dmin_out = Fp32ToFp16(max_min / 63.f);

  for (int j = 0; j < kQkK / 32; ++j) {
    uint8_t sc, m;
    GetScaleMinK4(j, scales, &sc, &m);
    const float d = Fp16ToFp32(*d_out) * sc;
    // A zero scale keeps the levels make_qkx2_quants chose, as ggml does.
    if (d == 0) continue;
    const float dm = Fp16ToFp32(*dmin_out) * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = NearestInt((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(Clamp(l, 0, nmax));
    }
  }
}

}  // namespace

void QuantizeQ2_K(const float* x, BlockQ2_K* y, int64_t nb) {
  constexpr float kQ4Scale = 15.f;
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    uint8_t L[kQkK];
    uint8_t Laux[16];
    float weights[16];
    float mins[kQkK / 16];
    float scales[kQkK / 16];
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQkK / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j,
                                 &mins[j], Laux, -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }

    if (max_scale > 0) {
      const float iscale = kQ4Scale / max_scale;
      for (int j = 0; j < kQkK / 16; ++j) {
        y[i].scales[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
      }
      y[i].d = Fp32ToFp16(max_scale / kQ4Scale);
    } else {
      std::memset(y[i].scales, 0, sizeof(y[i].scales));
      y[i].d = Fp32ToFp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = kQ4Scale / max_min;
      for (int j = 0; j < kQkK / 16; ++j) {
        const int l = NearestInt(iscale * mins[j]);
        y[i].scales[j] = static_cast<uint8_t>(y[i].scales[j] | (l << 4));
      }
      y[i].dmin = Fp32ToFp16(max_min / kQ4Scale);
    } else {
      y[i].dmin = Fp32ToFp16(0.f);
    }

    for (int j = 0; j < kQkK / 16; ++j) {
      const float d = Fp16ToFp32(y[i].d) * (y[i].scales[j] & 0xF);
      if (d == 0) continue;
      const float dm = Fp16ToFp32(y[i].dmin) * (y[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = NearestInt((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<uint8_t>(Clamp(l, 0, 3));
      }
    }
    Pack2Bit(L, y[i].qs);
  }
}

void QuantizeQ3_K(const float* x, BlockQ3_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    int8_t L[kQkK];
    float scales[kQkK / 16];
    float max_scale = 0;  // the scale of largest magnitude, with its sign
    float amax = 0;
    for (int j = 0; j < kQkK / 16; ++j) {
      scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }

    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    if (max_scale != 0) {
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < kQkK / 16; ++j) {
        // ggml narrows to int8_t before clamping; the value fits anyway.
        const int8_t q = static_cast<int8_t>(NearestInt(iscale * scales[j]));
        int l = Clamp(q, -32, 31) + 32;
        if (j < 8) {
          y[i].scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          y[i].scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        l >>= 4;
        y[i].scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
      }
      y[i].d = Fp32ToFp16(1 / iscale);
    } else {
      y[i].d = Fp32ToFp16(0.f);
    }

    for (int j = 0; j < kQkK / 16; ++j) {
      const int low = j < 8 ? y[i].scales[j] & 0xF : y[i].scales[j - 8] >> 4;
      const int high = (y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      const int sc = (low | (high << 4)) - 32;
      const float d = Fp16ToFp32(y[i].d) * sc;
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = Clamp(NearestInt(x[16 * j + ii] / d), -4, 3);
        L[16 * j + ii] = static_cast<int8_t>(l + 4);
      }
    }

    // The third bit of weight j goes to bit j / 32 of hmask[j % 32].
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    uint8_t low_bits[kQkK];
    for (int j = 0; j < kQkK; ++j) {
      int l = L[j];
      if (l > 3) {
        y[i].hmask[j % 32] |= static_cast<uint8_t>(1u << (j / 32));
        l -= 4;
      }
      low_bits[j] = static_cast<uint8_t>(l);
    }
    Pack2Bit(low_bits, y[i].qs);
  }
}

void QuantizeQ4_K(const float* x, BlockQ4_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    uint8_t L[kQkK];
    QuantizeScalesMinsK(x, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales,
                        L);
    uint8_t* q = y[i].qs;
    for (int j = 0; j < kQkK; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) {
        q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      }
    }
  }
}

void QuantizeQ5_K(const float* x, BlockQ5_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    uint8_t L[kQkK];
    QuantizeScalesMinsK(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin,
                        y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    uint8_t* ql = y[i].qs;
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < kQkK; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j];
        if (l1 > 15) {
          l1 -= 16;
          y[i].qh[j] |= m1;
        }
        int l2 = L[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          y[i].qh[j] |= m2;
        }
        ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

void QuantizeQ6_K(const float* x, BlockQ6_K* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    int8_t L[kQkK];
    float scales[kQkK / 16];
    float max_scale = 0;  // the scale of largest magnitude, with its sign
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQkK / 16; ++ib) {
      scales[ib] = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
      const float abs_scale = std::fabs(scales[ib]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[ib];
      }
    }

    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(y[i]));
      y[i].d = Fp32ToFp16(0.f);
      continue;
    }

    const float iscale = -128.f / max_scale;
    y[i].d = Fp32ToFp16(1 / iscale);
    for (int ib = 0; ib < kQkK / 16; ++ib) {
      y[i].scales[ib] =
          static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }

    for (int j = 0; j < kQkK / 16; ++j) {
      const float d = Fp16ToFp32(y[i].d) * y[i].scales[j];
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = Clamp(NearestInt(x[16 * j + ii] / d), -32, 31);
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }

    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQkK; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF;
        const uint8_t q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF;
        const uint8_t q4 = L[j + l + 96] & 0xF;
        ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>(
            (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
            ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
    }
  }
}

}  // namespace layerpool::quant_internal
