#include "base/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace layerpool {
namespace {

std::string Hex(const std::string& text) {
  Sha256 h;
  h.Update(text.data(), text.size());
  return h.FinishHex();
}

// Vectors from FIPS 180-4's examples and NIST's SHA-256 test set.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, SplitUpdatesEqualOneUpdate) {
  std::string text;
  for (int i = 0; i < 300; ++i) text.push_back(static_cast<char>(i * 7));
  const std::string whole = Hex(text);
  for (size_t cut : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 128u, 299u}) {
    Sha256 h;
    h.Update(text.data(), cut);
    h.Update(text.data() + cut, text.size() - cut);
    EXPECT_EQ(h.FinishHex(), whole) << "cut at " << cut;
  }
}

}  // namespace
}  // namespace layerpool
