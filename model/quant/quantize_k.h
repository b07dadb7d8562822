// Internal to lp_quant: the K-quant reference quantizers behind QuantizeRow
// and the scale searches they share. Callers use quantize.h; this header only
// connects quantize.cc, quantize_k.cc (the formats) and scale_search.cc (the
// searches), and lets the unit tests reach NearestInt.
#ifndef LAYERPOOL_MODEL_QUANT_QUANTIZE_K_H_
#define LAYERPOOL_MODEL_QUANT_QUANTIZE_K_H_

#include <cstdint>

#include "model/quant/blocks.h"

namespace layerpool::quant_internal {

// Each quantizes `nb` consecutive 256-weight super-blocks from `x` into `y`,
// exactly as ggml's quantize_row_q*_K_ref.
void QuantizeQ2_K(const float* x, BlockQ2_K* y, int64_t nb);
void QuantizeQ3_K(const float* x, BlockQ3_K* y, int64_t nb);
void QuantizeQ4_K(const float* x, BlockQ4_K* y, int64_t nb);
void QuantizeQ5_K(const float* x, BlockQ5_K* y, int64_t nb);
void QuantizeQ6_K(const float* x, BlockQ6_K* y, int64_t nb);

// ggml's GROUP_MAX_EPS: a group whose largest magnitude is below this is
// treated as all zeros.
inline constexpr float kGroupMaxEps = 1e-15f;

// ggml's nearest_int: round to nearest, ties to even, by adding 1.5 * 2^23
// and reading the low mantissa bits. Valid for |v| <= 4194303; outside that
// (NaN included) it returns some value in [-4194304, 4194303], never
// invoking undefined behaviour.
int NearestInt(float v);

// ggml's make_qx_quants with rmse_type 1 and no importance weights (the only
// form the reference quantizers use): symmetric levels L[i] in [0, 2 * nmax)
// for x[i] ~ scale * (L[i] - nmax), the scale chosen among 19 candidates
// around -nmax / max (max: the value of largest magnitude, signed) to
// minimise the x^2-weighted squared error. Returns the scale.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L);

// ggml's make_q3_quants with do_rmse: starts from the levels of -nmax / max,
// then moves single levels while that lowers the x^2-weighted error (at most
// five sweeps). L[i] ends in [0, 2 * nmax). Returns the least-squares scale.
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L);

// ggml's make_qkx2_quants: asymmetric levels L[i] in [0, nmax] for
// x[i] ~ scale * L[i] - *the_min. Tries the nstep + 1 inverse scales
// (rmin + rdelta * is + nmax) / (max - min), fits scale and min by weighted
// least squares for each, and keeps the lowest weighted error (absolute when
// use_mad, squared otherwise). Laux is scratch of n bytes. Returns the
// scale; *the_min >= 0.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights,
                     uint8_t* L, float* the_min, uint8_t* Laux, float rmin,
                     float rdelta, int nstep, bool use_mad);

}  // namespace layerpool::quant_internal

#endif  // LAYERPOOL_MODEL_QUANT_QUANTIZE_K_H_
