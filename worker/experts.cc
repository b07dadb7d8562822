#include "worker/experts.h"

#include <algorithm>
#include <numeric>

#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace layerpool {

void RouteToken(const float* logits, int64_t n_expert, int64_t k, ExpertChoice* choice) {
  std::vector<float> probs(static_cast<size_t>(n_expert));
  kernels::Softmax(logits, n_expert, 1.0f, nullptr, probs.data());
  std::vector<int32_t> order(static_cast<size_t>(n_expert));
  std::iota(order.begin(), order.end(), 0);
  // ggml_compute_forward_argsort_f32, descending: an exchange sort, which
  // keeps the lower id first among equal probabilities only by its own rule.
  for (int64_t j = 0; j < n_expert; ++j) {
    for (int64_t i = j + 1; i < n_expert; ++i) {
      if (probs[order[j]] < probs[order[i]]) std::swap(order[j], order[i]);
    }
  }
  choice->ids.assign(order.begin(), order.begin() + k);
  choice->weights.resize(static_cast<size_t>(k));
  double sum = 0;
  for (int64_t i = 0; i < k; ++i) {
    choice->weights[i] = probs[order[i]];
    sum += choice->weights[i];
  }
  const float total = static_cast<float>(sum);
  for (float& w : choice->weights) w /= total;
}

void ExpertsForward(const LayerWeights& w, int64_t n_embd, int64_t n_ff, int64_t n_expert,
                    int64_t n_expert_used, const float* x, int64_t n, float* out,
                    ExpertScratch& s, kernels::ThreadPool* pool) {
  const int64_t k = n_expert_used;
  // The router is a plain mul_mat in llama.cpp, so MatMul's order.
  s.logits.resize(static_cast<size_t>(n * n_expert));
  kernels::MatMul(w.gate_inp.type, w.gate_inp.data, n_expert, n_embd, x, n, s.logits.data(),
                  pool);
  s.choices.resize(static_cast<size_t>(n));
  s.tokens.resize(static_cast<size_t>(n_expert));
  for (std::vector<int64_t>& routed : s.tokens) routed.clear();  // keeps their capacity
  for (int64_t t = 0; t < n; ++t) {
    RouteToken(&s.logits[t * n_expert], n_expert, k, &s.choices[t]);
    for (int64_t slot = 0; slot < k; ++slot) {
      s.tokens[s.choices[t].ids[slot]].push_back(t * k + slot);
    }
  }
  // Each expert once, over the tokens routed to it; results land in the
  // token's slot, already weighted (ggml_mul of the expert outputs).
  s.by_slot.resize(static_cast<size_t>(n * k * n_embd));
  for (int64_t e = 0; e < n_expert; ++e) {
    const std::vector<int64_t>& routed = s.tokens[e];
    const int64_t m = static_cast<int64_t>(routed.size());
    if (m == 0) continue;
    s.rows.resize(static_cast<size_t>(m * n_embd));
    for (int64_t j = 0; j < m; ++j) {
      const float* row = x + routed[j] / k * n_embd;
      std::copy(row, row + n_embd, &s.rows[j * n_embd]);
    }
    auto expert_matmul = [&](const Matrix& stacked, const float* in, std::vector<float>& y) {
      const Matrix mat = ExpertRows(stacked, n_expert, e);
      y.resize(static_cast<size_t>(m * mat.rows));
      kernels::MatMulExpert(mat.type, mat.data, mat.rows, mat.cols, in, m, y.data(), pool);
    };
    expert_matmul(w.up_exps, s.rows.data(), s.up);
    expert_matmul(w.gate_exps, s.rows.data(), s.gate);
    kernels::SwiGlu(s.gate.data(), s.up.data(), m, n_ff, s.gate.data());
    expert_matmul(w.down_exps, s.gate.data(), s.down);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t t = routed[j] / k, slot = routed[j] % k;
      const float weight = s.choices[t].weights[slot];
      float* dst = &s.by_slot[routed[j] * n_embd];
      for (int64_t i = 0; i < n_embd; ++i) dst[i] = s.down[j * n_embd + i] * weight;
    }
  }
  // The sum over the token's experts in ggml_top_k's order.
  for (int64_t t = 0; t < n; ++t) {
    float* o = out + t * n_embd;
    const float* first = &s.by_slot[t * k * n_embd];
    std::copy(first, first + n_embd, o);
    for (int64_t slot = 1; slot < k; ++slot) {
      kernels::Add(o, &s.by_slot[(t * k + slot) * n_embd], n_embd);
    }
  }
}

}  // namespace layerpool
