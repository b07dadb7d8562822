// Writes wire_fuzz's seed inputs into the folder given: valid chunk streams
// for both kinds of stage and valid OpenAI request bodies, each behind the
// first byte that picks its entry point (see wire_fuzz.cc).

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "layerpool/v1/inference.pb.h"
#include "layerpool/v1/worker.pb.h"

namespace {

void Write(const std::string& dir, const std::string& name, char mode, const std::string& body) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.put(mode);
  out << body;
}

std::string Framed(const std::vector<layerpool::v1::ActivationChunk>& chunks) {
  std::string out;
  for (const auto& c : chunks) {
    const std::string bytes = c.SerializeAsString();
    out.push_back(static_cast<char>(bytes.size() & 0xff));
    out.push_back(static_cast<char>(bytes.size() >> 8));
    out += bytes;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: wire_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  using layerpool::v1::ActivationChunk;

  // First stage: a prompt of 3 tokens in two chunks, sampled at its end.
  ActivationChunk a, b;
  a.set_micro_batch_id(1);
  a.set_chunk_count(2);
  for (int i = 0; i < 2; ++i) {
    a.add_seq_ids(7);
    a.add_positions(i);
    a.mutable_token_ids()->add_ids(3 + i);
  }
  b = a;
  b.clear_seq_ids();
  b.clear_positions();
  b.clear_token_ids();
  b.set_chunk_index(1);
  b.add_seq_ids(7);
  b.add_positions(2);
  b.mutable_token_ids()->add_ids(9);
  b.add_one_token_rows(0);
  auto* spec = b.add_samples();
  spec->set_row(0);
  spec->mutable_sampling()->set_temperature(0.7f);
  spec->add_recent_tokens(3);
  spec->set_skip_random(2);
  Write(dir, "chunks-first", 0, Framed({a, b}));

  // A later stage: two rows of f32 hidden states, two sequences.
  ActivationChunk h;
  h.set_micro_batch_id(2);
  h.set_chunk_count(1);
  for (int i = 0; i < 2; ++i) {
    h.add_seq_ids(1 + i);
    h.add_positions(0);
  }
  h.mutable_hidden()->set_element_type(layerpool::v1::ELEMENT_TYPE_F32);
  h.mutable_hidden()->set_hidden_size(8);
  h.mutable_hidden()->mutable_data()->assign(2 * 8 * 4, '\0');
  h.add_embed_seq_ids(2);
  Write(dir, "chunks-later", 1, Framed({h}));

  Write(dir, "chat", 2,
        R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
        R"({"role":"user","content":[{"type":"text","text":"Hi"}]}],"stream":true,)"
        R"("stream_options":{"include_usage":true},"temperature":0.5,"top_k":7,"stop":["\n"],)"
        R"("logprobs":true,"top_logprobs":2,"seed":42,"max_tokens":16})");
  Write(dir, "completion", 3,
        R"({"model":"m","prompt":[1,2,3],"max_tokens":4,"min_p":0.1,"typical_p":0.9,)"
        R"("tfs_z":0.95,"repeat_penalty":1.1,"repeat_last_n":32,"logprobs":3})");
  Write(dir, "embeddings", 4, R"({"input":["a","b"],"encoding_format":"base64"})");
  Write(dir, "template", 5,
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
        "{% set sys = m['content'] | trim %}{% else %}<|{{ m['role'] }}|>{{ m['content'] }}"
        "{% if loop.last and add_generation_prompt %}<|assistant|>{% endif %}{% endif %}"
        "{% endfor %}{{ messages | length }}{{ range(3) | join(',') }}{{ sys | default('') }}");

  layerpool::v1::GenerateRequest generate;
  generate.set_model("m");
  generate.set_n_predict(5);
  for (int t : {1, 7, 7, 30}) generate.mutable_prompt_tokens()->add_ids(t);
  layerpool::v1::SamplingParams* s = generate.mutable_sampling();
  s->set_temperature(0.8f);
  s->set_top_k(12);
  s->set_top_p(0.9f);
  s->set_min_p(0.05f);
  s->set_repeat_penalty(1.1f);
  s->set_repeat_last_n(16);
  s->set_seed(42);
  s->set_n_probs(3);
  Write(dir, "generate", 6, generate.SerializeAsString());
  // The largest window a request may ask for: the sampler once reserved
  // 4 GiB for it.
  s->set_repeat_last_n(1 << 30);
  Write(dir, "generate-huge-window", 6, generate.SerializeAsString());
  return 0;
}
