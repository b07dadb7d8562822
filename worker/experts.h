// The mixture-of-experts feed-forward block (Mixtral), as llama.cpp's
// llm_build_moe_ffn computes it with softmax gating and renormalised
// weights:
//
//   probs   = softmax(ffn_gate_inp x)                    (n_expert)
//   experts = the k largest probs, by ggml_argsort's order (ggml_top_k)
//   w_i     = probs[e_i] / (sum of the k probs)
//   out     = sum over i, in that order, of w_i * down_e(silu(gate_e x) * up_e x)
//
// Tokens are grouped by expert, so each expert's matrices are read once per
// batch, and every product is computed in mul_mat_id's order
// (kernels::MatMulExpert): a token's output does not depend on which other
// tokens share its batch.
#ifndef LAYERPOOL_WORKER_EXPERTS_H_
#define LAYERPOOL_WORKER_EXPERTS_H_

#include <cstdint>
#include <vector>

#include "kernels/thread_pool.h"
#include "worker/stage_weights.h"

namespace layerpool {

// One token's choice: expert ids in ggml_top_k's order and their weights.
struct ExpertChoice {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

// The top `k` of router logits[0, n_expert): softmax as ggml_soft_max, the
// selection as ggml_argsort (descending; its exchange sort decides ties),
// the weights divided by their sum (summed in double, as ggml_sum_rows).
void RouteToken(const float* logits, int64_t n_expert, int64_t k, ExpertChoice* choice);

// Buffers reused from step to step.
struct ExpertScratch {
  std::vector<float> logits, rows, gate, up, down;
  std::vector<ExpertChoice> choices;
  std::vector<std::vector<int64_t>> tokens;  // per expert: (token, slot) pairs
  std::vector<float> by_slot;                // [n][k][n_embd]
};

// out[t] = the block's output for normed input x[t], t < n, each [n_embd].
void ExpertsForward(const LayerWeights& w, int64_t n_embd, int64_t n_ff, int64_t n_expert,
                    int64_t n_expert_used, const float* x, int64_t n, float* out,
                    ExpertScratch& scratch, kernels::ThreadPool* pool);

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_EXPERTS_H_
