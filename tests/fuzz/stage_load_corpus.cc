// Writes the seed corpus of stage_load_fuzz: LoadStage requests a
// coordinator sends (the first byte picks the model path, see
// stage_load_fuzz.cc). Usage: stage_load_corpus DIR
#include <fstream>
#include <string>

#include "layerpool/v1/worker.pb.h"

namespace {

using layerpool::v1::LoadStageRequest;

void Write(const std::string& dir, const std::string& name, char mode,
           const LoadStageRequest& request) {
  std::ofstream(dir + "/" + name, std::ios::binary) << mode << request.SerializeAsString();
}

LoadStageRequest Stage(uint32_t first, uint32_t last) {
  LoadStageRequest r;
  r.set_model_path("tiny.gguf");
  r.mutable_layers()->set_first(first);
  r.mutable_layers()->set_last(last);
  r.set_stage_index(first == 0 ? 0 : 1);
  r.set_kv_type(layerpool::v1::KV_CACHE_TYPE_F16);
  r.set_n_ctx(64);
  r.set_max_sequences(2);
  r.set_n_threads(1);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  Write(dir, "first-half", 1, Stage(0, 1));
  Write(dir, "second-half", 1, Stage(2, 3));
  LoadStageRequest whole = Stage(0, 3);
  whole.set_kv_type(layerpool::v1::KV_CACHE_TYPE_Q8_0);
  whole.set_rope_freq_base(500000);
  whole.set_rope_freq_scale(0.5);
  whole.set_ntk_alpha(2);
  Write(dir, "whole-q8-rope", 1, whole);
  LoadStageRequest hashed = Stage(0, 3);
  hashed.set_expected_content_hash("sha256:" + std::string(64, '0'));
  Write(dir, "wrong-hash", 1, hashed);
  Write(dir, "own-path", 0, Stage(0, 1));
  LoadStageRequest outside = Stage(0, 1);
  outside.set_model_path("../../etc/passwd");
  Write(dir, "outside", 0, outside);
  return 0;
}
