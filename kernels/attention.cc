#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention_internal.h"
#include "kernels/vec_dot.h"
#include "model/quant/blocks.h"
#include "model/quant/dequantize.h"

namespace layerpool::kernels {
namespace {

// Key or value element offset of kv head `h` within a cache row, in bytes.
size_t HeadOffset(GgmlType type, int h, int head_dim) {
  return static_cast<size_t>(*RowBytes(type, int64_t{h} * head_dim));
}

}  // namespace

void AttendOneToken(const AttentionShape& s, const float* q,
                    const KvLayerView& kv, int64_t n_kv, int head_begin,
                    int head_end, float* out, AttentionScratch& scratch) {
  const int group = s.n_head / s.n_head_kv;
  const GgmlType qtype = VecDotType(kv.type);
  const size_t q_bytes = static_cast<size_t>(*RowBytes(qtype, s.head_dim));
  scratch.scores.resize(static_cast<size_t>(n_kv));
  scratch.query.resize(q_bytes);
  float* scores = scratch.scores.data();
  const bool avx2 = ActiveIsa() >= CpuIsa::kAvx2;

  for (int h = head_begin; h < head_end; ++h) {
    const int hkv = h / group;
    const size_t head = HeadOffset(kv.type, hkv, s.head_dim);
    QuantizeActivations(qtype, q + static_cast<size_t>(h) * s.head_dim,
                        scratch.query.data(), s.head_dim);
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < n_kv; ++p) {
      const uint8_t* key = kv.k + p * kv.row_bytes + head;
      scores[p] = VecDot(kv.type, key, scratch.query.data(), s.head_dim) * s.scale;
      max_score = std::max(max_score, scores[p]);
    }
    double sum = 0;
    for (int64_t p = 0; p < n_kv; ++p) {
      scores[p] = std::exp(scores[p] - max_score);
      sum += scores[p];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* o = out + static_cast<size_t>(h) * s.head_dim;
    std::fill(o, o + s.head_dim, 0.0f);
    for (int64_t p = 0; p < n_kv; ++p) {
      float w = scores[p] * inv;
      const uint8_t* value = kv.v + p * kv.row_bytes + head;
      switch (kv.type) {
        case GgmlType::kF16: {
          w = Fp16ToFp32(Fp32ToFp16(w));
          const uint16_t* v16 = reinterpret_cast<const uint16_t*>(value);
          if (avx2) {
            avx2::AddScaledF16(w, v16, o, s.head_dim);
          } else {
            for (int d = 0; d < s.head_dim; ++d) o[d] += w * Fp16ToFp32(v16[d]);
          }
          break;
        }
        case GgmlType::kF32: {
          const float* v32 = reinterpret_cast<const float*>(value);
          if (avx2) {
            avx2::AddScaledF32(w, v32, o, s.head_dim);
          } else {
            for (int d = 0; d < s.head_dim; ++d) o[d] += w * v32[d];
          }
          break;
        }
        default: {
          // Q8_0: dequantize block by block (32 values) on the fly.
          float block[32];
          for (int d0 = 0; d0 < s.head_dim; d0 += 32) {
            (void)DequantizeRow(kv.type, value + d0 / 32 * sizeof(BlockQ8_0), block, 32);
            for (int d = 0; d < 32; ++d) o[d0 + d] += w * block[d];
          }
          break;
        }
      }
    }
  }
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
    for (int64_t p = 0; p < n_kv; ++p) {
      (void)DequantizeRow(kv.type, kv.k + p * kv.row_bytes, k.data(), kv_dim);
      double dot = 0;
      for (int d = 0; d < s.head_dim; ++d) {
        dot += double{qh[d]} * k[static_cast<size_t>(hkv) * s.head_dim + d];
      }
      scores[p] = dot * s.scale;
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
