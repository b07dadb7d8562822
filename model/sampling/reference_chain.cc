#include "model/sampling/reference_chain.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <numeric>

namespace layerpool::reference {
namespace {

struct TokenData {
  int32_t id;
  float logit;
  float p;
};

struct Array {
  std::vector<TokenData> data;
  bool sorted = false;
};

bool Before(const TokenData& a, const TokenData& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void SortAll(Array& a) {
  if (!a.sorted) {
    std::sort(a.data.begin(), a.data.end(), Before);
    a.sorted = true;
  }
}

void Softmax(Array& a) {
  SortAll(a);
  const float max_l = a.data[0].logit;
  float cum_sum = 0.0f;
  for (auto& t : a.data) {
    const float p = expf(t.logit - max_l);
    t.p = p;
    cum_sum += p;
  }
  for (auto& t : a.data) t.p /= cum_sum;
}

void Penalties(Array& a, const SamplingParams& s,
               const std::vector<int32_t>& accepted) {
  if (s.repeat_last_n == 0) return;
  if (s.repeat_penalty == 1.0f && s.frequency_penalty == 0.0f &&
      s.presence_penalty == 0.0f) {
    return;
  }
  size_t first = 0;
  if (s.repeat_last_n > 0 &&
      accepted.size() > static_cast<size_t>(s.repeat_last_n)) {
    first = accepted.size() - static_cast<size_t>(s.repeat_last_n);
  }
  std::map<int32_t, int> count;
  for (size_t i = first; i < accepted.size(); ++i) ++count[accepted[i]];
  for (auto& t : a.data) {
    auto it = count.find(t.id);
    if (it == count.end()) continue;
    if (t.logit <= 0) {
      t.logit *= s.repeat_penalty;
    } else {
      t.logit /= s.repeat_penalty;
    }
    t.logit -= float(it->second) * s.frequency_penalty +
               float(it->second > 0) * s.presence_penalty;
  }
  a.sorted = false;
}

void TopK(Array& a, int32_t k) {
  if (k <= 0 || static_cast<size_t>(k) >= a.data.size()) return;
  SortAll(a);
  a.data.resize(static_cast<size_t>(k));
}

void TailFree(Array& a, float z, size_t min_keep) {
  if (z >= 1.0f || a.data.size() <= 2) return;
  Softmax(a);
  std::vector<float> first(a.data.size() - 1);
  std::vector<float> second(a.data.size() - 2);
  for (size_t i = 0; i < first.size(); ++i) {
    first[i] = a.data[i].p - a.data[i + 1].p;
  }
  for (size_t i = 0; i < second.size(); ++i) {
    second[i] = std::abs(first[i] - first[i + 1]);
  }
  const float sum = std::accumulate(second.begin(), second.end(), 0.0f);
  if (sum > 1e-6f) {
    for (float& v : second) v /= sum;
  } else {
    for (float& v : second) v = 1.0f / second.size();
  }
  float cum_sum = 0.0f;
  size_t last_idx = a.data.size();
  for (size_t i = 0; i < second.size(); ++i) {
    cum_sum += second[i];
    if (cum_sum > z && i >= std::max<size_t>(min_keep, 1)) {
      last_idx = i;
      break;
    }
  }
  a.data.resize(last_idx);
}

void Typical(Array& a, float p, size_t min_keep) {
  if (p >= 1.0f) return;
  Softmax(a);
  float entropy = 0.0f;
  for (const auto& t : a.data) {
    if (t.p > 0.0f) entropy += -t.p * logf(t.p);
  }
  std::vector<float> shifted;
  for (const auto& t : a.data) {
    shifted.push_back(t.p > 0.0f ? fabsf(-logf(t.p) - entropy) : INFINITY);
  }
  std::vector<size_t> indices(a.data.size());
  std::iota(indices.begin(), indices.end(), 0);
  std::stable_sort(indices.begin(), indices.end(),
                   [&](size_t x, size_t y) { return shifted[x] < shifted[y]; });
  float cum_sum = 0.0f;
  size_t last_idx = indices.size();
  for (size_t i = 0; i < indices.size(); ++i) {
    cum_sum += a.data[indices[i]].p;
    if (cum_sum > p && (min_keep == 0 || i >= min_keep - 1)) {
      last_idx = i + 1;
      break;
    }
  }
  std::vector<TokenData> kept;
  for (size_t i = 0; i < last_idx; ++i) kept.push_back(a.data[indices[i]]);
  a.data = kept;
  a.sorted = false;
}

void TopP(Array& a, float p, size_t min_keep) {
  if (p >= 1.0f) return;
  Softmax(a);
  float cum_sum = 0.0f;
  size_t last_idx = a.data.size();
  for (size_t i = 0; i < a.data.size(); ++i) {
    cum_sum += a.data[i].p;
    if (cum_sum >= p && i + 1 >= min_keep) {
      last_idx = i + 1;
      break;
    }
  }
  a.data.resize(last_idx);
}

void MinP(Array& a, float p, size_t min_keep) {
  if (p <= 0.0f || a.data.empty()) return;
  if (!a.sorted) {
    std::vector<TokenData> filtered;
    float max_logit = -FLT_MAX;
    for (const auto& t : a.data) max_logit = std::max(max_logit, t.logit);
    const float min_logit = max_logit + logf(p);
    for (const auto& t : a.data) {
      if (t.logit >= min_logit) filtered.push_back(t);
    }
    if (!filtered.empty() && filtered.size() >= min_keep) {
      a.data = filtered;
      return;
    }
  }
  SortAll(a);
  const float min_logit = a.data[0].logit + logf(p);
  size_t i = 1;
  for (; i < a.data.size(); ++i) {
    if (a.data[i].logit < min_logit && i >= min_keep) break;
  }
  a.data.resize(i);
}

}  // namespace

Result Sample(std::span<const float> logits, const SamplingParams& s,
              const std::vector<int32_t>& accepted, std::mt19937& rng) {
  Array a;
  for (size_t i = 0; i < logits.size(); ++i) {
    a.data.push_back({static_cast<int32_t>(i), logits[i], 0.0f});
  }
  Penalties(a, s, accepted);

  Result result;
  if (s.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < a.data.size(); ++i) {
      if (a.data[i].logit > a.data[best].logit) best = i;
    }
    result.token = a.data[best].id;
    return result;
  }

  const size_t min_keep = static_cast<size_t>(s.min_keep);
  TopK(a, s.top_k);
  TailFree(a, s.tfs_z, min_keep);
  Typical(a, s.typical_p, min_keep);
  TopP(a, s.top_p, min_keep);
  MinP(a, s.min_p, min_keep);
  for (auto& t : a.data) t.logit /= s.temperature;
  Softmax(a);

  std::vector<float> probs;
  for (const auto& t : a.data) probs.push_back(t.p);
  std::discrete_distribution<int> dist(probs.begin(), probs.end());
  result.token = a.data[static_cast<size_t>(dist(rng))].id;
  for (const auto& t : a.data) result.final_probs.push_back({t.id, t.p});
  return result;
}

}  // namespace layerpool::reference
