// SentencePiece-style merging, as llama.cpp's llm_tokenizer_spm_session.
//
// Symbols form a doubly linked list over the text; a max-heap holds candidate
// merges of neighbours ordered by the merged token's score (ties: leftmost
// first). Stale candidates are recognised by their length no longer matching
// the two symbols'. The heap and its ordering are the same std::priority_queue
// as llama.cpp's so that equal scores break the same way.
#include <map>
#include <queue>
#include <string>
#include <utility>

#include "model/tokenizer/algorithms.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  const char* text;
  size_t size;
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// How deep resegmenting may recurse before giving up on a piece. The
// recursion follows merges recorded by text, which on crafted input need not
// shrink; llama.cpp has no bound.
constexpr int kMaxResegmentDepth = 256;

class SpmSession {
 public:
  explicit SpmSession(const Vocab& vocab) : vocab_(vocab) {}

  void Tokenize(std::string_view text, std::vector<int32_t>* out) {
    for (size_t offset = 0; offset < text.size();) {
      const size_t size =
          std::min(Utf8SequenceLength(text[offset]), text.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back(Symbol{index - 1,
                                offset + size == text.size() ? -1 : index + 1,
                                text.data() + offset, size});
      offset += size;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) {
      TryAddBigram(i - 1, i);
    }
    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      if (left.size == 0 || right.size == 0 ||
          left.size + right.size != bigram.size) {
        continue;  // one side was merged since this candidate was queued
      }
      left.size += right.size;
      right.size = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      TryAddBigram(left.prev, bigram.left);
      TryAddBigram(bigram.left, left.next);
    }
    for (int i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[i].next) {
      Resegment(symbols_[i], out, 0);
    }
  }

 private:
  std::string TextOf(const Symbol& s) const { return std::string(s.text, s.size); }

  void Resegment(const Symbol& symbol, std::vector<int32_t>* out, int depth) {
    const std::string text = TextOf(symbol);
    if (int32_t id = vocab_.Find(text); id != kNoToken) {
      out->push_back(id);
      return;
    }
    auto merge = merges_.find(text);
    if (merge == merges_.end() || depth >= kMaxResegmentDepth) {
      EmitBytes(text, out);
      return;
    }
    Resegment(symbols_[merge->second.first], out, depth + 1);
    Resegment(symbols_[merge->second.second], out, depth + 1);
  }

  // Each byte as its <0xNN> token. llama.cpp throws when a byte has none (a
  // vocabulary without byte tokens); SentencePiece would emit <unk> for the
  // character, and so do we, once for the whole piece.
  void EmitBytes(std::string_view text, std::vector<int32_t>* out) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::vector<int32_t> bytes;
    for (char c : text) {
      const auto b = static_cast<uint8_t>(c);
      const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
      int32_t id = vocab_.Find(std::string_view(name, sizeof(name)));
      if (id == kNoToken) id = vocab_.Find(std::string_view(&c, 1));
      if (id == kNoToken) {
        if (vocab_.unk != kNoToken) out->push_back(vocab_.unk);
        return;
      }
      bytes.push_back(id);
    }
    out->insert(out->end(), bytes.begin(), bytes.end());
  }

  void TryAddBigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string text(symbols_[left].text,
                           symbols_[left].size + symbols_[right].size);
    const int32_t id = vocab_.Find(text);
    if (id == kNoToken) return;
    queue_.push(Bigram{left, right, vocab_.tokens[id].score, text.size()});
    merges_[text] = {left, right};
  }

  const Vocab& vocab_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
  // The last pair of symbols each merged text was made from, as llama.cpp's
  // rev_merge keeps it.
  std::map<std::string, std::pair<int, int>> merges_;
};

}  // namespace

void SpmTokenize(const Vocab& vocab, std::string_view text,
                 std::vector<int32_t>* out) {
  SpmSession(vocab).Tokenize(text, out);
}

}  // namespace layerpool::tokenizer
