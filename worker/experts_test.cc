#include "worker/experts.h"

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/quant/quantize.h"
#include "model/quant/types.h"

namespace layerpool {
namespace {

TEST(RouteTokenTest, TopKOfTheSoftmaxRenormalised) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f, 3.0f, -2.0f, 1.0f};
  ExpertChoice c;
  RouteToken(logits.data(), 8, 2, &c);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{5, 1}));
  // softmax then renormalise over the two: e^3 / (e^3 + e^2), to float.
  EXPECT_NEAR(c.weights[0], 1 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(c.weights[1], 1 / (1 + std::exp(1.0)), 1e-6);
  RouteToken(logits.data(), 8, 8, &c);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{5, 1, 3, 7, 0, 4, 2, 6}));
  double sum = 0;
  for (float w : c.weights) sum += w;
  EXPECT_NEAR(sum, 1.0, 1e-6);
}

// ggml_argsort's exchange sort on ties: with all equal, nothing is
// exchanged; one larger value is exchanged to the front, and the id it
// displaced goes where it was.
TEST(RouteTokenTest, TiesInGgmlArgsortOrder) {
  ExpertChoice c;
  const std::vector<float> equal(4, 1.0f);
  RouteToken(equal.data(), 4, 4, &c);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{0, 1, 2, 3}));
  const std::vector<float> one_up = {1.0f, 1.0f, 2.0f, 1.0f};
  RouteToken(one_up.data(), 4, 4, &c);
  EXPECT_EQ(c.ids, (std::vector<int32_t>{2, 1, 0, 3}));
}

// The batched block equals a plain per-token evaluation (but for the
// router's batch): every token's experts run one at a time, in vec_dot order, weighted and summed in
// ggml_top_k's order. Same bits, so grouping tokens by expert is only a
// speed-up. For an F32 and a Q8_0 model.
TEST(ExpertsForwardTest, BatchEqualsTokenByToken) {
  const int64_t d = 64, ff = 96, n_expert = 4, k = 2, n = 9;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](int64_t count, float scale) {
    std::vector<float> v(static_cast<size_t>(count));
    for (float& f : v) f = scale * normal(rng);
    return v;
  };
  for (GgmlType type : {GgmlType::kF32, GgmlType::kQ8_0}) {
    std::vector<std::vector<uint8_t>> storage;
    auto matrix = [&](int64_t rows, int64_t cols, GgmlType t) {
      const std::vector<float> f = random(rows * cols, 0.1f);
      const int64_t row_bytes = *RowBytes(t, cols);
      storage.emplace_back(static_cast<size_t>(rows * row_bytes));
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_TRUE(QuantizeRow(t, &f[r * cols], storage.back().data() + r * row_bytes, cols));
      }
      return Matrix{t, storage.back().data(), rows, cols};
    };
    LayerWeights w;
    w.gate_inp = matrix(n_expert, d, GgmlType::kF32);
    w.gate_exps = matrix(n_expert * ff, d, type);
    w.up_exps = matrix(n_expert * ff, d, type);
    w.down_exps = matrix(n_expert * d, ff, type);
    const std::vector<float> x = random(n * d, 1.0f);

    std::vector<float> batched(n * d);
    ExpertScratch scratch;
    kernels::ThreadPool pool(2);
    ExpertsForward(w, d, ff, n_expert, k, x.data(), n, batched.data(), scratch, &pool);

    // The router is a plain mul_mat, whose order llama.cpp picks by batch
    // size: the same batch here.
    std::vector<float> logits(n * n_expert);
    kernels::MatMul(GgmlType::kF32, w.gate_inp.data, n_expert, d, x.data(), n, logits.data(),
                    nullptr);
    std::set<int32_t> used;
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = &x[t * d];
      ExpertChoice c;
      RouteToken(&logits[t * n_expert], n_expert, k, &c);
      std::vector<float> want(d), gate(ff), up(ff), down(d);
      for (int64_t slot = 0; slot < k; ++slot) {
        const int32_t e = c.ids[slot];
        used.insert(e);
        const Matrix g = ExpertRows(w.gate_exps, n_expert, e);
        const Matrix u = ExpertRows(w.up_exps, n_expert, e);
        const Matrix dn = ExpertRows(w.down_exps, n_expert, e);
        kernels::MatMulExpert(type, u.data, ff, d, xt, 1, up.data(), nullptr);
        kernels::MatMulExpert(type, g.data, ff, d, xt, 1, gate.data(), nullptr);
        kernels::SwiGlu(gate.data(), up.data(), 1, ff, gate.data());
        kernels::MatMulExpert(type, dn.data, d, ff, gate.data(), 1, down.data(), nullptr);
        for (int64_t i = 0; i < d; ++i) {
          const float weighted = down[i] * c.weights[slot];
          want[i] = slot == 0 ? weighted : want[i] + weighted;
        }
      }
      for (int64_t i = 0; i < d; ++i) {
        ASSERT_EQ(batched[t * d + i], want[i]) << GetTypeTraits(type)->name << " token " << t << " " << i;
      }
    }
    EXPECT_GE(used.size(), 3u) << "the tokens should spread over the experts";
  }
}

}  // namespace
}  // namespace layerpool
