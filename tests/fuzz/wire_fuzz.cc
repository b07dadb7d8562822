// libFuzzer target for what reaches the processes over the network: any
// bytes must be refused with a status, never crash, hang or read outside
// the input. The first byte picks the entry point:
//   0, 1  a stream of ActivationChunks (length-prefixed protobufs) into a
//         worker's ChunkAssembler, as the first stage (token ids) or a later
//         one (hidden states); each completed micro-batch is encoded again
//         for the next stage, as a worker does;
//   2     an OpenAI chat request body, parsed and, when valid, its messages
//         rendered through a ChatML template;
//   3     an OpenAI completion request body;
//   4     an OpenAI embeddings request body;
//   5     a chat template's source (a GGUF's tokenizer.chat_template is
//         untrusted too), rendered over a fixed conversation: the
//         interpreter's step, output and depth limits must hold;
//   6     a gRPC GenerateRequest: its sampling parameters converted and
//         validated as the coordinator does, then, when valid, a sampler
//         built from them (as the last stage builds one from a chunk's
//         SampleSpec) accepts its prompt tokens and samples a few tokens
//         from fixed logits, skipping random draws as a replay does.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coordinator/http/openai.h"
#include "layerpool/v1/inference.pb.h"
#include "model/chat/chat_template.h"
#include "model/sampling/sampler.h"
#include "proto/convert.h"
#include "worker/activation_chunks.h"

namespace {

using namespace layerpool;

void FeedChunks(const uint8_t* data, size_t size, bool first_stage) {
  ChunkLimits limits;
  limits.first_stage = first_stage;
  limits.last_stage = !first_stage;
  limits.n_embd = 8;
  limits.n_vocab = 32;
  limits.max_rows = 64;
  limits.max_samples = 4;
  ChunkAssembler assembler(limits);
  size_t at = 0;
  while (at + 2 <= size) {
    const size_t length = static_cast<size_t>(data[at]) | (static_cast<size_t>(data[at + 1]) << 8);
    at += 2;
    const size_t take = length < size - at ? length : size - at;
    v1::ActivationChunk chunk;
    if (!chunk.ParseFromArray(data + at, static_cast<int>(take))) return;
    at += take;
    absl::StatusOr<bool> complete = assembler.Add(chunk);
    if (!complete.ok()) return;  // the stream ends, as the worker ends it
    if (!*complete) continue;
    const AssembledBatch batch = assembler.Take();
    const std::vector<float> hidden(batch.rows() * static_cast<size_t>(limits.n_embd), 0.5f);
    absl::StatusOr<std::vector<v1::ActivationChunk>> out =
        EncodeChunks(batch, hidden, limits.n_embd, v1::ELEMENT_TYPE_F16, 4096);
    if (!out.ok()) return;
  }
}

void ParseChat(const std::string& body) {
  absl::StatusOr<http::CompletionRequest> r = http::ParseCompletionRequest(body, /*chat=*/true);
  if (!r.ok()) return;
  static const absl::StatusOr<ChatTemplate> chatml = ChatTemplate::FromSource(
      "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
      "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
      "<s>", "</s>");
  if (chatml.ok()) (void)chatml->Apply(r->messages, /*add_generation_prompt=*/true);
}

void RenderTemplate(const std::string& source) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::FromSource(source, "<s>", "</s>");
  if (!t.ok()) return;
  static const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(
      R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},)"
      R"({"role":"assistant","content":"Hello."},{"role":"user","content":"Bye"}])");
  (void)t->Apply(messages, /*add_generation_prompt=*/true);
}

void SampleAsRequested(const uint8_t* data, size_t size) {
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  absl::StatusOr<SamplingParams> params = SamplingFromProto(request.sampling());
  if (!params.ok() || !ValidateSamplingParams(*params).ok()) return;
  constexpr int kVocab = 32;
  Sampler sampler(*params);
  int accepted = 0;
  for (int32_t t : request.prompt_tokens().ids()) {
    if (t < 0 || t >= kVocab || ++accepted > 256) break;  // Generate refuses the others
    sampler.Accept(t);
  }
  sampler.SkipRandom(request.n_predict() & 0xff);
  std::vector<float> logits(kVocab);
  for (int i = 0; i < kVocab; ++i) logits[i] = static_cast<float>((i * 7) % 11) - 5.0f;
  for (int step = 0; step < 4; ++step) {
    const int32_t token = sampler.Sample(logits);
    if (token < 0 || token >= kVocab) __builtin_trap();  // a token outside the vocabulary
    sampler.Accept(token);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 7) {
    case 0: FeedChunks(data + 1, size - 1, true); break;
    case 1: FeedChunks(data + 1, size - 1, false); break;
    case 2: ParseChat(rest); break;
    case 3: (void)layerpool::http::ParseCompletionRequest(rest, /*chat=*/false); break;
    case 4: (void)layerpool::http::ParseEmbeddingRequest(rest); break;
    case 5: RenderTemplate(rest); break;
    case 6: SampleAsRequested(data + 1, size - 1); break;
  }
  return 0;
}
