// The three tokenization algorithms, each turning one fragment of plain text
// (no special-token text left in it) into ids appended to `out`. Internal to
// model/tokenizer/; Tokenizer::Encode does the special-token pass, the SPM
// space prefix and BOS/EOS around them.
#ifndef LAYERPOOL_MODEL_TOKENIZER_ALGORITHMS_H_
#define LAYERPOOL_MODEL_TOKENIZER_ALGORITHMS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/vocab.h"

namespace layerpool::tokenizer {

// SentencePiece BPE (llm_tokenizer_spm): `text` has its spaces already
// written as "▁". Starting from single characters, the adjacent pair whose
// joined text is the highest-scoring token is merged until none is left;
// pieces that are not tokens are written as <0xNN> byte tokens, or as the
// unknown token where the vocabulary has no byte tokens.
void SpmTokenize(const Vocab& vocab, std::string_view text,
                 std::vector<int32_t>* out);

// Byte-level BPE (llm_tokenizer_bpe): pre-tokenize into words, then in each
// word merge the adjacent pair of lowest merge rank until none is left.
void BpeTokenize(const Vocab& vocab, std::string_view text,
                 std::vector<int32_t>* out);

// WordPiece (llm_tokenizer_wpm): split into words, then greedy longest
// match of "▁" + word against the vocabulary; a word with any unmatched
// position becomes the unknown token.
void WpmTokenize(const Vocab& vocab, std::string_view text,
                 std::vector<int32_t>* out);

// The WordPiece word split: NFD (first code point), lower case, control
// characters dropped, whitespace separates, punctuation, ASCII symbols and
// CJK ideographs stand alone.
std::vector<std::string> WpmPreprocess(std::string_view text);

}  // namespace layerpool::tokenizer

#endif  // LAYERPOOL_MODEL_TOKENIZER_ALGORITHMS_H_
