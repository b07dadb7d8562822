// Writes llama.cpp's one-token decode logits as JSON, for
// decode_golden_test: the prompt (tokenized with BOS, no special parsing)
// is decoded as one batch, then n_predict greedy tokens are decoded one per
// llama_decode call, as llama-simple and llama-cli generate. For every step:
// the argmax, the FNV-1a 64-bit hash of the logits row's bytes and its eight
// largest logits (exact as %.9g).
//
// Our code, built against a llama.cpp build someone made (make_golden.sh
// compiles it with that build's headers and libraries); it uses only the
// public llama.h API.
//
//   llama_decode_logits MODEL.gguf N_PREDICT PROMPT
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

#include "llama.h"

namespace {

uint64_t Fnv1a(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void PrintStep(const float* logits, int n_vocab, bool first) {
  std::vector<int> ids(n_vocab);
  std::iota(ids.begin(), ids.end(), 0);
  // Largest first, the lower id first among equals.
  std::partial_sort(ids.begin(), ids.begin() + 8, ids.end(), [&](int a, int b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  std::printf("%s\n    {\"hash\": \"%016llx\", \"top\": [", first ? "" : ",",
              static_cast<unsigned long long>(Fnv1a(logits, sizeof(float) * n_vocab)));
  for (int i = 0; i < 8; ++i) {
    std::printf("%s[%d, %.9g]", i ? ", " : "", ids[i], logits[ids[i]]);
  }
  std::printf("]}");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: llama_decode_logits MODEL.gguf N_PREDICT PROMPT\n");
    return 2;
  }
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (model == nullptr) return 1;
  const llama_vocab* vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);
  const int n_predict = std::atoi(argv[2]);
  std::vector<llama_token> tokens(4096);
  const int n_prompt = llama_tokenize(vocab, argv[3], static_cast<int>(std::strlen(argv[3])),
                                      tokens.data(), static_cast<int>(tokens.size()),
                                      /*add_special=*/true, /*parse_special=*/false);
  if (n_prompt <= 0) return 1;
  tokens.resize(n_prompt);

  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = 1;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (ctx == nullptr) return 1;

  std::printf("{\"prompt_tokens\": [");
  for (int i = 0; i < n_prompt; ++i) std::printf("%s%d", i ? ", " : "", tokens[i]);
  std::printf("],\n  \"steps\": [");
  std::vector<llama_token> generated;
  llama_batch batch = llama_batch_get_one(tokens.data(), n_prompt);
  for (int step = 0; step < n_predict; ++step) {
    if (llama_decode(ctx, batch) != 0) return 1;
    const float* logits = llama_get_logits_ith(ctx, -1);
    PrintStep(logits, n_vocab, step == 0);
    const llama_token next = static_cast<llama_token>(
        std::max_element(logits, logits + n_vocab) - logits);  // lowest id on ties
    generated.push_back(next);
    batch = llama_batch_get_one(&generated.back(), 1);
  }
  std::printf("],\n  \"generated\": [");
  for (size_t i = 0; i < generated.size(); ++i) {
    std::printf("%s%d", i ? ", " : "", generated[i]);
  }
  std::printf("]}\n");
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
