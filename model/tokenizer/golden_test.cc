// The tokenizers against llama.cpp's own outputs on the real vocabularies in
// ../shared: golden/tokenizer/*.json (llama_tokenize of 34 strings per
// vocabulary) and models/vocab/*.gguf.inp/.out (llama.cpp's test-tokenizer-0
// vectors), plus round trips and random bytes on the same vocabularies.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

using ::layerpool::testing::ReadFileOrDie;
using ::layerpool::testing::SharedFiles;
using ::layerpool::testing::SharedPath;

// The golden files, and the GGUF each vocabulary comes from.
const char* const kGoldenStems[] = {
    "TinyStories-656K-Q8_0",     "stories260K-F32",
    "ggml-vocab-baichuan",       "ggml-vocab-bert-bge",
    "ggml-vocab-deepseek-coder", "ggml-vocab-deepseek-llm",
    "ggml-vocab-falcon",         "ggml-vocab-gpt-2",
    "ggml-vocab-gpt-neox",       "ggml-vocab-llama-spm",
    "ggml-vocab-mpt",            "ggml-vocab-phi-3",
    "ggml-vocab-refact",         "ggml-vocab-starcoder",
};

std::string GgufOf(const std::string& stem) {
  if (stem == "TinyStories-656K-Q8_0") {
    return SharedPath("models/tinystories-656K/TinyStories-656K-Q8_0.gguf");
  }
  if (stem == "stories260K-F32") {
    return SharedPath("models/stories260K/stories260K-F32.gguf");
  }
  return SharedPath("models/vocab/" + stem + ".gguf");
}

// Loaded once per vocabulary for the whole test binary.
const Tokenizer& Load(const std::string& gguf_path) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto& slot = (*cache)[gguf_path];
  if (slot == nullptr) {
    gguf::GgufFile::Options options;
    options.map_data = false;
    auto file = gguf::GgufFile::Open(gguf_path, options);
    if (!file.ok()) {
      ADD_FAILURE() << gguf_path << ": " << file.status();
      std::abort();
    }
    auto tokenizer = Tokenizer::FromGguf(**file);
    if (!tokenizer.ok()) {
      ADD_FAILURE() << gguf_path << ": " << tokenizer.status();
      std::abort();
    }
    slot = std::move(tokenizer).value();
  }
  return *slot;
}

std::string Escaped(const std::string& s) { return nlohmann::json(s).dump(); }

// llama.cpp's Decode cleans " ," and " '" style spaces in most BPE and WPM
// vocabularies, so only strings without them can round-trip everywhere.
bool HasCleanedSpacing(const std::string& s) {
  for (const char* p : {" ?", " !", " .", " ,", " '"}) {
    if (s.find(p) != std::string::npos) return true;
  }
  return false;
}

void ExpectInRange(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, tok.n_vocab());
  }
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, EncodeMatchesLlamaCpp) {
  const std::string stem = GetParam();
  const Tokenizer& tok = Load(GgufOf(stem));
  const auto golden = nlohmann::json::parse(
      ReadFileOrDie(SharedPath("golden/tokenizer/" + stem + ".json")));
  int matched = 0, compared = 0, unchecked = 0;
  for (const auto& entry : golden) {
    const std::string text = entry.at("text");
    const std::vector<int32_t> ids = tok.Encode(
        text, entry.at("add_special").get<bool>(),
        entry.at("parse_special").get<bool>());
    ExpectInRange(tok, ids);
    if (entry.at("ids").is_null()) {  // llama.cpp threw; any sane answer
      ++unchecked;
      EXPECT_FALSE(ids.empty() && !text.empty()) << Escaped(text);
      continue;
    }
    ++compared;
    const auto expected = entry.at("ids").get<std::vector<int32_t>>();
    if (ids == expected) {
      ++matched;
    } else {
      ADD_FAILURE() << stem << " " << Escaped(text) << "\n  got      "
                    << ::testing::PrintToString(ids) << "\n  expected "
                    << ::testing::PrintToString(expected);
    }
  }
  std::printf("%s: %d/%d match llama.cpp (%d without reference)\n",
              stem.c_str(), matched, compared, unchecked);
  EXPECT_GT(compared, 0);
}

TEST_P(GoldenTest, DecodeRoundTrips) {
  const std::string stem = GetParam();
  const Tokenizer& tok = Load(GgufOf(stem));
  if (tok.model_name() == "bert") GTEST_SKIP() << "WordPiece lower-cases";
  const auto golden = nlohmann::json::parse(
      ReadFileOrDie(SharedPath("golden/tokenizer/" + stem + ".json")));
  for (const auto& entry : golden) {
    const std::string text = entry.at("text");
    if (entry.at("ids").is_null() || HasCleanedSpacing(text)) continue;
    // Phi-3's user-defined </s> eats the space after it, as in llama.cpp.
    if (stem == "ggml-vocab-phi-3" && text.find("</s> ") != std::string::npos) {
      continue;
    }
    EXPECT_EQ(tok.Decode(tok.Encode(text, false)), text)
        << stem << " " << Escaped(text);
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, GoldenTest,
                         ::testing::ValuesIn(std::vector<std::string>(
                             std::begin(kGoldenStems), std::end(kGoldenStems))),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(GoldenFilesTest, EveryGoldenFileIsCovered) {
  const auto files = SharedFiles("golden/tokenizer", ".json");
  EXPECT_EQ(files.size(), std::size(kGoldenStems));
  for (const std::string& path : files) {
    const std::string name = path.substr(path.rfind('/') + 1);
    const std::string stem = name.substr(0, name.size() - 5);
    EXPECT_THAT(kGoldenStems, ::testing::Contains(stem)) << path;
  }
}

// llama.cpp's tests/test-tokenizer-0: the .inp file holds strings separated
// by "\n__ggml_vocab_test__\n", the .out file one line of ids per string,
// tokenized with add_special = false, parse_special = false. Returns the
// number of strings checked.
size_t CheckTestVectors(const Tokenizer& tok, const std::string& inp) {
  const std::string raw = ReadFileOrDie(inp);
  std::vector<std::string> strings;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      strings.push_back(raw.substr(pos));
      break;
    }
    strings.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  const std::string out = inp.substr(0, inp.size() - 4) + ".out";
  std::vector<std::string> lines = absl::StrSplit(ReadFileOrDie(out), '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  EXPECT_EQ(strings.size(), lines.size()) << inp;
  size_t matched = 0;
  for (size_t i = 0; i < std::min(strings.size(), lines.size()); ++i) {
    std::vector<int32_t> expected;
    for (absl::string_view word :
         absl::StrSplit(lines[i], ' ', absl::SkipEmpty())) {
      expected.push_back(std::stoi(std::string(word)));
    }
    const std::vector<int32_t> ids = tok.Encode(strings[i], false, false);
    if (ids == expected) {
      ++matched;
    } else {
      ADD_FAILURE() << inp << " " << Escaped(strings[i]) << "\n  got      "
                    << ::testing::PrintToString(ids) << "\n  expected "
                    << ::testing::PrintToString(expected);
    }
    if (tok.model_name() != "bert" && !HasCleanedSpacing(strings[i])) {
      EXPECT_EQ(tok.Decode(ids), strings[i]) << inp << " " << Escaped(strings[i]);
    }
  }
  std::printf("%s: %zu/%zu match llama.cpp\n", inp.c_str(), matched,
              strings.size());
  return strings.size();
}

TEST(TestTokenizer0, MatchesEveryVocabWithAGguf) {
  int vocabularies = 0;
  for (const std::string& inp : SharedFiles("models/vocab", ".gguf.inp")) {
    const std::string gguf_path = inp.substr(0, inp.size() - 4);
    if (!std::filesystem::exists(gguf_path)) continue;
    ++vocabularies;
    EXPECT_GT(CheckTestVectors(Load(gguf_path), inp), 0u);
  }
  EXPECT_GE(vocabularies, 10);
}

// The Llama 3 tokenizer has no GGUF in ../shared, but its Hugging Face
// tokenizer.json does; converted the way convert_hf_to_gguf.py converts it
// (ids in order, added special tokens as control tokens, pre "llama-bpe") it
// must pass llama.cpp's llama-bpe vectors.
TEST(TestTokenizer0, Llama3FromHuggingFaceJson) {
  const auto hf = nlohmann::json::parse(
      ReadFileOrDie(SharedPath("models/llama3-tokenizer/tokenizer.json")));
  VocabSpec spec;
  spec.model = "gpt2";
  spec.pre = "llama-bpe";
  std::map<int64_t, std::pair<std::string, int32_t>> by_id;
  for (const auto& [text, id] : hf.at("model").at("vocab").items()) {
    by_id[id.get<int64_t>()] = {text, static_cast<int32_t>(TokenType::kNormal)};
  }
  for (const auto& added : hf.at("added_tokens")) {
    by_id[added.at("id").get<int64_t>()] = {
        added.at("content").get<std::string>(),
        static_cast<int32_t>(added.at("special").get<bool>()
                                 ? TokenType::kControl
                                 : TokenType::kUserDefined)};
  }
  ASSERT_EQ(by_id.rbegin()->first + 1, static_cast<int64_t>(by_id.size()));
  for (auto& [id, token] : by_id) {
    spec.tokens.push_back(token.first);
    spec.token_types.push_back(token.second);
  }
  for (const auto& merge : hf.at("model").at("merges")) {
    spec.merges.push_back(merge.get<std::string>());
  }
  spec.bos_id = 128000;
  spec.eos_id = 128001;
  auto tok = Tokenizer::FromSpec(spec);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->add_bos());
  EXPECT_EQ(CheckTestVectors(**tok, SharedPath("models/vocab/"
                                                "ggml-vocab-llama-bpe.gguf.inp")),
            46u);
}

// Paths in the golden JSON are relative to the folder holding shared/.
std::string SharedFileOf(const std::string& golden_path) {
  const std::string prefix = "shared/";
  return SharedPath(golden_path.substr(
      golden_path.rfind(prefix, 0) == 0 ? prefix.size() : 0));
}

// <model>/greedy.json: the prompts as llama_tokenize(add_special = true)
// gave them, and the generated text as the concatenation of
// llama_token_to_piece(id, lstrip = 0, special = false).
TEST(GreedyGolden, PromptTokensAndGeneratedText) {
  int models = 0;
  for (const std::string& dir : SharedFiles("golden", "")) {
    const std::string path = dir + "/greedy.json";
    if (!std::filesystem::exists(path)) continue;
    ++models;
    const auto golden = nlohmann::json::parse(ReadFileOrDie(path));
    const Tokenizer& tok = Load(SharedFileOf(golden.at("model_file")));
    EXPECT_EQ(tok.bos_id(), golden.at("bos_id")) << path;
    EXPECT_EQ(tok.eos_id(), golden.at("eos_id")) << path;
    EXPECT_EQ(tok.n_vocab(), golden.at("n_vocab")) << path;
    for (const auto& result : golden.at("results")) {
      const std::string prompt = result.at("prompt");
      EXPECT_EQ(tok.Encode(prompt, /*add_special=*/true),
                result.at("prompt_tokens").get<std::vector<int32_t>>())
          << path << " " << Escaped(prompt);
      std::string text;
      for (int32_t id : result.at("tokens").get<std::vector<int32_t>>()) {
        text += tok.TokenToPiece(id);
      }
      EXPECT_EQ(text, result.at("text").get<std::string>())
          << path << " " << Escaped(prompt);
    }
  }
  EXPECT_GE(models, 20);
}

// <model>/perplexity.json: n_tokens is the length of llama_tokenize(text
// minus one trailing newline, add_special = true) of a 3,000-word story file.
TEST(PerplexityGolden, TokenCountOfTheStoryFile) {
  int models = 0;
  for (const std::string& dir : SharedFiles("golden", "")) {
    const std::string path = dir + "/perplexity.json";
    if (!std::filesystem::exists(path)) continue;
    ++models;
    const auto golden = nlohmann::json::parse(ReadFileOrDie(path));
    const Tokenizer& tok = Load(SharedFileOf(golden.at("file")));
    std::string text = ReadFileOrDie(SharedFileOf(golden.at("text")));
    if (!text.empty() && text.back() == '\n') text.pop_back();
    const std::vector<int32_t> ids = tok.Encode(text, true);
    EXPECT_EQ(ids.size(), golden.at("n_tokens").get<size_t>()) << path;
    // Without the BOS: llama_detokenize strips the SPM space prefix from the
    // first piece, which with a BOS in front is the BOS's (empty) piece.
    ASSERT_FALSE(ids.empty());
    EXPECT_TRUE(tok.Decode(std::span(ids).subspan(1)) == text)
        << path << ": the story does not survive Decode(Encode())";
  }
  EXPECT_GE(models, 2);
}

// Random bytes (mostly invalid UTF-8) and special-token text never crash and
// give ids in range, on every real vocabulary.
TEST(RandomInput, NeverCrashes) {
  std::mt19937 rng(1234);
  for (const char* stem : kGoldenStems) {
    const Tokenizer& tok = Load(GgufOf(stem));
    for (int round = 0; round < 50; ++round) {
      std::string text(rng() % 64, '\0');
      for (char& c : text) c = static_cast<char>(rng());
      if (round % 5 == 0) text += "<s></s><|endoftext|>[CLS]▁ ";
      for (bool add_special : {false, true}) {
        for (bool parse_special : {false, true}) {
          const auto ids = tok.Encode(text, add_special, parse_special);
          ExpectInRange(tok, ids);
          (void)tok.Decode(ids, parse_special);
        }
      }
    }
  }
}

}  // namespace
}  // namespace layerpool
