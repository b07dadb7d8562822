// Tokenizer construction, Encode and the accessors. Encode follows
// llama_vocab::impl::tokenize: first the text is cut into fragments around
// special-token text (tokenizer_st_partition), then each text fragment goes
// through the family's algorithm.
#include "model/tokenizer/tokenizer.h"

#include <utility>

#include "model/tokenizer/algorithms.h"
#include "model/tokenizer/vocab.h"

namespace layerpool {
namespace {

using tokenizer::Vocab;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // ▁ (U+2581)

// A piece of the input: either text [offset, offset + size) or one token.
struct Fragment {
  int32_t token = kNoToken;  // kNoToken for text
  size_t offset = 0;
  size_t size = 0;
};

bool IsCSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}

// Splits one text fragment at every occurrence of `token`'s text, dropping
// whitespace next to it where the token strips (lstrip / rstrip).
void SplitAtToken(std::string_view text, const Fragment& fragment,
                  int32_t token, const tokenizer::TokenData& data,
                  std::vector<Fragment>* out) {
  size_t pos = fragment.offset;
  const size_t end = fragment.offset + fragment.size;
  while (true) {
    const size_t match = text.substr(0, end).find(data.text, pos);
    if (match == std::string_view::npos) {
      if (pos < end) out->push_back(Fragment{kNoToken, pos, end - pos});
      return;
    }
    size_t left_end = match;
    if (data.attr & tokenizer::kAttrLstrip) {
      while (left_end > pos && IsCSpace(text[left_end - 1])) --left_end;
    }
    if (left_end > pos) out->push_back(Fragment{kNoToken, pos, left_end - pos});
    out->push_back(Fragment{token, 0, 0});
    pos = match + data.text.size();
    if (data.attr & tokenizer::kAttrRstrip) {
      while (pos < end && IsCSpace(text[pos])) ++pos;
    }
    if (pos >= end) return;
  }
}

std::vector<Fragment> Partition(const Vocab& vocab, std::string_view text,
                                bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back(Fragment{kNoToken, 0, text.size()});
  std::vector<Fragment> next;
  for (int32_t id : vocab.special_tokens) {
    const tokenizer::TokenData& data = vocab.tokens[id];
    // Control and unknown tokens are text unless parse_special; user-defined
    // tokens are always cut out (as Hugging Face's added tokens are).
    if (!parse_special &&
        (data.attr & (tokenizer::kAttrControl | tokenizer::kAttrUnknown))) {
      continue;
    }
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token != kNoToken) {
        next.push_back(f);
      } else {
        SplitAtToken(text, f, id, data, &next);
      }
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<const tokenizer::Vocab> vocab)
    : vocab_(std::move(vocab)) {}

Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSpec(
    const VocabSpec& spec) {
  absl::StatusOr<std::unique_ptr<Vocab>> vocab = tokenizer::BuildVocab(spec);
  if (!vocab.ok()) return vocab.status();
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(vocab).value()));
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Vocab& v = *vocab_;
  std::vector<int32_t> out;
  const std::vector<Fragment> fragments = Partition(v, text, parse_special);
  switch (v.type) {
    case tokenizer::VocabType::kSpm: {
      if (add_special && v.add_bos && v.bos != kNoToken) out.push_back(v.bos);
      bool after_special = true;  // the text's start counts as one
      std::string escaped;          // the fragment with spaces as ▁
      for (const Fragment& f : fragments) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
          after_special = true;
          continue;
        }
        escaped.clear();
        if (v.add_space_prefix && after_special) escaped += kSpaceSymbol;
        for (char c : text.substr(f.offset, f.size)) {
          if (c == ' ') {
            escaped += kSpaceSymbol;
          } else {
            escaped += c;
          }
        }
        tokenizer::SpmTokenize(v, escaped, &out);
        after_special = false;
      }
      if (add_special && v.add_eos && v.eos != kNoToken) out.push_back(v.eos);
      break;
    }
    case tokenizer::VocabType::kBpe: {
      if (add_special && v.add_bos && v.bos != kNoToken) out.push_back(v.bos);
      for (const Fragment& f : fragments) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else {
          tokenizer::BpeTokenize(v, text.substr(f.offset, f.size), &out);
        }
      }
      if (add_special && v.add_eos && v.eos != kNoToken) out.push_back(v.eos);
      break;
    }
    case tokenizer::VocabType::kWpm: {
      // BERT's [CLS] ... [SEP], whatever add_bos says.
      const int32_t cls = v.cls != kNoToken ? v.cls : v.bos;
      if (add_special && cls != kNoToken) out.push_back(cls);
      for (const Fragment& f : fragments) {
        if (f.token != kNoToken) {
          out.push_back(f.token);
        } else {
          tokenizer::WpmTokenize(v, text.substr(f.offset, f.size), &out);
        }
      }
      if (add_special && v.sep != kNoToken) out.push_back(v.sep);
      break;
    }
  }
  return out;
}

int32_t Tokenizer::n_vocab() const { return vocab_->n_tokens(); }
std::string_view Tokenizer::model_name() const { return vocab_->model_name; }
std::string_view Tokenizer::pre_name() const { return vocab_->pre_name; }
int32_t Tokenizer::bos_id() const { return vocab_->bos; }
int32_t Tokenizer::eos_id() const { return vocab_->eos; }
int32_t Tokenizer::eot_id() const { return vocab_->eot; }
int32_t Tokenizer::unk_id() const { return vocab_->unk; }
int32_t Tokenizer::sep_id() const { return vocab_->sep; }
int32_t Tokenizer::pad_id() const { return vocab_->pad; }
int32_t Tokenizer::mask_id() const { return vocab_->mask; }
int32_t Tokenizer::nl_id() const { return vocab_->nl; }
bool Tokenizer::add_bos() const { return vocab_->add_bos; }
bool Tokenizer::add_eos() const { return vocab_->add_eos; }
bool Tokenizer::add_space_prefix() const { return vocab_->add_space_prefix; }

std::string_view Tokenizer::TokenText(int32_t id) const {
  return vocab_->Valid(id) ? std::string_view(vocab_->tokens[id].text)
                           : std::string_view();
}

TokenType Tokenizer::token_type(int32_t id) const {
  return vocab_->Valid(id) ? vocab_->tokens[id].type : TokenType::kUndefined;
}

bool Tokenizer::IsEog(int32_t id) const { return vocab_->eog.contains(id); }

bool Tokenizer::IsControl(int32_t id) const {
  return vocab_->HasAttr(id, tokenizer::kAttrControl);
}

}  // namespace layerpool
