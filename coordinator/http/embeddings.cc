#include "coordinator/http/embeddings.h"

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"

namespace layerpool::http {

absl::StatusOr<Json> RunEmbeddings(Cluster& cluster, const EmbeddingRequest& request,
                                   int64_t* prompt_tokens) {
  const int64_t n_embd = cluster.hparams().n_embd;
  if (request.dimensions != 0 && request.dimensions != n_embd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "dimensions: this model's embeddings have %d dimensions, and shortening them is "
        "not supported", n_embd));
  }
  const int64_t model_pooling = cluster.hparams().pooling_type;
  const v1::PoolingType pooling = model_pooling == 2   ? v1::POOLING_TYPE_CLS
                                  : model_pooling == 3 ? v1::POOLING_TYPE_LAST
                                                       : v1::POOLING_TYPE_MEAN;
  std::vector<GenerateRequest> jobs;
  *prompt_tokens = 0;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    GenerateRequest g;
    g.embed = pooling;
    const EmbeddingRequest::Input& input = request.inputs[i];
    g.prompt = input.tokens.empty() ? cluster.tokenizer().Encode(input.text, true) : input.tokens;
    const std::string field =
        request.inputs.size() == 1 ? "input" : absl::StrFormat("input[%d]", i);
    if (g.prompt.empty()) {
      return absl::InvalidArgumentError(field + ": no tokens");
    }
    if (static_cast<int64_t>(g.prompt.size()) >= cluster.n_ctx()) {
      return absl::OutOfRangeError(absl::StrFormat(
          "%s: %d tokens; at most %d fit the context of %d", field, g.prompt.size(),
          cluster.n_ctx() - 1, cluster.n_ctx()));
    }
    *prompt_tokens += static_cast<int64_t>(g.prompt.size());
    jobs.push_back(std::move(g));
  }
  constexpr size_t kWindow = 8;
  std::vector<std::vector<float>> vectors(jobs.size());
  std::deque<std::pair<size_t, std::unique_ptr<Cluster::Stream>>> running;
  auto finish_oldest = [&]() -> absl::Status {
    auto [index, stream] = std::move(running.front());
    running.pop_front();
    GenerateEvent e;
    while (stream->Next(&e) && !e.done) {
      if (!e.embedding.empty()) vectors[index] = std::move(e.embedding);
    }
    if (e.reason == FinishReason::kFailed) return e.status;
    if (vectors[index].size() != static_cast<size_t>(n_embd)) {
      return absl::InternalError("the last stage returned no embedding");
    }
    return absl::OkStatus();
  };
  absl::Status status;
  for (size_t i = 0; i < jobs.size() && status.ok(); ++i) {
    if (running.size() == kWindow) status = finish_oldest();
    if (!status.ok()) break;
    absl::StatusOr<std::unique_ptr<Cluster::Stream>> s = cluster.Generate(std::move(jobs[i]));
    if (!s.ok()) {
      status = s.status();
      break;
    }
    running.emplace_back(i, std::move(*s));
  }
  while (status.ok() && !running.empty()) status = finish_oldest();
  running.clear();  // cancels what is left after an error
  if (!status.ok()) return status;
  Json data = Json::array();
  for (size_t i = 0; i < vectors.size(); ++i) {
    Json item = Json::object();
    item["object"] = "embedding";
    item["index"] = i;
    item["embedding"] = request.base64 ? Json(EmbeddingBase64(vectors[i])) : Json(vectors[i]);
    data.push_back(std::move(item));
  }
  Json body = Json::object();
  body["object"] = "list";
  body["data"] = std::move(data);
  body["model"] = cluster.model_id();
  Json usage = Json::object();
  usage["prompt_tokens"] = *prompt_tokens;
  usage["total_tokens"] = *prompt_tokens;
  body["usage"] = std::move(usage);
  return body;
}

}  // namespace layerpool::http
