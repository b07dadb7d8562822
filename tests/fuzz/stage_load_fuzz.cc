// libFuzzer target for the worker's LoadStage handler: any LoadStageRequest
// a coordinator (or anyone past the token) sends is checked, refused with a
// status or loaded within the worker's memory budget, never a crash, a hang
// or an allocation past the budget. The first byte picks the model path:
//   even  the request's own path, held to --model-dir as the handler holds
//         it (a temporary directory with one model in it), then loaded
//         when allowed;
//   odd   the request's path replaced by that model's, so that the layer
//         range, context, sequences, KV type, threads, RoPE overrides and
//         fingerprint reach ServedStage::Load.
// The rest is the serialized request. The model is a 4-layer synth written
// once at start (model/synth); the budget is 64 MiB, as --mem-limit 64MiB.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "layerpool/v1/worker.pb.h"
#include "model/synth/synth.h"
#include "worker/model_access.h"
#include "worker/served_stage.h"

namespace {

using namespace layerpool;

std::string model_dir, model_path;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir_template[] = "/tmp/lp-stage-fuzz-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) std::abort();
  SynthOptions options;
  options.shape = {.n_embd = 64, .n_layer = 4, .n_head = 4, .n_head_kv = 2, .n_ff = 128,
                   .n_vocab = 300, .n_ctx = 256};
  options.file_type = "Q8_0";
  options.threads = 1;
  model_path = std::string(dir) + "/tiny.gguf";
  if (absl::Status s = WriteSynthModel(options, model_path); !s.ok()) {
    std::fprintf(stderr, "stage_load_fuzz: %s\n", std::string(s.message()).c_str());
    std::abort();
  }
  absl::StatusOr<std::string> canonical = CanonicalModelDir(dir);
  if (!canonical.ok()) std::abort();
  model_dir = *canonical;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  v1::LoadStageRequest request;
  if (!request.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  if (data[0] % 2 == 1) {
    request.set_model_path(model_path);
  } else if (!CheckModelAccess(request.model_path(), model_dir, /*local_peer=*/false).ok()) {
    return 0;
  }
  LoadBudget budget;
  budget.bytes = 64ull << 20;
  budget.source = "--mem-limit";
  (void)ServedStage::Load(request, budget);
  return 0;
}
