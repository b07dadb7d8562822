#include "cli/cluster_flags.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/planner.h"
#include "proto/peer_token.h"
#include "proto/tls.h"
#include "transport/hidden_wire.h"
#include "worker/kv_cache.h"

namespace layerpool::cli {

void ClusterFlags::Register(FlagSet& flags) {
  flags.String("split", "auto|N,N,...", &split,
               "layers per stage, in worker order (e.g. 3,3,6), or auto: each stage's\n"
               "weight bytes read per token (the output head included) in proportion to\n"
               "its worker's free memory");
  flags.String("tensor-split", "R,R,...", &tensor_split,
               "llama.cpp-style ratios per worker (e.g. 0.25,0.75) instead of --split");
  flags.String("activation-type", "f32|f16|bf16|q8_0", &activation_type,
               "element type of the hidden states sent between stages");
  flags.String("stage-links", "auto|grpc", &stage_links,
               "how stages pass hidden states: auto takes a Unix socket between two stages on "
               "one host and gRPC between hosts; grpc always takes gRPC");
  flags.Int("max-sequences", "N", &max_sequences,
            "sequences in flight at once; each stage reserves KV cache for N contexts");
  flags.String("token-file", "FILE", &token_file,
               "the workers' shared secret (first line, 16+ characters): every call to a "
               "worker carries it; give the workers the same file (run --local-workers makes "
               "its own)");
  flags.String("tls-dir", "DIR", &tls_dir,
               "mutual TLS with the workers: DIR holds ca.pem, cert.pem and key.pem "
               "(deploy/make-certs.sh); give the workers the same CA");
}

absl::StatusOr<v1::ElementType> ParseActivationType(const std::string& name) {
  for (v1::ElementType type : {v1::ELEMENT_TYPE_F32, v1::ELEMENT_TYPE_F16, v1::ELEMENT_TYPE_BF16,
                               v1::ELEMENT_TYPE_Q8_0}) {
    if (name == WireTypeName(type)) return type;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--activation-type: '", name, "' is not f32, f16, bf16 or q8_0"));
}

absl::Status ClusterFlags::Apply(const EngineFlags& engine, ClusterOptions* o) const {
  if (!tensor_split.empty() && split != "auto") {
    return absl::InvalidArgumentError("give --split or --tensor-split, not both");
  }
  if (split != "auto") {
    LP_ASSIGN_OR_RETURN(o->layer_counts, ParseLayerCounts(split), "--split");
  }
  if (!tensor_split.empty()) {
    LP_ASSIGN_OR_RETURN(o->ratios, ParseRatios(tensor_split), "--tensor-split");
  }
  LP_ASSIGN_OR_RETURN(o->activation_type, ParseActivationType(activation_type));
  if (stage_links == "auto") {
    o->stage_links = v1::TRANSPORT_AUTO;
  } else if (stage_links == "grpc") {
    o->stage_links = v1::TRANSPORT_GRPC;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--stage-links: '", stage_links, "' is not auto or grpc"));
  }
  if (max_sequences < 1 || max_sequences > 4096) {
    return absl::InvalidArgumentError("--max-sequences must be in [1, 4096]");
  }
  if (!token_file.empty()) {
    LP_ASSIGN_OR_RETURN(o->token, ReadPeerToken(token_file), "--token-file");
  }
  if (!tls_dir.empty()) {
    LP_ASSIGN_OR_RETURN(o->tls, ReadTlsDir(tls_dir), "--tls-dir");
  }
  o->model_path = engine.model;
  o->max_sequences = static_cast<int>(max_sequences);
  o->n_ctx = engine.ctx;
  o->batch = engine.batch;
  o->rope_freq_base = engine.rope_freq_base;
  o->rope_freq_scale = engine.rope_freq_scale;
  o->ntk_alpha = engine.ntk_alpha;
  o->threads = static_cast<int>(engine.threads);
  LP_ASSIGN_OR_RETURN(o->kv_type, ParseKvCacheType(engine.kv_type), "--kv-type");
  return absl::OkStatus();
}

}  // namespace layerpool::cli
