#include "model/sampling/candidates.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>

namespace layerpool::sampling_internal {
namespace {

void SortIfNeeded(CandidateSet& set) {
  if (!set.sorted) {
    std::sort(set.begin(), set.end(), Ranks);
    set.sorted = true;
  }
}

}  // namespace

bool Softmax(CandidateSet& set) {
  SortIfNeeded(set);
  const float max_l = set.data[0].logit;
  if (!std::isfinite(max_l)) {
    // exp(inf - inf) would make every p NaN (llama.cpp then has undefined
    // behaviour in std::discrete_distribution). Put all the mass on the top
    // candidate, the limit of the softmax for a +inf logit.
    for (Candidate& c : set) c.p = 0.0f;
    set.data[0].p = 1.0f;
    return false;
  }
  float sum = 0.0f;
  for (Candidate& c : set) {
    c.p = std::exp(c.logit - max_l);
    sum += c.p;
  }
  for (Candidate& c : set) c.p /= sum;
  return true;
}

void TopK(CandidateSet& set, int32_t k, Scratch& scratch) {
  // k >= size changes nothing. llama.cpp sorts there anyway; the order only
  // matters again when a later stage sorts, which it then does itself.
  if (k <= 0 || static_cast<size_t>(k) >= set.size) return;
  const size_t keep = static_cast<size_t>(k);
  if (set.sorted) {
    set.size = keep;
    return;
  }

  // One pass with a buffer of up to 2k contenders: a candidate enters only
  // if it ranks before the current k-th best, so on a real logit row nearly
  // every candidate costs one float comparison. When the buffer fills,
  // nth_element cuts it back to the k best and raises the bar. Each cut
  // removes >= k entries, so the pass stays O(size).
  const size_t capacity = std::max<size_t>(2 * keep, 256);
  std::vector<Candidate>& best = scratch.candidates;
  best.clear();
  best.reserve(capacity);
  auto cut = [&best, keep] {
    std::nth_element(best.begin(), best.begin() + (keep - 1), best.end(),
                     Ranks);
    best.resize(keep);
  };
  size_t i = 0;
  for (; i < set.size && best.size() < capacity; ++i) {
    best.push_back(set.data[i]);
  }
  if (i < set.size) {
    cut();
    Candidate bar = best[keep - 1];
    for (; i < set.size; ++i) {
      if (!Ranks(set.data[i], bar)) continue;
      best.push_back(set.data[i]);
      if (best.size() == capacity) {
        cut();
        bar = best[keep - 1];
      }
    }
  }
  std::partial_sort(best.begin(), best.begin() + keep, best.end(), Ranks);
  std::copy(best.begin(), best.begin() + keep, set.data);
  set.size = keep;
  set.sorted = true;
}

void TailFree(CandidateSet& set, float z, size_t min_keep, Scratch& scratch) {
  if (z >= 1.0f || set.size <= 2) return;
  Softmax(set);

  // Second differences of the sorted probabilities, in place: d2[i] =
  // (p[i] - p[i+1]) - (p[i+1] - p[i+2]), the same float steps as llama.cpp.
  const size_t n2 = set.size - 2;
  std::vector<float>& d2 = scratch.floats;
  d2.resize(n2);
  for (size_t i = 0; i < n2; ++i) {
    const float first_i = set.data[i].p - set.data[i + 1].p;
    const float first_next = set.data[i + 1].p - set.data[i + 2].p;
    d2[i] = std::abs(first_i - first_next);
  }
  const float total = std::accumulate(d2.begin(), d2.end(), 0.0f);
  if (total > 1e-6f) {
    for (float& v : d2) v /= total;
  } else {
    for (float& v : d2) v = 1.0f / static_cast<float>(n2);
  }

  // llama.cpp passes min_keep = 0 from common, and a cut at i = 0 then
  // empties the set; keeping at least one candidate is what the old
  // llama_sample_tail_free (min_keep = max(1, min_keep)) did.
  const size_t floor = std::max<size_t>(min_keep, 1);
  float cum = 0.0f;
  size_t last = set.size;
  for (size_t i = 0; i < n2; ++i) {
    cum += d2[i];
    if (cum > z && i >= floor) {
      last = i;
      break;
    }
  }
  set.size = last;
}

void Typical(CandidateSet& set, float p, size_t min_keep, Scratch& scratch) {
  if (p >= 1.0f) return;
  Softmax(set);

  // A probability that underflowed to 0 contributes 0 to the entropy (its
  // limit) and is the least typical candidate; llama.cpp computes
  // 0 * log(0) = NaN here and then sorts NaN scores.
  float entropy = 0.0f;
  for (const Candidate& c : set) {
    if (c.p > 0.0f) entropy += -c.p * std::log(c.p);
  }
  std::vector<float>& score = scratch.floats;
  score.resize(set.size);
  for (size_t i = 0; i < set.size; ++i) {
    const float q = set.data[i].p;
    score[i] = q > 0.0f ? std::abs(-std::log(q) - entropy)
                        : std::numeric_limits<float>::infinity();
  }
  std::vector<uint32_t>& order = scratch.order;
  order.resize(set.size);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&score](uint32_t a, uint32_t b) {
    return score[a] < score[b] || (score[a] == score[b] && a < b);
  });

  // i + 1 >= min_keep always keeps at least one. llama.cpp writes it as
  // i >= min_keep - 1, which wraps for min_keep 0 and then never cuts
  // (fixed upstream later).
  float cum = 0.0f;
  size_t last = set.size;
  for (size_t i = 0; i < order.size(); ++i) {
    cum += set.data[order[i]].p;
    if (cum > p && i + 1 >= min_keep) {
      last = i + 1;
      break;
    }
  }

  std::vector<Candidate>& kept = scratch.candidates;
  kept.resize(last);
  for (size_t i = 0; i < last; ++i) kept[i] = set.data[order[i]];
  std::copy(kept.begin(), kept.end(), set.data);
  set.size = last;
  set.sorted = false;
}

void TopP(CandidateSet& set, float p, size_t min_keep) {
  if (p >= 1.0f) return;
  Softmax(set);
  float cum = 0.0f;
  size_t last = set.size;
  for (size_t i = 0; i < set.size; ++i) {
    cum += set.data[i].p;
    if (cum >= p && i + 1 >= min_keep) {
      last = i + 1;
      break;
    }
  }
  set.size = last;
}

void MinP(CandidateSet& set, float p, size_t min_keep) {
  if (p <= 0.0f || set.size == 0) return;

  if (!set.sorted) {
    // p_i >= p * p_max  <=>  logit_i >= max_logit + log(p): no softmax and
    // no sort needed. Filtering keeps the current order.
    float max_logit = -FLT_MAX;
    for (const Candidate& c : set) max_logit = std::max(max_logit, c.logit);
    const float min_logit = max_logit + std::log(p);
    size_t count = 0;
    for (const Candidate& c : set) count += c.logit >= min_logit;
    // count == 0 happens only when every logit is -inf; llama.cpp then
    // empties the set (fixed upstream later), we fall through and keep one.
    if (count > 0 && count >= min_keep) {
      size_t out = 0;
      for (size_t i = 0; i < set.size; ++i) {
        if (set.data[i].logit >= min_logit) set.data[out++] = set.data[i];
      }
      set.size = out;
      return;
    }
    SortIfNeeded(set);
  }

  const float min_logit = set.data[0].logit + std::log(p);
  size_t i = 1;  // the top candidate always passes
  for (; i < set.size; ++i) {
    if (set.data[i].logit < min_logit && i >= min_keep) break;
  }
  set.size = i;
}

void Temperature(CandidateSet& set, float temp) {
  for (Candidate& c : set) c.logit /= temp;
}

size_t DrawIndex(const CandidateSet& set, CountingRng& rng,
                 std::vector<double>& cumulative) {
  // libstdc++'s discrete_distribution, step by step: weights as double,
  // summed left to right from 0.0, each divided by the sum, partial sums
  // with the last forced to 1.0, then lower_bound of one
  // generate_canonical<double, 53> draw (two 32-bit outputs of mt19937).
  if (set.size < 2) return 0;
  double sum = 0.0;
  for (const Candidate& c : set) sum += static_cast<double>(c.p);
  cumulative.resize(set.size);
  double running = 0.0;
  for (size_t i = 0; i < set.size; ++i) {
    const double w = static_cast<double>(set.data[i].p) / sum;
    running = i == 0 ? w : running + w;
    cumulative[i] = running;
  }
  cumulative.back() = 1.0;
  const double u =
      std::generate_canonical<double, std::numeric_limits<double>::digits>(rng);
  return static_cast<size_t>(
      std::lower_bound(cumulative.begin(), cumulative.end(), u) -
      cumulative.begin());
}

}  // namespace layerpool::sampling_internal
