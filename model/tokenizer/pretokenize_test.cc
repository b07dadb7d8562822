#include "model/tokenizer/pretokenize.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<size_t> Split(PreType type, std::string_view text) {
  return PreTokenizeLengths(type, text);
}

TEST(PreTokenizeTest, Gpt2) {
  EXPECT_THAT(Split(PreType::kGpt2, ""), IsEmpty());
  EXPECT_THAT(Split(PreType::kGpt2, "Hello world"), ElementsAre(5, 6));
  // \s+(?!\S): the last space of a run joins the next word...
  EXPECT_THAT(Split(PreType::kGpt2, "  Hello"), ElementsAre(1, 6));
  // ...but a run at the end stays whole.
  EXPECT_THAT(Split(PreType::kGpt2, "a  "), ElementsAre(1, 2));
  EXPECT_THAT(Split(PreType::kGpt2, "don't 3333 !!"), ElementsAre(3, 2, 5, 3));
  EXPECT_THAT(Split(PreType::kGpt2, "I'M"), ElementsAre(1, 1, 1));  // case
  EXPECT_THAT(PreTokenize(PreType::kGpt2, "a b\n"),
              ElementsAre("a", "\xC4\xA0" "b", "\xC4\x8A"));
}

TEST(PreTokenizeTest, Llama3AndQwen2) {
  EXPECT_THAT(Split(PreType::kLlama3, "3333"), ElementsAre(3, 1));
  EXPECT_THAT(Split(PreType::kQwen2, "3333"), ElementsAre(1, 1, 1, 1));
  EXPECT_THAT(Split(PreType::kLlama3, "Hello\n\nworld"), ElementsAre(5, 2, 5));
  EXPECT_THAT(Split(PreType::kLlama3, "HELLO'S"), ElementsAre(5, 2));
  // " ?[^\s\p{L}\p{N}]+[\r\n]*" cannot take ")" and " \n" together.
  EXPECT_THAT(Split(PreType::kLlama3, " (x) \n"), ElementsAre(2, 1, 1, 2));
  EXPECT_THAT(Split(PreType::kLlama3, "a   b"), ElementsAre(1, 2, 2));
}

TEST(PreTokenizeTest, RegexListsOfOtherVocabularies) {
  EXPECT_THAT(Split(PreType::kDefault, "1234"), ElementsAre(3, 1));
  EXPECT_THAT(Split(PreType::kDefault, "a+b"), ElementsAre(1, 1, 1));
  EXPECT_THAT(Split(PreType::kFalcon, "12345"), ElementsAre(3, 2));
  EXPECT_THAT(Split(PreType::kStarcoder, "a12"), ElementsAre(1, 1, 1));
  EXPECT_THAT(Split(PreType::kDeepseekLlm, "Hello  "), ElementsAre(5, 2));
  EXPECT_THAT(Split(PreType::kDeepseekLlm, "a\nb"), ElementsAre(1, 1, 1));
  EXPECT_THAT(Split(PreType::kDeepseekLlm, "\xE4\xBD\xA0\xE5\xA5\xBD"),
              ElementsAre(2));  // 你好
  EXPECT_THAT(Split(PreType::kDeepseekCoder, "x=12"), ElementsAre(1, 1, 1, 1));
  EXPECT_THAT(Split(PreType::kDeepseekCoder, " x, y"), ElementsAre(2, 1, 2));
}

TEST(PreTokenizeTest, Names) {
  EXPECT_EQ(FindPreTokenizer("")->type, PreType::kDefault);
  EXPECT_EQ(FindPreTokenizer("llama-bpe")->type, PreType::kLlama3);
  EXPECT_TRUE(FindPreTokenizer("llama-bpe")->ignore_merges);
  EXPECT_EQ(FindPreTokenizer("refact")->type, PreType::kStarcoder);
  EXPECT_FALSE(FindPreTokenizer("qwen2")->clean_spaces);
  EXPECT_FALSE(FindPreTokenizer("tekken").has_value());
}

}  // namespace
}  // namespace layerpool::tokenizer
