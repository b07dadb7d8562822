// Byte-level BPE merging, as llama.cpp's llm_tokenizer_bpe_session.
//
// Per word: symbols (one per UTF-8 character of the byte-level text) in a
// linked list, a min-heap of candidate merges ordered by rank (ties: leftmost
// first); a candidate is stale once its two symbols no longer spell its text.
#include <queue>
#include <string>

#include "model/tokenizer/algorithms.h"
#include "model/tokenizer/pretokenize.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

struct Symbol {
  int prev;
  int next;
  size_t offset;  // into the word
  size_t size;
};

struct Bigram {
  int left;
  int right;
  std::string text;
  int32_t rank;
};

struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class WordMerger {
 public:
  WordMerger(const Vocab& vocab, std::string_view word)
      : vocab_(vocab), word_(word) {}

  // Appends the word's final symbols (as substrings of the word) to `out`.
  void Merge(std::vector<std::string_view>* out) {
    if (vocab_.pre.ignore_merges && vocab_.Find(word_) != kNoToken) {
      out->push_back(word_);
      return;
    }
    for (size_t offset = 0; offset < word_.size();) {
      const size_t size =
          std::min(Utf8SequenceLength(word_[offset]), word_.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back(Symbol{index - 1,
                                offset + size == word_.size() ? -1 : index + 1,
                                offset, size});
      offset += size;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) {
      TryAddBigram(i - 1, i);
    }
    while (!queue_.empty()) {
      Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      if (left.size == 0 || right.size == 0) continue;
      if (word_.substr(left.offset, left.size + right.size) != bigram.text ||
          left.offset + left.size != right.offset) {
        continue;  // outdated
      }
      left.size += right.size;
      right.size = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      TryAddBigram(left.prev, bigram.left);
      TryAddBigram(bigram.left, left.next);
    }
    for (const Symbol& s : symbols_) {
      if (s.size > 0) out->push_back(word_.substr(s.offset, s.size));
    }
  }

 private:
  std::string_view Text(int i) const {
    return word_.substr(symbols_[i].offset, symbols_[i].size);
  }

  void TryAddBigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const int32_t rank = vocab_.MergeRank(Text(left), Text(right));
    if (rank < 0) return;
    std::string text(Text(left));
    text.append(Text(right));
    queue_.push(Bigram{left, right, std::move(text), rank});
  }

  const Vocab& vocab_;
  std::string_view word_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

}  // namespace

void BpeTokenize(const Vocab& vocab, std::string_view text,
                 std::vector<int32_t>* out) {
  const std::vector<std::string> words = PreTokenize(vocab.pre.type, text);
  std::vector<std::string_view> pieces;
  for (const std::string& word : words) {
    pieces.clear();
    WordMerger(vocab, word).Merge(&pieces);
    for (std::string_view piece : pieces) {
      if (int32_t id = vocab.Find(piece); id != kNoToken) {
        out->push_back(id);
        continue;
      }
      // No token for the piece: llama.cpp tries each of its bytes as a
      // one-byte token text, which byte-level vocabularies rarely have.
      for (char byte : piece) {
        if (int32_t id = vocab.Find(std::string_view(&byte, 1)); id != kNoToken) {
          out->push_back(id);
        }
      }
    }
  }
}

}  // namespace layerpool::tokenizer
