#include "coordinator/text_stream.h"

#include "gtest/gtest.h"

namespace layerpool {
namespace {

TEST(TextStream, SplitCharacterWaitsForItsRest) {
  TextStream t;
  // "é" is C3 A9; "€" is E2 82 AC.
  EXPECT_EQ(t.Add("a\xC3"), "a");
  EXPECT_EQ(t.Add("\xA9" "b\xE2\x82"), "\xC3\xA9" "b");
  EXPECT_EQ(t.Add("\xAC"), "\xE2\x82\xAC");
  EXPECT_EQ(t.Flush(), "");
}

TEST(TextStream, InvalidBytesBecomeReplacementCharacters) {
  TextStream t;
  EXPECT_EQ(t.Add("x\xFFy"), "x\xEF\xBF\xBDy");
  EXPECT_EQ(t.Add("\xE2\x82"), "");
  EXPECT_EQ(t.Flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TextStream, StopStringAcrossTokensIsCutOut) {
  TextStream t({"</s>", "\n\n"});
  EXPECT_EQ(t.Add("Hello <"), "Hello ");
  EXPECT_EQ(t.Add("/"), "");
  EXPECT_EQ(t.Add("s> more"), "");
  EXPECT_TRUE(t.stopped());
  EXPECT_EQ(t.matched(), "</s>");
  EXPECT_EQ(t.Add("anything"), "");
}

TEST(TextStream, HeldTextIsReleasedWhenItCannotBeAStop) {
  TextStream t({"STOP"});
  EXPECT_EQ(t.Add("ST"), "");
  EXPECT_EQ(t.Add("AR"), "STAR");
  EXPECT_EQ(t.Add("S"), "");
  EXPECT_EQ(t.Flush(), "S");
  EXPECT_FALSE(t.stopped());
}

TEST(TextStream, EarliestStopWins) {
  TextStream t({"cd", "b"});
  EXPECT_EQ(t.Add("abcd"), "a");
  EXPECT_EQ(t.matched(), "b");
}

TEST(TextStream, CompletePrefix) {
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xF0\x9F\x98\x80"), 6u);
  EXPECT_EQ(CompleteUtf8Prefix("\x80" "a"), 2u);
}

}  // namespace
}  // namespace layerpool
