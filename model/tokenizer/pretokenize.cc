#include "model/tokenizer/pretokenize.h"

#include <array>
#include <span>
#include <variant>

#include "model/tokenizer/split.h"
#include "model/tokenizer/unicode.h"

namespace layerpool::tokenizer {
namespace {

// Character ranges of llama.cpp's expressions, as code points.
constexpr CodepointRange kCrLf[] = {{'\n', '\n'}, {'\r', '\r'}};
constexpr CodepointRange kAsciiDigits[] = {{'0', '9'}};
constexpr CodepointRange kDefaultSymbols[] = {  // \$\+<=>\^~\|
    {'$', '$'}, {'+', '+'}, {'<', '>'}, {'^', '^'}, {'|', '|'}, {'~', '~'}};
constexpr CodepointRange kFalconSymbols[] = {  // \$\+<=>\^~\|`
    {'$', '$'}, {'+', '+'}, {'<', '>'}, {'^', '^'},
    {'`', '`'}, {'|', '|'}, {'~', '~'}};
// [一-龥ࠀ-一가-퟿]
constexpr CodepointRange kDeepseekCjk[] = {
    {0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
// [!-/:-~！-／：-～‘-‟　-。]
constexpr CodepointRange kDeepseekPunct[] = {
    {0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F},
    {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
// DeepSeek-LLM's letter class [A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]: cased letters,
// written out range by range in the source expression.
constexpr CodepointRange kDeepseekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},
    {0xC0, 0xD6},       {0xD8, 0xF6},       {0xF8, 0x1BA},
    {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},
    {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},
    {0x3F7, 0x481},     {0x48A, 0x52F},     {0x531, 0x556},
    {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},
    {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},
    {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},
    {0x1FB6, 0x1FBC},   {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},
    {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},
    {0x2126, 0x2126},   {0x2128, 0x2128},   {0x212A, 0x212D},
    {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},
    {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},
    {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2},
    {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

RunPattern Run(CharClass cls, size_t min_count = 1,
               size_t max_count = SIZE_MAX) {
  return RunPattern{.optional_space_prefix = false,
                    .cls = cls,
                    .min_count = min_count,
                    .max_count = max_count};
}
RunPattern SpaceThenRun(CharClass cls) {
  RunPattern p = Run(cls);
  p.optional_space_prefix = true;
  return p;
}

// One expression of a pre-tokenizer's list.
struct Gpt2Split {};
struct Llama3Split {
  size_t max_digits;
};
struct TekkenSplit {};
using Step = std::variant<Gpt2Split, Llama3Split, TekkenSplit, RunPattern>;

std::vector<Step> Steps(PreType type) {
  const CharClass numbers{kNumber, {}};
  switch (type) {
    case PreType::kGpt2:
      return {Gpt2Split{}};
    case PreType::kLlama3:
      return {Llama3Split{3}};
    case PreType::kQwen2:
      return {Llama3Split{1}};
    case PreType::kTekken:
      return {TekkenSplit{}};
    case PreType::kStarcoder:  // "\p{N}", then GPT-2
      return {Run(numbers, 1, 1), Gpt2Split{}};
    case PreType::kFalcon:  // "[\p{P}\$\+<=>\^~\|`]+", GPT-2, "[0-9][0-9][0-9]"
      return {Run({kPunctuation, kFalconSymbols}), Gpt2Split{},
              Run({0, kAsciiDigits}, 3, 3)};
    case PreType::kDeepseekLlm:
      return {Run({0, kCrLf}, 1, 1),
              SpaceThenRun({0, kDeepseekLetters}),
              SpaceThenRun({0, kDeepseekPunct}),
              RunPattern{.cls = {kWhitespace, {}}, .at_end = true},  // \s+$
              Run({0, kDeepseekCjk}),
              Run(numbers)};
    case PreType::kDeepseekCoder:
      return {Run({0, kCrLf}, 1, 1), SpaceThenRun({kLetter, {}}),
              SpaceThenRun({kPunctuation, {}}), Run({0, kDeepseekCjk}),
              Run(numbers, 1, 1)};
    case PreType::kDefault:
      break;
  }
  // "[\p{P}\$\+<=>\^~\|]+", GPT-2, "\p{N}+", "[0-9][0-9][0-9]"
  return {Run({kPunctuation, kDefaultSymbols}), Gpt2Split{}, Run(numbers),
          Run({0, kAsciiDigits}, 3, 3)};
}

Segments Split(PreType type, const std::vector<uint32_t>& cpts) {
  Segments segments;
  if (!cpts.empty()) segments.push_back(cpts.size());
  for (const Step& step : Steps(type)) {
    if (std::holds_alternative<Gpt2Split>(step)) {
      segments = SplitGpt2(cpts, segments);
    } else if (std::holds_alternative<TekkenSplit>(step)) {
      segments = SplitTekken(cpts, segments);
    } else if (const auto* llama3 = std::get_if<Llama3Split>(&step)) {
      segments = SplitLlama3(cpts, segments, llama3->max_digits);
    } else {
      segments = SplitPattern(cpts, segments, std::get<RunPattern>(step));
    }
  }
  return segments;
}

struct NamedPre {
  std::string_view name;
  PreTokenizerConfig config;
};

constexpr PreTokenizerConfig Pre(PreType type) { return {.type = type}; }
constexpr PreTokenizerConfig NoClean(PreType type) {
  return {.type = type, .clean_spaces = false};
}
constexpr PreTokenizerConfig kLlama3Config{
    .type = PreType::kLlama3, .ignore_merges = true, .force_add_bos = true};

// tokenizer.ggml.pre names as llama.cpp's llama_vocab::load knew them in
// February 2025, restricted to the expression lists implemented here.
constexpr NamedPre kPreTokenizers[] = {
    {"default", Pre(PreType::kDefault)},
    {"llama3", kLlama3Config},
    {"llama-v3", kLlama3Config},
    {"llama-bpe", kLlama3Config},
    {"falcon3", kLlama3Config},
    {"deepseek-llm", NoClean(PreType::kDeepseekLlm)},
    {"deepseek-coder", NoClean(PreType::kDeepseekCoder)},
    {"falcon", Pre(PreType::kFalcon)},
    {"mpt", Pre(PreType::kGpt2)},
    {"starcoder", Pre(PreType::kStarcoder)},
    {"gpt-2", Pre(PreType::kGpt2)},
    {"phi-2", Pre(PreType::kGpt2)},
    {"jina-es", Pre(PreType::kGpt2)},
    {"jina-de", Pre(PreType::kGpt2)},
    {"gigachat", Pre(PreType::kGpt2)},
    {"jina-v1-en", Pre(PreType::kGpt2)},
    {"jina-v2-es", Pre(PreType::kGpt2)},
    {"jina-v2-de", Pre(PreType::kGpt2)},
    {"jina-v2-code", Pre(PreType::kGpt2)},
    {"roberta-bpe", Pre(PreType::kGpt2)},
    {"refact", Pre(PreType::kStarcoder)},
    {"command-r", NoClean(PreType::kStarcoder)},
    {"qwen2", NoClean(PreType::kQwen2)},
    {"deepseek-r1-qwen", NoClean(PreType::kQwen2)},
    {"stablelm2", Pre(PreType::kQwen2)},
    {"olmo", Pre(PreType::kGpt2)},
    {"dbrx", Pre(PreType::kLlama3)},
    {"smaug-bpe", Pre(PreType::kLlama3)},
    {"chatglm-bpe", {.type = PreType::kLlama3, .no_bos = true}},
    {"jais", Pre(PreType::kGpt2)},
    {"smollm", NoClean(PreType::kStarcoder)},
    {"codeshell", Pre(PreType::kStarcoder)},
    {"exaone", Pre(PreType::kStarcoder)},
    {"minerva-7b", Pre(PreType::kStarcoder)},
    {"megrez", Pre(PreType::kQwen2)},
    {"tekken", {.type = PreType::kTekken, .ignore_merges = true, .clean_spaces = false,
                .force_add_bos = true}},
};

}  // namespace

std::optional<PreTokenizerConfig> FindPreTokenizer(std::string_view name) {
  if (name.empty()) name = "default";
  for (const NamedPre& entry : kPreTokenizers) {
    if (entry.name == name) return entry.config;
  }
  return std::nullopt;
}

std::vector<size_t> PreTokenizeLengths(PreType type, std::string_view text) {
  return Split(type, DecodeUtf8(text));
}

std::vector<std::string> PreTokenize(PreType type, std::string_view text) {
  const std::vector<uint32_t> cpts = DecodeUtf8(text);
  const Segments segments = Split(type, cpts);
  std::vector<std::string> words;
  words.reserve(segments.size());
  size_t pos = 0;
  std::string utf8;
  for (size_t length : segments) {
    utf8.clear();
    for (size_t i = pos; i < pos + length; ++i) AppendUtf8(cpts[i], &utf8);
    pos += length;
    std::string& word = words.emplace_back();
    for (char byte : utf8) word += ByteToUnicode(static_cast<uint8_t>(byte));
  }
  return words;
}

}  // namespace layerpool::tokenizer
