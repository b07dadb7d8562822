// /v1/embeddings over the Cluster: each input runs through every stage as an
// embedding request (the last stage pools and normalises, worker/pooling.h),
// at most 8 at once so that a long list waits for room rather than filling
// the admission queue.
#ifndef LAYERPOOL_COORDINATOR_HTTP_EMBEDDINGS_H_
#define LAYERPOOL_COORDINATOR_HTTP_EMBEDDINGS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "coordinator/cluster.h"
#include "coordinator/http/openai.h"

namespace layerpool::http {

// OpenAI's response body, in input order; `prompt_tokens` counts the tokens
// of every input. Pooling is the GGUF's pooling_type when it says cls or
// last, otherwise mean. Errors: InvalidArgument naming the input or
// `dimensions`, OutOfRange for an input over the context, and those of
// Cluster::Generate (the requests still running are cancelled).
[[nodiscard]] absl::StatusOr<Json> RunEmbeddings(Cluster& cluster,
                                                 const EmbeddingRequest& request,
                                                 int64_t* prompt_tokens);

}  // namespace layerpool::http

#endif  // LAYERPOOL_COORDINATOR_HTTP_EMBEDDINGS_H_
