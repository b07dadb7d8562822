// Causal multi-head attention of one query token over a KV cache, with
// grouped-query heads, on the CPU.
//
// The numerics follow llama.cpp's CPU path without flash attention, because
// logits are compared with llama.cpp's: scores are the dot product of the
// query and each cached key in the key's storage type (the query is rounded
// to f16 for an f16 cache, quantized to Q8_0 for a q8_0 cache), scaled,
// soft-maxed in f32 with the sum in double; for an f16 cache the
// probabilities are rounded to f16 before weighting the values, as ggml's
// mul_mat(V, KQ) does, and every float operation is ggml's (attention.cc
// says which). Plain C++; no Abseil.
#ifndef LAYERPOOL_KERNELS_ATTENTION_H_
#define LAYERPOOL_KERNELS_ATTENTION_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/quant/types.h"

namespace layerpool::kernels {

// One layer of a KV cache: position p's keys (all kv heads, kv_dim =
// n_head_kv * head_dim elements) start at k + p * row_bytes; values
// likewise at v. Element type F32, F16 or Q8_0 (then head_dim % 32 == 0).
struct KvLayerView {
  GgmlType type = GgmlType::kF16;
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;
  size_t row_bytes = 0;
};

struct AttentionShape {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  float scale = 0;  // usually 1 / sqrt(head_dim)
  // Logit soft-capping (Gemma 2): a score s becomes cap * tanh(s / cap)
  // before the softmax, as ggml_scale, ggml_tanh, ggml_scale do. 0: none.
  float softcap = 0;
  // Sliding window: the query at position n_kv - 1 sees only positions p
  // with (n_kv - 1) - p < window, as llama.cpp's SWA mask. 0: all of them.
  int64_t window = 0;
};

// Per-thread scratch, reused across calls so attention allocates nothing in
// steady state.
struct AttentionScratch {
  std::vector<float> scores;
  std::vector<uint8_t> query;  // the query in the key's type
  std::vector<float> lanes;    // the f16 path's value accumulators
  std::vector<double> sums;    // and its sums in double
};

// out[h * head_dim + d] for query heads h in [head_begin, head_end),
// attending to positions [0, n_kv) of `kv`. q and out hold n_head *
// head_dim floats. n_kv >= 1. `in_batch`: the token is one of several
// evaluated together, which for an f16 cache selects llama.cpp's batched
// order of float operations rather than its one-token order (attention.cc).
// Different head ranges of one token may run on different threads, each
// with its own scratch.
void AttendOneToken(const AttentionShape& shape, const float* q,
                    const KvLayerView& kv, int64_t n_kv, bool in_batch,
                    int head_begin, int head_end, float* out,
                    AttentionScratch& scratch);

// Reference version in double precision, with no rounding of the query or
// probabilities: the oracle the tests compare AttendOneToken with. Applies
// the soft cap and the window too.
void AttendOneTokenReference(const AttentionShape& shape, const float* q,
                             const KvLayerView& kv, int64_t n_kv, float* out);

}  // namespace layerpool::kernels

#endif  // LAYERPOOL_KERNELS_ATTENTION_H_
