// Internal to model/sampling: the candidate array and the filter stages of
// the sampling chain, one function per llama.cpp sampler. Sampler (in
// sampler.h) is the only intended user; the functions are exposed here so
// each stage can be tested on its own.
//
// Each stage keeps llama.cpp's arithmetic (float, same operation order) so
// cut-off decisions agree bit for bit; the differences are listed in
// sampler.cc. Candidates are ranked by Ranks(): higher logit first, lower
// id first among equal logits. NaN logits must have been replaced before a
// stage runs (Sampler maps them to -infinity), so Ranks() is a strict total
// order and every sort or selection gives one well-defined result.
#ifndef LAYERPOOL_MODEL_SAMPLING_CANDIDATES_H_
#define LAYERPOOL_MODEL_SAMPLING_CANDIDATES_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace layerpool::sampling_internal {

// llama_token_data.
struct Candidate {
  int32_t id;
  float logit;
  float p;  // valid only right after Softmax()
};

inline bool Ranks(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// llama_token_data_array: the live prefix [data, data + size) of a buffer.
// `sorted` means the prefix is in Ranks() order.
struct CandidateSet {
  Candidate* data;
  size_t size;
  bool sorted;

  Candidate* begin() const { return data; }
  Candidate* end() const { return data + size; }
};

// Buffers the stages reuse between calls.
struct Scratch {
  std::vector<float> floats;
  std::vector<uint32_t> order;
  std::vector<Candidate> candidates;
  std::vector<double> cumulative;
};

// Sorts by Ranks() unless already sorted, then sets p = softmax(logit) in
// float, summing in rank order as llama.cpp does. Returns false when the
// logits cannot be normalised (the top logit is +-infinity); p is then 1
// for the top candidate and 0 for the rest. Requires size > 0.
bool Softmax(CandidateSet& set);

// Keeps the k best, in rank order (k <= 0: no-op). One O(size) selection
// pass plus a sort of the k winners; never a sort of the whole vocabulary.
void TopK(CandidateSet& set, int32_t k, Scratch& scratch);

// Tail-free sampling (z >= 1 or size <= 2: no-op).
void TailFree(CandidateSet& set, float z, size_t min_keep, Scratch& scratch);

// Locally typical sampling (p >= 1: no-op). Leaves the set in typicality
// order (not sorted), as llama.cpp does.
void Typical(CandidateSet& set, float p, size_t min_keep, Scratch& scratch);

// Nucleus sampling (p >= 1: no-op).
void TopP(CandidateSet& set, float p, size_t min_keep);

// Keeps candidates with probability >= p * max probability (p <= 0:
// no-op). Does not sort an unsorted set unless min_keep forces it.
void MinP(CandidateSet& set, float p, size_t min_keep);

// Divides every logit by temp (> 0). Keeps `sorted`, as llama.cpp does.
void Temperature(CandidateSet& set, float temp);

// A sampler's random stream: std::mt19937, counting the outputs it gave,
// so that a sequence replayed on a new last stage (coordinator/cluster.h)
// can resume the stream exactly where the lost one stood.
class CountingRng {
 public:
  using result_type = std::mt19937::result_type;
  static constexpr result_type min() { return std::mt19937::min(); }
  static constexpr result_type max() { return std::mt19937::max(); }

  explicit CountingRng(uint32_t seed = std::mt19937::default_seed) : engine_(seed) {}
  result_type operator()() {
    ++used_;
    return engine_();
  }
  void discard(uint64_t n) {
    engine_.discard(n);
    used_ += n;
  }
  uint64_t used() const { return used_; }
  const std::mt19937& engine() const { return engine_; }

 private:
  std::mt19937 engine_;
  uint64_t used_ = 0;
};

// Index in [0, size) drawn with the probabilities p, exactly as
// std::discrete_distribution<int>(p...)(rng) does in libstdc++ (same RNG
// consumption, same result), without its per-call allocation. Fewer than
// two candidates: returns 0 and draws nothing, as the std one does.
size_t DrawIndex(const CandidateSet& set, CountingRng& rng,
                 std::vector<double>& cumulative);

}  // namespace layerpool::sampling_internal

#endif  // LAYERPOOL_MODEL_SAMPLING_CANDIDATES_H_
