#include "model/tokenizer/unicode.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool::tokenizer {
namespace {

using ::testing::ElementsAre;

TEST(Utf8Test, DecodesLikeLlamaCpp) {
  EXPECT_THAT(DecodeUtf8("a\xC3\xA9\xE4\xB8\x96\xF0\x9F\xA6\x99"),
              ElementsAre('a', 0xE9, 0x4E16, 0x1F999));
  // Bad lead, bad continuation, truncation: U+FFFD per byte consumed.
  EXPECT_THAT(DecodeUtf8("\x80"), ElementsAre(kReplacementChar));
  EXPECT_THAT(DecodeUtf8("\xC3"), ElementsAre(kReplacementChar));
  EXPECT_THAT(DecodeUtf8("\xE2\x82" "a"),
              ElementsAre(kReplacementChar, kReplacementChar, 'a'));
  EXPECT_THAT(DecodeUtf8("\xF8\x80"),
              ElementsAre(kReplacementChar, kReplacementChar));
  // Beyond U+10FFFF is malformed (llama.cpp would throw later).
  EXPECT_THAT(DecodeUtf8("\xF4\x90\x80\x80"),
              ElementsAre(kReplacementChar, kReplacementChar, kReplacementChar,
                          kReplacementChar));
  // Overlong forms and surrogates pass, as in llama.cpp.
  EXPECT_THAT(DecodeUtf8("\xC0\x80"), ElementsAre(0));
  EXPECT_THAT(DecodeUtf8("\xED\xA0\x80"), ElementsAre(0xD800));
  EXPECT_EQ(EncodeUtf8(0x1F999), "\xF0\x9F\xA6\x99");
  EXPECT_EQ(EncodeUtf8(0x110000), "\xEF\xBF\xBD");
  EXPECT_EQ(Utf8SequenceLength('\xF0'), 4u);
  EXPECT_EQ(Utf8SequenceLength('\x80'), 1u);
}

TEST(FlagsTest, GeneralCategoriesAndWhitespace) {
  EXPECT_EQ(CodepointFlags('a'), kLetter);
  EXPECT_EQ(CodepointFlags(0x4E16), kLetter);
  EXPECT_EQ(CodepointFlags('7'), kNumber);
  EXPECT_EQ(CodepointFlags(0x00B2), kNumber);  // ²
  EXPECT_EQ(CodepointFlags(' '), kSeparator | kWhitespace);
  EXPECT_EQ(CodepointFlags('\n'), kControl | kWhitespace);
  EXPECT_EQ(CodepointFlags(0x3000), kSeparator | kWhitespace);
  EXPECT_EQ(CodepointFlags(0x1C), kControl);  // not White_Space
  EXPECT_EQ(CodepointFlags('!'), kPunctuation);
  EXPECT_EQ(CodepointFlags('$'), kSymbol);
  EXPECT_EQ(CodepointFlags(0x1F999), kSymbol);  // 🦙
  EXPECT_EQ(CodepointFlags(0x0301), kMark);
  EXPECT_EQ(CodepointFlags(0x0378), kUndefined);
  EXPECT_EQ(CodepointFlags(0x110000), kUndefined);
}

TEST(CaseAndNfdTest, OneToOneMappings) {
  EXPECT_EQ(ToLower('A'), 'a');
  EXPECT_EQ(ToLower(0xC9), 0xE9u);   // É
  EXPECT_EQ(ToLower(0x130), 'i');    // İ
  EXPECT_EQ(NfdFirst(0xE9), 'e');    // é
  EXPECT_EQ(NfdFirst(0x1E09), 'c');  // ḉ: c + cedilla + acute
  EXPECT_EQ(NfdFirst(0xD55C), 0x1112u);  // 한 -> ᄒ
  EXPECT_EQ(NfdFirst(0x2126), 0x3A9u);   // Ω (ohm) -> Ω
  EXPECT_EQ(NfdFirst(0xDF), 0xDFu);      // ß has no decomposition
  EXPECT_EQ(NfdFirst('a'), 'a');
}

TEST(ByteAlphabetTest, IsABijection) {
  std::set<std::string_view> seen;
  for (int b = 0; b < 256; ++b) {
    const std::string_view s = ByteToUnicode(static_cast<uint8_t>(b));
    seen.insert(s);
    const auto cps = DecodeUtf8(s);
    ASSERT_EQ(cps.size(), 1u);
    EXPECT_EQ(UnicodeToByte(cps[0]), b);
  }
  EXPECT_EQ(seen.size(), 256u);
  EXPECT_EQ(ByteToUnicode(' '), "\xC4\xA0");  // Ġ
  EXPECT_EQ(ByteToUnicode('\n'), "\xC4\x8A");  // Ċ
  EXPECT_EQ(ByteToUnicode('a'), "a");
  EXPECT_EQ(UnicodeToByte(0x4E16), -1);
}

}  // namespace
}  // namespace layerpool::tokenizer
