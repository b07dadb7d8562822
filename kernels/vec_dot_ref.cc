// Scalar reference dot products for the float types and the 32-weight block
// formats. Each follows the scalar branch of ggml's ggml_vec_dot_* (ggml-cpu,
// early 2025): the products of quants are summed exactly in integers per
// block, and the block sum is scaled and added in float in block order. The
// float types multiply in float and sum in double (ggml_float).

#include <cstring>

#include "kernels/activation_blocks.h"
#include "kernels/vec_dot_internal.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels::ref {
namespace {

// Bit 4 of weight j of a Q5 block, as 0 or 0x10 (qh is little-endian).
inline int Q5HighBit(const uint8_t qh_bytes[4], int j) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  return static_cast<int>((qh >> j) & 1u) << 4;
}

// Sum over a 32-weight block of quant(j) * y.qs[j], where weight j (0..15)
// sits in the low nibble of qs[j] and weight j + 16 in the high nibble.
template <typename Quant>
int NibbleBlockDot(const uint8_t* qs, const int8_t* y, const Quant& quant) {
  int sum = 0;
  for (int j = 0; j < kQk32 / 2; ++j) {
    sum += quant(qs[j] & 0x0F, j) * y[j];
    sum += quant(qs[j] >> 4, j + kQk32 / 2) * y[j + kQk32 / 2];
  }
  return sum;
}

}  // namespace

float DotF32(const void* w, const void* x, int64_t n) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return static_cast<float>(sum);
}

float DotF16(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += Fp16ToFp32(a[i]) * Fp16ToFp32(b[i]);
  return static_cast<float>(sum);
}

float DotBF16(const void* w, const void* x, int64_t n) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const uint16_t* b = static_cast<const uint16_t*>(x);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += Bf16ToFp32(a[i]) * Bf16ToFp32(b[i]);
  return static_cast<float>(sum);
}

// x = d * (q - 8).
float DotQ4_0(const void* w, const void* x, int64_t n) {
  const BlockQ4_0* wb = static_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const int isum =
        NibbleBlockDot(wb[i].qs, xb[i].qs, [](int q, int) { return q - 8; });
    sum += isum * Fp16ToFp32(wb[i].d) * Fp16ToFp32(xb[i].d);
  }
  return sum;
}

// x = d * q + m; the m term uses the activation block's stored d * sum(q).
float DotQ4_1(const void* w, const void* x, int64_t n) {
  const BlockQ4_1* wb = static_cast<const BlockQ4_1*>(w);
  const BlockQ8_1* xb = static_cast<const BlockQ8_1*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const int isum =
        NibbleBlockDot(wb[i].qs, xb[i].qs, [](int q, int) { return q; });
    sum += (Fp16ToFp32(wb[i].d) * Fp16ToFp32(xb[i].d)) * isum +
           Fp16ToFp32(wb[i].m) * Fp16ToFp32(xb[i].s);
  }
  return sum;
}

// x = d * (q - 16), q with a fifth bit from qh.
float DotQ5_0(const void* w, const void* x, int64_t n) {
  const BlockQ5_0* wb = static_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const uint8_t* qh = wb[i].qh;
    const int isum = NibbleBlockDot(wb[i].qs, xb[i].qs, [qh](int q, int j) {
      return (q | Q5HighBit(qh, j)) - 16;
    });
    sum += (Fp16ToFp32(wb[i].d) * Fp16ToFp32(xb[i].d)) * isum;
  }
  return sum;
}

// x = d * q + m, q with a fifth bit from qh.
float DotQ5_1(const void* w, const void* x, int64_t n) {
  const BlockQ5_1* wb = static_cast<const BlockQ5_1*>(w);
  const BlockQ8_1* xb = static_cast<const BlockQ8_1*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const uint8_t* qh = wb[i].qh;
    const int isum = NibbleBlockDot(wb[i].qs, xb[i].qs, [qh](int q, int j) {
      return q | Q5HighBit(qh, j);
    });
    sum += (Fp16ToFp32(wb[i].d) * Fp16ToFp32(xb[i].d)) * isum +
           Fp16ToFp32(wb[i].m) * Fp16ToFp32(xb[i].s);
  }
  return sum;
}

// x = d * q.
float DotQ8_0(const void* w, const void* x, int64_t n) {
  const BlockQ8_0* wb = static_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    int isum = 0;
    for (int j = 0; j < kQk32; ++j) isum += wb[i].qs[j] * xb[i].qs[j];
    sum += isum * (Fp16ToFp32(wb[i].d) * Fp16ToFp32(xb[i].d));
  }
  return sum;
}

// x = d * kIq4NlValues[q].
float DotIQ4_NL(const void* w, const void* x, int64_t n) {
  const BlockIQ4_NL* wb = static_cast<const BlockIQ4_NL*>(w);
  const BlockQ8_0* xb = static_cast<const BlockQ8_0*>(x);
  float sum = 0;
  for (int64_t i = 0; i < n / kQk32; ++i) {
    const float d = Fp16ToFp32(xb[i].d) * Fp16ToFp32(wb[i].d);
    const int isum = NibbleBlockDot(
        wb[i].qs, xb[i].qs, [](int q, int) { return int{kIq4NlValues[q]}; });
    sum += d * isum;
  }
  return sum;
}

}  // namespace layerpool::kernels::ref
