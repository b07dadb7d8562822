#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention_internal.h"
#include "kernels/test_util.h"
#include "kernels/vec_dot.h"
#include "model/quant/blocks.h"

namespace layerpool::kernels {
namespace {

// The SIMD weighted sums of values give the scalar loops' bits (this target
// is built with -ffp-contract=off, like the library).
TEST(AddScaledTest, Avx2MatchesScalarLoops) {
  if (DetectedIsa() < CpuIsa::kAvx2) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int n : {1, 7, 8, 31, 64, 100, 128}) {
    std::vector<float> v32(n), o(n);
    std::vector<uint16_t> v16(n);
    for (int d = 0; d < n; ++d) {
      v32[d] = normal(rng);
      v16[d] = Fp32ToFp16(normal(rng));
      o[d] = normal(rng);
    }
    const float w = normal(rng);
    std::vector<float> want16 = o, want32 = o, got16 = o, got32 = o;
    for (int d = 0; d < n; ++d) {
      want16[d] += w * Fp16ToFp32(v16[d]);
      want32[d] += w * v32[d];
    }
    avx2::AddScaledF16(w, v16.data(), got16.data(), n);
    avx2::AddScaledF32(w, v32.data(), got32.data(), n);
    EXPECT_EQ(got16, want16) << n;
    EXPECT_EQ(got32, want32) << n;
  }
}

// AttendOneToken against the double-precision reference, for f32 and f16
// caches. The f16 path rounds the query and the probabilities to f16 (as
// ggml does), so it may differ by a few 2^-11 of the largest value.
TEST(AttendOneTokenTest, MatchesReference) {
  const AttentionShape shape{.n_head = 8, .n_head_kv = 2, .head_dim = 64, .scale = 0.125f};
  const int kv_dim = shape.n_head_kv * shape.head_dim;
  const int q_dim = shape.n_head * shape.head_dim;
  const int64_t n_kv = 80;  // padded to 96: one 64-step, then a tail in double
  std::mt19937 rng(6);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(q_dim), k(n_kv * kv_dim), v(n_kv * kv_dim);
  for (float& f : q) f = normal(rng);
  for (float& f : k) f = normal(rng);
  for (float& f : v) f = normal(rng);
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16}) {
    std::vector<uint8_t> kb, vb;
    if (type == GgmlType::kF32) {
      kb.assign(reinterpret_cast<uint8_t*>(k.data()),
                reinterpret_cast<uint8_t*>(k.data() + k.size()));
      vb.assign(reinterpret_cast<uint8_t*>(v.data()),
                reinterpret_cast<uint8_t*>(v.data() + v.size()));
    } else {
      for (const std::vector<float>* src : {&k, &v}) {
        std::vector<uint8_t>& dst = src == &k ? kb : vb;
        dst.resize(src->size() * 2);
        for (size_t i = 0; i < src->size(); ++i) {
          const uint16_t h = Fp32ToFp16((*src)[i]);
          std::memcpy(dst.data() + 2 * i, &h, 2);
        }
      }
    }
    const KvLayerView kv{type, kb.data(), vb.data(),
                         kb.size() / static_cast<size_t>(n_kv)};
    std::vector<float> want(q_dim);
    AttendOneTokenReference(shape, q.data(), kv, n_kv, want.data());
    for (bool in_batch : {false, true}) {
      std::vector<float> got(q_dim);
      AttentionScratch scratch;
      AttendOneToken(shape, q.data(), kv, n_kv, in_batch, 0, shape.n_head,
                     got.data(), scratch);
      const double tolerance = type == GgmlType::kF32 ? 1e-5 : 4e-3;
      for (int i = 0; i < q_dim; ++i) {
        EXPECT_NEAR(got[i], want[i], tolerance)
            << IsaName(ActiveIsa()) << " in_batch " << in_batch << " " << i;
      }
    }
  }
}

// Every instruction set's loops give the scalar loops' bits, for one token
// (64 lanes and a double tail) and for a batch (16 lanes), on head sizes
// that take the AVX-512 loops whole (16, 32, 64), masked (8, 24) or not at
// all (40: its products are not 16-lane), and cache lengths around the
// 16-, 32- and 64-position boundaries (80: 64 positions in lanes, 16 in
// the double tail).
TEST(AttendOneTokenTest, InstructionSetsAgreeExactly) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int head_dim : {8, 16, 24, 32, 40, 64}) {
    const AttentionShape shape{.n_head = 4, .n_head_kv = 2, .head_dim = head_dim,
                               .scale = 1.0f / std::sqrt(static_cast<float>(head_dim))};
    const int kv_dim = shape.n_head_kv * head_dim;
    const int q_dim = shape.n_head * head_dim;
    for (int64_t n_kv : {1, 15, 33, 64, 80, 100}) {
      // Large queries push most exponentials to ggml_v_expf's saturation.
      const float q_scale = n_kv == 80 ? 300.0f : 1.0f;
      std::vector<float> q(q_dim);
      for (float& f : q) f = q_scale * normal(rng);
      std::vector<uint16_t> k(n_kv * kv_dim), v(n_kv * kv_dim);
      for (uint16_t& h : k) h = Fp32ToFp16(normal(rng));
      for (uint16_t& h : v) h = Fp32ToFp16(normal(rng));
      const KvLayerView kv{GgmlType::kF16, reinterpret_cast<uint8_t*>(k.data()),
                           reinterpret_cast<uint8_t*>(v.data()),
                           static_cast<size_t>(kv_dim) * 2};
      for (bool in_batch : {false, true}) {
        std::vector<float> want(q_dim);
        AttentionScratch scratch;
        AttendOneTokenWithIsa(CpuIsa::kScalar, shape, q.data(), kv, n_kv,
                              in_batch, 0, shape.n_head, want.data(), scratch);
        for (CpuIsa isa : testing::AvailableIsas()) {
          std::vector<float> got(q_dim);
          AttendOneTokenWithIsa(isa, shape, q.data(), kv, n_kv, in_batch, 0,
                                shape.n_head, got.data(), scratch);
          EXPECT_EQ(got, want) << IsaName(isa) << " head_dim " << head_dim
                               << " n_kv " << n_kv << " in_batch " << in_batch;
        }
      }
    }
  }
}

// A sliding window and Gemma 2's soft cap: against the reference, and a
// window over an f32 cache gives exactly what the same attention over only
// the visible positions gives. Every instruction set agrees with the scalar
// loops on the f16 cache.
TEST(AttendOneTokenTest, WindowAndSoftCap) {
  std::mt19937 rng(8);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int head_dim = 32, n_head = 4, n_head_kv = 2;
  const int kv_dim = n_head_kv * head_dim, q_dim = n_head * head_dim;
  const int64_t n_kv = 70;
  std::vector<float> q(q_dim), k(n_kv * kv_dim), v(n_kv * kv_dim);
  // Large scores, so the cap (tanh saturating near 5) changes the weights.
  for (float& f : q) f = 4.0f * normal(rng);
  for (float& f : k) f = normal(rng);
  for (float& f : v) f = normal(rng);
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) k16[i] = Fp32ToFp16(k[i]);
  for (size_t i = 0; i < v.size(); ++i) v16[i] = Fp32ToFp16(v[i]);
  const KvLayerView kv32{GgmlType::kF32, reinterpret_cast<uint8_t*>(k.data()),
                         reinterpret_cast<uint8_t*>(v.data()),
                         static_cast<size_t>(kv_dim) * 4};
  const KvLayerView kv16{GgmlType::kF16, reinterpret_cast<uint8_t*>(k16.data()),
                         reinterpret_cast<uint8_t*>(v16.data()),
                         static_cast<size_t>(kv_dim) * 2};
  for (float softcap : {0.0f, 5.0f}) {
    for (int64_t window : {0, 1, 17, 64, 70, 200}) {
      const AttentionShape shape{.n_head = n_head, .n_head_kv = n_head_kv,
                                 .head_dim = head_dim, .scale = 0.25f,
                                 .softcap = softcap, .window = window};
      const std::string where = "softcap " + std::to_string(softcap) +
                                " window " + std::to_string(window);
      std::vector<float> want(q_dim);
      AttendOneTokenReference(shape, q.data(), kv32, n_kv, want.data());
      AttentionScratch scratch;
      std::vector<float> got32(q_dim), got16(q_dim);
      AttendOneToken(shape, q.data(), kv32, n_kv, false, 0, n_head, got32.data(), scratch);
      AttendOneToken(shape, q.data(), kv16, n_kv, true, 0, n_head, got16.data(), scratch);
      for (int i = 0; i < q_dim; ++i) {
        EXPECT_NEAR(got32[i], want[i], 1e-5) << where << " f32 " << i;
        EXPECT_NEAR(got16[i], want[i], 4e-3) << where << " f16 " << i;
      }
      if (window > 0 && window < n_kv) {
        const int64_t first = n_kv - window;
        AttentionShape unwindowed = shape;
        unwindowed.window = 0;
        KvLayerView tail = kv32;
        tail.k += first * tail.row_bytes;
        tail.v += first * tail.row_bytes;
        std::vector<float> only_visible(q_dim);
        AttendOneToken(unwindowed, q.data(), tail, window, false, 0, n_head,
                       only_visible.data(), scratch);
        EXPECT_EQ(got32, only_visible) << where;
      }
      for (bool in_batch : {false, true}) {
        std::vector<float> scalar(q_dim);
        AttendOneTokenWithIsa(CpuIsa::kScalar, shape, q.data(), kv16, n_kv, in_batch, 0,
                              n_head, scalar.data(), scratch);
        for (CpuIsa isa : testing::AvailableIsas()) {
          std::vector<float> got(q_dim);
          AttendOneTokenWithIsa(isa, shape, q.data(), kv16, n_kv, in_batch, 0, n_head,
                                got.data(), scratch);
          EXPECT_EQ(got, scalar) << where << " " << IsaName(isa) << " in_batch " << in_batch;
        }
      }
    }
  }
}

}  // namespace
}  // namespace layerpool::kernels
