// The three tokenizer families on small hand-built vocabularies: merging
// order, byte fallback, special tokens, BOS/EOS, decoding, and errors.
#include "model/tokenizer/tokenizer.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "model/gguf/writer.h"
#include "model/tokenizer/unicode.h"

namespace layerpool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4,
              kByte = 6;

// Adds a token and returns its id.
int32_t Add(VocabSpec& spec, std::string text, float score = 0.0f,
            int type = kNormal) {
  spec.tokens.push_back(std::move(text));
  spec.scores.push_back(score);
  spec.token_types.push_back(type);
  return static_cast<int32_t>(spec.tokens.size() - 1);
}

std::unique_ptr<Tokenizer> Build(const VocabSpec& spec) {
  auto tok = Tokenizer::FromSpec(spec);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

// --- SPM --------------------------------------------------------------------

struct SpmVocab {
  VocabSpec spec;
  int32_t byte0, space, a, b, c, space_a, ab, space_ab, user;

  explicit SpmVocab(bool with_bytes = true) {
    spec.model = "llama";
    Add(spec, "<unk>", 0, kUnknown);
    Add(spec, "<s>", 0, kControl);
    Add(spec, "</s>", 0, kControl);
    byte0 = static_cast<int32_t>(spec.tokens.size());
    if (with_bytes) {
      for (int i = 0; i < 256; ++i) {
        Add(spec, absl::StrFormat("<0x%02X>", i), 0, kByte);
      }
    }
    space = Add(spec, "\xE2\x96\x81", -5);
    a = Add(spec, "a", -6);
    b = Add(spec, "b", -7);
    c = Add(spec, "c", -8);
    space_a = Add(spec, "\xE2\x96\x81" "a", -3);
    ab = Add(spec, "ab", -2);
    space_ab = Add(spec, "\xE2\x96\x81" "ab", -1);
    user = Add(spec, "<|user|>", 0, kUserDefined);
  }
  int32_t Byte(uint8_t v) const { return byte0 + v; }
};

TEST(SpmTest, MergesHighestScoreFirst) {
  SpmVocab v;
  auto tok = Build(v.spec);
  // "▁ab": "ab" (-2) beats "▁a" (-3), then "▁ab" (-1).
  EXPECT_THAT(tok->Encode("ab", false), ElementsAre(v.space_ab));
  EXPECT_THAT(tok->Encode("abc", false), ElementsAre(v.space_ab, v.c));
  EXPECT_THAT(tok->Encode("a b", false), ElementsAre(v.space_a, v.space, v.b));
  EXPECT_THAT(tok->Encode("", false), IsEmpty());
  EXPECT_THAT(tok->Encode("", true), ElementsAre(1));
}

TEST(SpmTest, ByteFallback) {
  SpmVocab v;
  auto tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("\xC3\xA9", false),  // é
              ElementsAre(v.space, v.Byte(0xC3), v.Byte(0xA9)));
  // Invalid UTF-8 too. A symbol's length comes from its lead byte alone, so
  // 0xFF (a "4-byte" lead) swallows the 'a' after it, as in llama.cpp.
  EXPECT_THAT(tok->Encode("\xFF" "a", false),
              ElementsAre(v.space, v.Byte(0xFF), v.Byte('a')));
  EXPECT_EQ(tok->TokenToPiece(v.Byte('A')), "A");
  EXPECT_EQ(tok->Decode(tok->Encode("\xC3\xA9 a\xFF", false)),
            "\xC3\xA9 a\xFF");
}

TEST(SpmTest, NoByteTokensGivesUnknownInsteadOfThrowing) {
  SpmVocab v(/*with_bytes=*/false);
  auto tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("\xC3\xA9" "a", false),
              ElementsAre(v.space, 0, v.a));
  EXPECT_THAT(tok->Encode("\t", false), ElementsAre(v.space, 0));
}

TEST(SpmTest, BosEosAndSpacePrefixFollowMetadata) {
  SpmVocab v;
  auto tok = Build(v.spec);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_FALSE(tok->add_eos());
  EXPECT_THAT(tok->Encode("ab", true), ElementsAre(1, v.space_ab));

  v.spec.add_bos = false;
  v.spec.add_eos = true;
  v.spec.add_space_prefix = false;
  tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("ab", true), ElementsAre(v.ab, 2));
  EXPECT_THAT(tok->Encode("ab", false), ElementsAre(v.ab));
  EXPECT_EQ(tok->Decode(tok->Encode(" ab", false)), " ab");
}

TEST(SpmTest, SpecialTokens) {
  SpmVocab v;
  auto tok = Build(v.spec);
  // Control text is plain text unless parse_special.
  EXPECT_THAT(tok->Encode("<s>a", false, true), ElementsAre(1, v.space_a));
  const auto plain = tok->Encode("<s>a", false, false);
  EXPECT_THAT(plain, ElementsAre(v.space, v.Byte('<'), v.Byte('s'),
                                 v.Byte('>'), v.a));
  // User-defined tokens are always cut out; text after any special token
  // gets the space prefix again.
  EXPECT_THAT(tok->Encode("a<|user|>b", false),
              ElementsAre(v.space_a, v.user, v.space, v.b));
  EXPECT_EQ(tok->TokenToPiece(1), "");
  EXPECT_EQ(tok->TokenToPiece(1, /*special=*/true), "<s>");
  EXPECT_EQ(tok->TokenToPiece(v.user), "<|user|>");
  EXPECT_EQ(tok->TokenToPiece(-1), "");
  EXPECT_EQ(tok->TokenToPiece(tok->n_vocab()), "");
  // The BOS piece takes the one-space strip, so the space stays (llama.cpp).
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{1, v.space_ab, 2}), " ab");
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{1, v.space_ab, 2}, true),
            "<s> ab</s>");
  EXPECT_TRUE(tok->IsEog(2));
  EXPECT_TRUE(tok->IsControl(1));
  EXPECT_EQ(tok->token_type(v.user), TokenType::kUserDefined);
}

// --- BPE --------------------------------------------------------------------

struct BpeVocab {
  VocabSpec spec;
  int32_t he, ll, hell, hello, g_w, g_wo, eot, tool;

  BpeVocab() {
    spec.model = "gpt2";
    spec.pre = "gpt-2";
    spec.scores.clear();
    for (int byte = 0; byte < 256; ++byte) {
      Add(spec, std::string(tokenizer::ByteToUnicode(byte)));
    }
    he = Add(spec, "he");
    ll = Add(spec, "ll");
    hell = Add(spec, "hell");
    hello = Add(spec, "hello");
    g_w = Add(spec, "\xC4\xA0w");  // Ġw
    g_wo = Add(spec, "\xC4\xA0wo");
    eot = Add(spec, "<|endoftext|>", 0, kControl);
    tool = Add(spec, "<tool>", 0, kUserDefined);
    spec.merges = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w",
                   "\xC4\xA0w o"};
    spec.eos_id = eot;
    spec.bos_id = eot;
  }
};

TEST(BpeTest, MergesByRank) {
  BpeVocab v;
  auto tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("hello wo", false), ElementsAre(v.hello, v.g_wo));
  EXPECT_THAT(tok->Encode("hell", false), ElementsAre(v.hell));
  EXPECT_THAT(tok->Encode("lhe", false), ElementsAre('l', v.he));
  EXPECT_EQ(tok->Decode(tok->Encode("hello world!", false)), "hello world!");
  EXPECT_EQ(tok->pre_name(), "gpt-2");
}

TEST(BpeTest, InvalidUtf8BecomesReplacementCharacter) {
  BpeVocab v;
  auto tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("\xFF", false), ElementsAre(0xEF, 0xBF, 0xBD));
  EXPECT_EQ(tok->Decode(tok->Encode("a\xC3", false)), "a\xEF\xBF\xBD");
}

TEST(BpeTest, SpecialTokensAndBos) {
  BpeVocab v;
  auto tok = Build(v.spec);
  EXPECT_FALSE(tok->add_bos());  // gpt2 vocabularies add nothing by default
  EXPECT_THAT(tok->Encode("he", true), ElementsAre(v.he));
  EXPECT_THAT(tok->Encode("he<|endoftext|>", false, true),
              ElementsAre(v.he, v.eot));
  // As text: "he", "<|", "endoftext", "|>", one token per unmerged byte.
  EXPECT_EQ(tok->Encode("he<|endoftext|>", false, false).size(), 1u + 13u);
  EXPECT_THAT(tok->Encode("he<tool>he", false),
              ElementsAre(v.he, v.tool, v.he));
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{v.he, v.eot}), "he");
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{v.he, v.eot}, true),
            "he<|endoftext|>");

  v.spec.add_bos = true;
  v.spec.add_eos = true;
  tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("he", true), ElementsAre(v.eot, v.he, v.eot));
}

TEST(BpeTest, DecodeCleansSpacesLikeLlamaCpp) {
  BpeVocab v;
  auto tok = Build(v.spec);
  EXPECT_EQ(tok->Decode(tok->Encode("a , b ! it 's ' x", false)),
            "a, b! it's'x");
}

// --- WPM --------------------------------------------------------------------

struct WpmVocab {
  VocabSpec spec;
  int32_t hello, world, comma, bang, un, aff, able, cafe, shi;

  WpmVocab() {
    spec.model = "bert";
    Add(spec, "[PAD]", 0, kControl);
    Add(spec, "[UNK]", 0, kControl);
    Add(spec, "[CLS]", 0, kControl);
    Add(spec, "[SEP]", 0, kControl);
    hello = Add(spec, "\xE2\x96\x81hello");
    world = Add(spec, "\xE2\x96\x81world");
    comma = Add(spec, "\xE2\x96\x81,");
    bang = Add(spec, "\xE2\x96\x81!");
    un = Add(spec, "\xE2\x96\x81un");
    aff = Add(spec, "aff");
    able = Add(spec, "able");
    cafe = Add(spec, "\xE2\x96\x81" "cafe");
    shi = Add(spec, "\xE2\x96\x81\xE4\xB8\x96");  // ▁世
    spec.pad_id = 0;
    spec.unk_id = 1;
    spec.cls_id = 2;
    spec.bos_id = 2;
    spec.sep_id = 3;
  }
};

TEST(WpmTest, LongestMatchPerWord) {
  WpmVocab v;
  auto tok = Build(v.spec);
  EXPECT_THAT(tok->Encode("Hello, WORLD!", false),
              ElementsAre(v.hello, v.comma, v.world, v.bang));
  EXPECT_THAT(tok->Encode("unaffable", false), ElementsAre(v.un, v.aff, v.able));
  EXPECT_THAT(tok->Encode("Caf\xC3\xA9", false), ElementsAre(v.cafe));
  EXPECT_THAT(tok->Encode("xyz hello", false), ElementsAre(1, v.hello));
  EXPECT_THAT(tok->Encode("\xE4\xB8\x96\xE7\x95\x8C", false),  // 世界
              ElementsAre(v.shi, 1));
  EXPECT_THAT(tok->Encode("hello", true), ElementsAre(2, v.hello, 3));
  EXPECT_EQ(tok->Decode(tok->Encode("hello, unaffable world!", false)),
            " hello, unaffable world!");
}

// --- Errors -----------------------------------------------------------------

void ExpectInvalid(const VocabSpec& spec, const std::string& key) {
  auto tok = Tokenizer::FromSpec(spec);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tok.status().message()), HasSubstr(key));
}

TEST(SpecErrorsTest, NameTheKey) {
  SpmVocab v;
  VocabSpec spec = v.spec;
  spec.model = "";
  ExpectInvalid(spec, "tokenizer.ggml.model");
  spec.model = "t5";
  ExpectInvalid(spec, "tokenizer.ggml.model");
  spec = v.spec;
  spec.scores.resize(3);
  ExpectInvalid(spec, "tokenizer.ggml.scores");
  spec = v.spec;
  spec.token_types.resize(3);
  ExpectInvalid(spec, "tokenizer.ggml.token_type");
  spec = v.spec;
  Add(spec, "ab");
  ExpectInvalid(spec, "tokenizer.ggml.tokens");
  spec = v.spec;
  spec.tokens.clear();
  ExpectInvalid(spec, "tokenizer.ggml.tokens");
  spec = v.spec;
  spec.add_eos = true;
  spec.eos_id = 100000;  // out of range: ignored, and the default 2 stays
  EXPECT_TRUE(Tokenizer::FromSpec(spec).ok());
  spec.tokens.resize(2), spec.scores.resize(2), spec.token_types.resize(2);
  ExpectInvalid(spec, "tokenizer.ggml.add_eos_token");

  BpeVocab b;
  b.spec.pre = "no-such-pre";
  ExpectInvalid(b.spec, "tokenizer.ggml.pre");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> FromWriter(
    const gguf::GgufWriter& writer) {
  auto bytes = writer.WriteToString();
  if (!bytes.ok()) return bytes.status();
  static std::vector<std::string> keep_alive;  // Parse does not copy
  keep_alive.push_back(*std::move(bytes));
  const std::string& data = keep_alive.back();
  auto file = gguf::GgufFile::Parse(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

gguf::Value Strings(std::vector<std::string> items) {
  std::vector<gguf::Value> values;
  for (auto& s : items) values.push_back(gguf::Value::String(std::move(s)));
  return gguf::Value::MakeArray(gguf::ValueType::kString, std::move(values));
}

TEST(FromGgufTest, ReadsMetadataAndNamesBrokenKeys) {
  gguf::GgufWriter writer;
  writer.Set("general.name", gguf::Value::String("tiny"));
  writer.Set("tokenizer.ggml.model", gguf::Value::String("gpt2"));
  writer.Set("tokenizer.ggml.pre", gguf::Value::String("gpt-2"));
  writer.Set("tokenizer.ggml.tokens", Strings({"a", "b", "ab", "<eos>"}));
  writer.Set("tokenizer.ggml.merges", Strings({"a b"}));
  writer.Set("tokenizer.ggml.eos_token_id", gguf::Value::Uint32(3));
  writer.Set("tokenizer.ggml.bos_token_id", gguf::Value::Int32(-1));
  auto tok = FromWriter(writer);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT((*tok)->Encode("ab", false), ElementsAre(2));
  EXPECT_EQ((*tok)->eos_id(), 3);
  EXPECT_EQ((*tok)->bos_id(), kNoToken);  // default 11 is out of range
  EXPECT_EQ((*tok)->model_name(), "gpt2");

  gguf::GgufWriter no_merges = writer;
  no_merges.Set("tokenizer.ggml.merges", gguf::Value::Uint32(0));
  EXPECT_THAT(std::string(FromWriter(no_merges).status().message()),
              HasSubstr("tokenizer.ggml.merges"));

  gguf::GgufWriter bad_tokens = writer;
  bad_tokens.Set("tokenizer.ggml.tokens",
                 gguf::Value::MakeArray(gguf::ValueType::kUint32,
                                        {gguf::Value::Uint32(1)}));
  EXPECT_THAT(std::string(FromWriter(bad_tokens).status().message()),
              HasSubstr("tokenizer.ggml.tokens"));

  gguf::GgufWriter bad_flag = writer;
  bad_flag.Set("tokenizer.ggml.add_bos_token", gguf::Value::String("yes"));
  EXPECT_THAT(std::string(FromWriter(bad_flag).status().message()),
              HasSubstr("tokenizer.ggml.add_bos_token"));

  gguf::GgufWriter no_model;
  no_model.Set("tokenizer.ggml.tokens", Strings({"a"}));
  auto missing = FromWriter(no_model);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("tokenizer.ggml.model"));
}

// --- Robustness -------------------------------------------------------------

// Random vocabularies (odd token types, byte tokens with short texts, empty
// and duplicate-looking tokens, junk merges, out-of-range ids) either fail to
// build with a status or tokenize anything without crashing.
TEST(RobustnessTest, RandomVocabulariesAndTexts) {
  std::mt19937 rng(42);
  const std::vector<std::string> pieces = {
      "a", "b", " ", "\xE2\x96\x81", "\xC4\xA0", "<", ">", "<0x", "<0x41>",
      "<0xZZ>", "\xC3", "\xA9", "\xFF", "\n", "##", "<s>", "</s>", "x"};
  auto random_string = [&](size_t max_pieces) {
    std::string out;
    for (size_t n = rng() % (max_pieces + 1); n > 0; --n) {
      out += pieces[rng() % pieces.size()];
    }
    return out;
  };
  int built = 0;
  for (int round = 0; round < 300; ++round) {
    VocabSpec spec;
    spec.model = std::vector<std::string>{"llama", "gpt2", "bert"}[round % 3];
    const char* pres[] = {"", "gpt-2", "llama-bpe", "deepseek-llm", "falcon",
                          "qwen2", "deepseek-coder", "starcoder"};
    spec.pre = pres[rng() % std::size(pres)];
    spec.general_name = rng() % 4 == 0 ? "phi3" : "x";
    for (int i = 0, n = 1 + rng() % 40; i < n; ++i) {
      std::string text = random_string(3);
      if (std::find(spec.tokens.begin(), spec.tokens.end(), text) !=
          spec.tokens.end()) {
        continue;
      }
      spec.tokens.push_back(text);
      spec.scores.push_back(static_cast<float>(rng() % 100) - 50);
      spec.token_types.push_back(static_cast<int32_t>(rng() % 9) - 1);
    }
    for (int i = 0, n = rng() % 20; i < n; ++i) {
      spec.merges.push_back(random_string(2) + " " + random_string(2));
    }
    for (auto* id : {&spec.bos_id, &spec.eos_id, &spec.unk_id, &spec.sep_id}) {
      if (rng() % 2) *id = static_cast<int64_t>(rng() % 60) - 10;
    }
    if (rng() % 3 == 0) spec.add_bos = rng() % 2;
    if (rng() % 3 == 0) spec.add_eos = rng() % 2;
    auto tok = Tokenizer::FromSpec(spec);
    if (!tok.ok()) {
      EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ++built;
    for (int t = 0; t < 20; ++t) {
      const std::string text = random_string(12);
      for (bool special : {false, true}) {
        const auto ids = (*tok)->Encode(text, special, special);
        for (int32_t id : ids) {
          ASSERT_GE(id, 0);
          ASSERT_LT(id, (*tok)->n_vocab());
        }
        (void)(*tok)->Decode(ids, special);
      }
    }
    for (int32_t id = -2; id <= (*tok)->n_vocab() + 1; ++id) {
      (void)(*tok)->TokenToPiece(id, true);
      (void)(*tok)->TokenToPiece(id, false);
    }
  }
  EXPECT_GT(built, 100);
}

}  // namespace
}  // namespace layerpool
