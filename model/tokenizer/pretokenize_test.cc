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

// Mistral-Nemo's tekken, as llama.cpp's std::regex splits it: case splits
// ASCII words, a non-ASCII letter counts as either case, digits go alone,
// others take [\r\n/]* after them.
TEST(PreTokenizeTest, Tekken) {
  EXPECT_THAT(Split(PreType::kTekken, "HelloWORLD"), ElementsAre(5, 5));
  EXPECT_THAT(Split(PreType::kTekken, " Hello  world"), ElementsAre(6, 1, 6));
  EXPECT_THAT(Split(PreType::kTekken, "\xC3\x89ric"), ElementsAre(4));         // Éric
  EXPECT_THAT(Split(PreType::kTekken, "\xC3\x89" "COLE"), ElementsAre(1, 4));     // ÉCOLE
  EXPECT_THAT(Split(PreType::kTekken, "3.14"), ElementsAre(1, 1, 1, 1));
  EXPECT_THAT(Split(PreType::kTekken, "a/\n"), ElementsAre(1, 2));
  EXPECT_THAT(Split(PreType::kTekken, "x \n\n y"), ElementsAre(1, 3, 2));
  EXPECT_THAT(Split(PreType::kTekken, ".Net"), ElementsAre(4));
  EXPECT_THAT(Split(PreType::kTekken, "a  "), ElementsAre(1, 2));
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
  EXPECT_TRUE(FindPreTokenizer("tekken")->ignore_merges);
  EXPECT_TRUE(FindPreTokenizer("tekken")->force_add_bos);
  EXPECT_FALSE(FindPreTokenizer("tekken-v9").has_value());
}

}  // namespace
}  // namespace layerpool::tokenizer
