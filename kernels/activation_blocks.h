// The block formats activations are quantized to before they meet a weight
// row, byte for byte as ggml lays them out (ggml-common.h). Weight formats
// live in model/quant/blocks.h; these two exist only as intermediate data
// inside a matrix multiplication, never in files.
#ifndef LAYERPOOL_KERNELS_ACTIVATION_BLOCKS_H_
#define LAYERPOOL_KERNELS_ACTIVATION_BLOCKS_H_

#include <cstdint>

#include "model/quant/blocks.h"

namespace layerpool::kernels {

// ggml's block_q8_1: x = d * q for 32 weights, plus s = d * sum(q) (both
// half floats) so that a dot product with an offset format (Q4_1, Q5_1,
// x = dw * q + m) gets the m * sum(x) term without a second pass.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQk32];
};

// ggml's block_q8_K: x = d * q for 256 weights with a float scale, plus the
// sum of each run of 16 quants, which the K-quant dot products use to apply
// their per-sub-block minimums.
struct BlockQ8_K {
  float d;
  int8_t qs[kQkK];
  int16_t bsums[kQkK / 16];
};

static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ8_K) == 292);

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_ACTIVATION_BLOCKS_H_
