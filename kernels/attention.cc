#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention_internal.h"
#include "kernels/ggml_float.h"
#include "kernels/vec_dot.h"
#include "model/quant/blocks.h"
#include "model/quant/dequantize.h"

namespace layerpool::kernels {
namespace {

// Key or value element offset of kv head `h` within a cache row, in bytes.
size_t HeadOffset(GgmlType type, int h, int head_dim) {
  return static_cast<size_t>(*RowBytes(type, int64_t{h} * head_dim));
}

// The first position the query at n_kv - 1 sees (AttentionShape::window).
int64_t FirstVisible(const AttentionShape& s, int64_t n_kv) {
  return s.window > 0 ? std::max<int64_t>(0, n_kv - s.window) : 0;
}

// Scores of the visible positions [first, n_kv) soft-capped, and the hidden
// ones set to -inf, which the softmax turns into weights of exactly 0 (as
// ggml's does with the SWA mask's -INFINITY): the values' sums then add
// nothing for them, so skipping nothing else keeps llama.cpp's order.
void CapAndMask(const AttentionShape& s, int64_t first, int64_t n_kv, float* scores) {
  if (s.softcap > 0) {
    const float inv_cap = 1.0f / s.softcap;
    for (int64_t p = first; p < n_kv; ++p) {
      scores[p] = std::tanh(scores[p] * inv_cap) * s.softcap;
    }
  }
  std::fill(scores, scores + first, -std::numeric_limits<float>::infinity());
}

// ---- The f16 cache, in llama.cpp's order -----------------------------------
//
// Without flash attention llama.cpp computes KQ = mul_mat(K, Q) and KQV =
// mul_mat(V^T, softmax(KQ)) with Q and the probabilities rounded to f16, and
// ggml picks the product's order by the number of tokens in the batch:
//   one token   ggml_vec_dot_f16: 64-element steps into four 16-lane
//               accumulators (lane s of the 64 takes elements i + s), the
//               four reduced pairwise (0+2, 1+3, then the two), the 16 lanes
//               by ReduceAdd16, and elements past the last full step added
//               one by one in double;
//   a batch     llamafile's tinyBLAS, when the inner length is a multiple of
//               16: one 16-lane accumulator (lane l takes elements c + l of
//               each 16-element step c), then ReduceAdd16. Otherwise
//               ggml_vec_dot_f16 as above.
// For KQV the inner length is the cache length padded to 32 (llama.cpp's
// kv_self.n); the padding's probabilities are exactly 0 and so are left out,
// but for one token it decides which positions fall in the double tail. The
// softmax is ggml_vec_soft_max_f32: exp by GgmlExpf in groups of 16 (the
// padded length is a multiple of 16, so no group needs expf), each group
// summed by ReduceAdd16 into a double.

// Number of lanes the product over `n` elements accumulates in, and the
// length of its vector part (the rest is the double tail).
struct F16Order {
  int lanes;
  int64_t vector_end;
};

F16Order OrderFor(int64_t n, bool in_batch) {
  if (in_batch && n % 16 == 0) return {16, n};
  return {64, n & ~int64_t{63}};
}

// Sums lanes[0, n_lanes) as the order above reduces them.
float ReduceLanes(const float* lanes, int n_lanes) {
  if (n_lanes == 16) return ReduceAdd16(lanes);
  float r[16];
  for (int l = 0; l < 16; ++l) {
    r[l] = (lanes[l] + lanes[l + 32]) + (lanes[l + 16] + lanes[l + 48]);
  }
  return ReduceAdd16(r);
}

// The values' weights from the scores, in place: the softmax of
// ggml_vec_soft_max_f32, then rounded to f16 as mul_mat(V, KQ) rounds them.
[[gnu::always_inline]] inline void ProbabilitiesF16(float* scores, int64_t n) {
  float max_score = -std::numeric_limits<float>::infinity();
  for (int64_t p = 0; p < n; ++p) max_score = std::max(max_score, scores[p]);
  double sum = 0;
  for (int64_t p0 = 0; p0 < n; p0 += 16) {
    float group_exp[16] = {};
    for (int64_t p = p0; p < std::min(n, p0 + 16); ++p) {
      group_exp[p - p0] = scores[p] = GgmlExpf(scores[p] - max_score);
    }
    sum += ReduceAdd16(group_exp);
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t p = 0; p < n; ++p) {
    scores[p] = Fp16ToFp32(Fp32ToFp16(scores[p] * inv));
  }
}

[[gnu::always_inline]] inline float DotF16(const uint16_t* x,
                                           const uint16_t* y, int n,
                                           bool in_batch, bool avx2) {
  const F16Order order = OrderFor(n, in_batch);
  double sum = 0;
  if (order.vector_end > 0) {
    float lanes[64] = {};
    if (avx2) {
      avx2::FmaLanesF16(x, y, order.vector_end, order.lanes, lanes);
    } else {
      for (int64_t i = 0; i < order.vector_end; ++i) {
        float& lane = lanes[i % order.lanes];
        lane = std::fma(Fp16ToFp32(x[i]), Fp16ToFp32(y[i]), lane);
      }
    }
    sum = ReduceLanes(lanes, order.lanes);
  }
  for (int64_t i = order.vector_end; i < n; ++i) {
    sum += static_cast<double>(Fp16ToFp32(x[i]) * Fp16ToFp32(y[i]));
  }
  return static_cast<float>(sum);
}

// Inlined into AttendOneToken's FMA build, for GgmlExpf and DotF16.
[[gnu::always_inline]] inline void AttendF16(
    CpuIsa isa, const AttentionShape& s, const float* q, const KvLayerView& kv,
    int64_t n_kv, bool in_batch, int head_begin, int head_end, float* out,
    AttentionScratch& scratch) {
  const int group = s.n_head / s.n_head_kv;
  const int hd = s.head_dim;
  const int64_t n_padded = (n_kv + 31) / 32 * 32;
  const F16Order kqv_order = OrderFor(n_padded, in_batch);
  scratch.scores.resize(static_cast<size_t>(n_kv));
  scratch.query.resize(static_cast<size_t>(hd) * 2);
  scratch.lanes.resize(static_cast<size_t>(kqv_order.lanes) * hd);
  float* scores = scratch.scores.data();
  uint16_t* q16 = reinterpret_cast<uint16_t*>(scratch.query.data());
  float* lanes = scratch.lanes.data();  // [lane][d]
  const int64_t first = FirstVisible(s, n_kv);
  const bool avx2 = isa >= CpuIsa::kAvx2;
  // AVX-512 loops for the 16-lane orders.
  const bool scores_avx512 = isa >= CpuIsa::kAvx512 &&
                             OrderFor(hd, in_batch).lanes == 16 &&
                             hd <= avx512::kMaxScoreHeadDim;
  const bool values_avx512 = isa >= CpuIsa::kAvx512 && kqv_order.lanes == 16;
  const bool scores_double_avx512 = isa >= CpuIsa::kAvx512 &&
                                    OrderFor(hd, in_batch).vector_end == 0 &&
                                    hd <= avx512::kMaxDoubleHeadDim;
  scratch.sums.resize(static_cast<size_t>(hd));
  double* sums = scratch.sums.data();

  for (int h = head_begin; h < head_end; ++h) {
    const size_t head = static_cast<size_t>(h / group) * hd * 2;
    for (int d = 0; d < hd; ++d) q16[d] = Fp32ToFp16(q[static_cast<size_t>(h) * hd + d]);
    const uint8_t* k_first = kv.k + first * kv.row_bytes + head;
    if (scores_avx512) {
      avx512::ScoresF16Lanes16(k_first, kv.row_bytes, n_kv - first, q16, hd,
                               s.scale, scores + first);
    } else if (scores_double_avx512) {
      avx512::ScoresF16Double(k_first, kv.row_bytes, n_kv - first, q16, hd,
                              s.scale, scores + first);
    } else {
      for (int64_t p = first; p < n_kv; ++p) {
        const uint16_t* key =
            reinterpret_cast<const uint16_t*>(kv.k + p * kv.row_bytes + head);
        scores[p] = DotF16(key, q16, hd, in_batch, avx2) * s.scale;
      }
    }
    CapAndMask(s, first, n_kv, scores);
    if (isa >= CpuIsa::kAvx512) {
      avx512::ProbabilitiesF16(scores, n_kv);
    } else {
      ProbabilitiesF16(scores, n_kv);
    }
    float* o = out + static_cast<size_t>(h) * hd;
    if (values_avx512) {
      avx512::WeightedSumF16Lanes16(kv.v + head, kv.row_bytes, n_kv, scores,
                                    hd, o);
      continue;
    }

    std::fill(lanes, lanes + static_cast<size_t>(kqv_order.lanes) * hd, 0.0f);
    const int64_t vector_end = std::min(n_kv, kqv_order.vector_end);
    for (int64_t p = 0; p < vector_end; ++p) {
      const float w = scores[p];
      const uint16_t* v16 =
          reinterpret_cast<const uint16_t*>(kv.v + p * kv.row_bytes + head);
      float* lane = lanes + (p % kqv_order.lanes) * hd;
      if (avx2) {
        avx2::FmaScaledF16(w, v16, lane, hd);
      } else {
        for (int d = 0; d < hd; ++d) lane[d] = std::fma(Fp16ToFp32(v16[d]), w, lane[d]);
      }
    }
    float column[64];
    for (int d = 0; d < hd; ++d) {
      for (int l = 0; l < kqv_order.lanes; ++l) column[l] = lanes[l * hd + d];
      sums[d] = ReduceLanes(column, kqv_order.lanes);
    }
    if (isa >= CpuIsa::kAvx512) {
      avx512::AddProductsF16Double(kv.v + head, kv.row_bytes, vector_end, n_kv,
                                   scores, hd, sums);
    } else {
      for (int64_t p = vector_end; p < n_kv; ++p) {
        const uint16_t* v16 =
            reinterpret_cast<const uint16_t*>(kv.v + p * kv.row_bytes + head);
        for (int d = 0; d < hd; ++d) {
          sums[d] += static_cast<double>(Fp16ToFp32(v16[d]) * scores[p]);
        }
      }
    }
    for (int d = 0; d < hd; ++d) o[d] = static_cast<float>(sums[d]);
  }
}

}  // namespace

// Compiled twice, the FMA build chosen at load time where the CPU has it:
// GgmlExpf's std::fma is then one instruction instead of a call to fmaf.
[[gnu::target_clones("fma", "default")]]
void AttendOneTokenWithIsa(CpuIsa isa, const AttentionShape& s, const float* q,
                           const KvLayerView& kv, int64_t n_kv, bool in_batch,
                           int head_begin, int head_end, float* out,
                           AttentionScratch& scratch) {
  if (kv.type == GgmlType::kF16) {
    AttendF16(isa, s, q, kv, n_kv, in_batch, head_begin, head_end, out,
              scratch);
    return;
  }
  const int group = s.n_head / s.n_head_kv;
  const GgmlType qtype = VecDotType(kv.type);
  const size_t q_bytes = static_cast<size_t>(*RowBytes(qtype, s.head_dim));
  scratch.scores.resize(static_cast<size_t>(n_kv));
  scratch.query.resize(q_bytes);
  float* scores = scratch.scores.data();
  const bool avx2 = isa >= CpuIsa::kAvx2;
  const int64_t first = FirstVisible(s, n_kv);

  for (int h = head_begin; h < head_end; ++h) {
    const int hkv = h / group;
    const size_t head = HeadOffset(kv.type, hkv, s.head_dim);
    QuantizeActivations(qtype, q + static_cast<size_t>(h) * s.head_dim,
                        scratch.query.data(), s.head_dim);
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t p = first; p < n_kv; ++p) {
      const uint8_t* key = kv.k + p * kv.row_bytes + head;
      scores[p] = VecDot(kv.type, key, scratch.query.data(), s.head_dim) * s.scale;
    }
    CapAndMask(s, first, n_kv, scores);
    for (int64_t p = first; p < n_kv; ++p) max_score = std::max(max_score, scores[p]);
    double sum = 0;
    for (int64_t p = first; p < n_kv; ++p) {
      scores[p] = std::exp(scores[p] - max_score);
      sum += scores[p];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* o = out + static_cast<size_t>(h) * s.head_dim;
    std::fill(o, o + s.head_dim, 0.0f);
    for (int64_t p = first; p < n_kv; ++p) {
      const float w = scores[p] * inv;
      const uint8_t* value = kv.v + p * kv.row_bytes + head;
      if (kv.type == GgmlType::kF32) {
        const float* v32 = reinterpret_cast<const float*>(value);
        if (avx2) {
          avx2::AddScaledF32(w, v32, o, s.head_dim);
        } else {
          for (int d = 0; d < s.head_dim; ++d) o[d] += w * v32[d];
        }
      } else {
        // Q8_0: dequantize block by block (32 values) on the fly.
        float block[32];
        for (int d0 = 0; d0 < s.head_dim; d0 += 32) {
          (void)DequantizeRow(kv.type, value + d0 / 32 * sizeof(BlockQ8_0), block, 32);
          for (int d = 0; d < 32; ++d) o[d0 + d] += w * block[d];
        }
      }
    }
  }
}

void AttendOneToken(const AttentionShape& s, const float* q,
                    const KvLayerView& kv, int64_t n_kv, bool in_batch,
                    int head_begin, int head_end, float* out,
                    AttentionScratch& scratch) {
  AttendOneTokenWithIsa(ActiveIsa(), s, q, kv, n_kv, in_batch, head_begin,
                        head_end, out, scratch);
}

void AttendOneTokenReference(const AttentionShape& s, const float* q,
                             const KvLayerView& kv, int64_t n_kv, float* out) {
  const int group = s.n_head / s.n_head_kv;
  const int kv_dim = s.n_head_kv * s.head_dim;
  std::vector<float> k(kv_dim), v(kv_dim);
  std::vector<double> scores(static_cast<size_t>(n_kv));
  for (int h = 0; h < s.n_head; ++h) {
    const int hkv = h / group;
    const float* qh = q + static_cast<size_t>(h) * s.head_dim;
    double max_score = -1e300;
    const int64_t first = FirstVisible(s, n_kv);
    for (int64_t p = 0; p < n_kv; ++p) {
      (void)DequantizeRow(kv.type, kv.k + p * kv.row_bytes, k.data(), kv_dim);
      double dot = 0;
      for (int d = 0; d < s.head_dim; ++d) {
        dot += double{qh[d]} * k[static_cast<size_t>(hkv) * s.head_dim + d];
      }
      scores[p] = dot * s.scale;
      if (s.softcap > 0) scores[p] = s.softcap * std::tanh(scores[p] / s.softcap);
      if (p < first) scores[p] = -HUGE_VAL;
      max_score = std::max(max_score, scores[p]);
    }
    double sum = 0;
    for (double& x : scores) sum += (x = std::exp(x - max_score));
    std::vector<double> acc(s.head_dim, 0.0);
    for (int64_t p = 0; p < n_kv; ++p) {
      (void)DequantizeRow(kv.type, kv.v + p * kv.row_bytes, v.data(), kv_dim);
      for (int d = 0; d < s.head_dim; ++d) {
        acc[d] += scores[p] / sum * v[static_cast<size_t>(hkv) * s.head_dim + d];
      }
    }
    for (int d = 0; d < s.head_dim; ++d) {
      out[static_cast<size_t>(h) * s.head_dim + d] = static_cast<float>(acc[d]);
    }
  }
}

}  // namespace layerpool::kernels
