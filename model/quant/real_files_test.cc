// The reference (de)quantizers against llama.cpp's own output: the GGUF files
// in ../shared/models were written by llama-quantize (llama.cpp c392e50,
// no importance matrix) from known float weights, so
//  - dequantizing them must land within each format's error of those
//    weights, at the format's exact bits per weight, and
//  - quantizing those weights with QuantizeRow must give the files' bytes.
// See ../shared/models/SOURCES.md §6 for how each file was made.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "model/gguf/gguf.h"
#include "model/quant/dequantize.h"
#include "model/quant/quantize.h"
#include "model/quant/types.h"
#include "tests/support/shared_data.h"

namespace layerpool {
namespace {

using gguf::GgufFile;
using gguf::TensorInfo;

std::string TypeName(GgmlType type) {
  return std::string(GetTypeTraits(type)->name);
}

std::unique_ptr<GgufFile> OpenOrFail(const std::string& relative) {
  auto file = GgufFile::Open(testing::SharedPath(relative));
  EXPECT_TRUE(file.ok()) << relative << ": " << file.status();
  return file.ok() ? std::move(file).value() : nullptr;
}

std::span<const uint8_t> Bytes(const GgufFile& file, const TensorInfo& t) {
  auto data = file.TensorData(t);
  EXPECT_TRUE(data.ok()) << t.name << ": " << data.status();
  return data.ok() ? *data : std::span<const uint8_t>();
}

std::vector<float> ToFloats(const GgufFile& file, const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements));
  const std::span<const uint8_t> bytes = Bytes(file, t);
  if (static_cast<int64_t>(bytes.size()) != RowBytes(t.type, t.n_elements)) {
    ADD_FAILURE() << t.name << ": " << bytes.size() << " bytes of data";
    return out;
  }
  EXPECT_TRUE(DequantizeRow(t.type, bytes.data(), out.data(), t.n_elements))
      << t.name << " (" << TypeName(t.type) << ")";
  return out;
}

// All tensors of a file as floats, by name.
using Weights = std::map<std::string, std::vector<float>>;

Weights AllFloats(const GgufFile& file) {
  Weights out;
  for (const TensorInfo& t : file.tensors()) out[t.name] = ToFloats(file, t);
  return out;
}

// The synth-12L weights: its F16 file holds exactly the float values
// llama-quantize started from (the matrices were rounded to half first).
const Weights& SynthWeights() {
  static const Weights* weights = [] {
    auto file = OpenOrFail("models/synth-12L/synth-12L-F16.gguf");
    return new Weights(file ? AllFloats(*file) : Weights());
  }();
  return *weights;
}

const Weights& TinyStoriesWeights() {
  static const Weights* weights = [] {
    auto file = OpenOrFail("models/tinystories-656K/TinyStories-656K-F32.gguf");
    return new Weights(file ? AllFloats(*file) : Weights());
  }();
  return *weights;
}

double RelativeRms(const std::vector<float>& want,
                   const std::vector<float>& got) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double e = static_cast<double>(got[i]) - want[i];
    err += e * e;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(err / norm);
}

// Bound on the relative RMS error of a whole tensor (sqrt of summed squared
// error over summed squared weight). The synth-12L weights are i.i.d.
// normal, so the expected errors are those derived for the round-trip test
// in quant_test.cc from each format's step; the bounds are the worst tensor
// measured here (the test prints them) plus ~30%.
double SynthErrorBound(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
      return 0.0;  // the F16 values are the original ones
    case GgmlType::kQ8_0:
      return 0.007;  // measured 0.0054
    case GgmlType::kQ6_K:
      return 0.023;  // measured 0.0179
    case GgmlType::kQ5_K:
      return 0.047;  // measured 0.0364
    case GgmlType::kQ4_0:
      return 0.11;  // measured 0.0866
    case GgmlType::kQ4_K:
      return 0.093;  // measured 0.0719
    case GgmlType::kIQ4_NL:
    case GgmlType::kIQ4_XS:
      // Measured 0.0767 / 0.0772: the non-linear levels, denser near zero
      // where normal weights are, beat Q4_0's uniform grid at the same size.
      return 0.1;
    case GgmlType::kQ3_K:
      return 0.2;  // measured 0.153
    case GgmlType::kQ2_K:
      return 0.39;  // measured 0.300
    default:
      return -1;  // no such tensors expected
  }
}

// Per type: tensors seen, worst relative RMS error.
struct ErrorStats {
  int tensors = 0;
  double worst = 0;
};

void CheckFileAgainstWeights(const GgufFile& file, const Weights& weights,
                             double (*bound)(GgmlType),
                             std::map<GgmlType, ErrorStats>* stats) {
  for (const TensorInfo& t : file.tensors()) {
    SCOPED_TRACE(t.name + " (" + TypeName(t.type) + ")");
    auto it = weights.find(t.name);
    ASSERT_NE(it, weights.end());
    ASSERT_EQ(static_cast<int64_t>(it->second.size()), t.n_elements);
    ASSERT_TRUE(CanDequantize(t.type));
    // Bits per weight: size_bytes * 8 / n_elements must be the format's
    // type_size * 8 / block_size (compared as cross products, exactly).
    const TypeTraits traits = *GetTypeTraits(t.type);
    EXPECT_EQ(static_cast<int64_t>(t.size_bytes) * traits.block_size,
              t.n_elements * traits.type_size);
    const double rms = RelativeRms(it->second, ToFloats(file, t));
    const double limit = bound(t.type);
    ASSERT_GE(limit, 0) << "unexpected type";
    EXPECT_LE(rms, limit);
    ErrorStats& s = (*stats)[t.type];
    ++s.tensors;
    s.worst = std::max(s.worst, rms);
  }
}

void PrintStats(const std::string& what,
                const std::map<GgmlType, ErrorStats>& stats) {
  for (const auto& [type, s] : stats) {
    const TypeTraits traits = *GetTypeTraits(type);
    std::printf("%s %-6s %3d tensors, %.4g bits/weight, worst rel. RMS %.4g\n",
                what.c_str(), std::string(traits.name).c_str(), s.tensors,
                8.0 * traits.type_size / traits.block_size, s.worst);
  }
}

// Quantizes every tensor of `file` whose type QuantizeRow can produce from
// `weights` and compares the bytes block by block. Mismatching blocks fail
// the test. Returns, per type, the number of byte-identical tensors.
std::map<GgmlType, int> CheckRequantization(const GgufFile& file,
                                            const Weights& weights) {
  std::map<GgmlType, int> identical;
  for (const TensorInfo& t : file.tensors()) {
    if (!IsQuantizable(t.type)) continue;
    SCOPED_TRACE(t.name + " (" + TypeName(t.type) + ")");
    const auto src = weights.find(t.name);
    const std::span<const uint8_t> want = Bytes(file, t);
    if (src == weights.end() ||
        static_cast<int64_t>(want.size()) != RowBytes(t.type, t.n_elements)) {
      ADD_FAILURE() << "no weights or wrong size (" << want.size() << ")";
      continue;
    }
    std::vector<uint8_t> got(want.size());
    if (!QuantizeRow(t.type, src->second.data(), got.data(), t.n_elements)) {
      ADD_FAILURE() << "QuantizeRow refused the tensor";
      continue;
    }
    const size_t block_bytes = GetTypeTraits(t.type)->type_size;
    int64_t bad_blocks = 0, first_bad = -1;
    for (size_t off = 0; off < want.size(); off += block_bytes) {
      if (std::memcmp(want.data() + off, got.data() + off, block_bytes) != 0) {
        if (first_bad < 0) first_bad = static_cast<int64_t>(off / block_bytes);
        ++bad_blocks;
      }
    }
    EXPECT_EQ(bad_blocks, 0) << "of " << want.size() / block_bytes
                             << " blocks differ; first: block " << first_bad;
    if (bad_blocks == 0) ++identical[t.type];
  }
  return identical;
}

void PrintIdentical(const std::string& what,
                    const std::map<GgmlType, int>& identical) {
  for (const auto& [type, count] : identical) {
    std::printf("%s: %d %s tensors byte-identical to llama-quantize\n",
                what.c_str(), count, TypeName(type).c_str());
  }
}

// -------------------------------------------------------------- synth-12L

class SynthFileTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Path() const {
    return "models/synth-12L/synth-12L-" + GetParam() + ".gguf";
  }
};

TEST_P(SynthFileTest, DequantizesWithinTheFormatsError) {
  auto file = OpenOrFail(Path());
  ASSERT_NE(file, nullptr);
  ASSERT_FALSE(SynthWeights().empty());
  EXPECT_EQ(file->tensors().size(), SynthWeights().size());
  std::map<GgmlType, ErrorStats> stats;
  CheckFileAgainstWeights(*file, SynthWeights(), SynthErrorBound, &stats);
  PrintStats(GetParam(), stats);
}

TEST_P(SynthFileTest, RequantizesByteIdentically) {
  auto file = OpenOrFail(Path());
  ASSERT_NE(file, nullptr);
  ASSERT_FALSE(SynthWeights().empty());
  const std::map<GgmlType, int> identical =
      CheckRequantization(*file, SynthWeights());
  PrintIdentical(GetParam(), identical);
  // Every tensor must be byte-identical, except the IQ4 ones, which
  // QuantizeRow does not produce.
  int total = 0;
  for (const auto& [type, count] : identical) total += count;
  int iq4 = 0;
  for (const TensorInfo& t : file->tensors()) {
    iq4 += t.type == GgmlType::kIQ4_NL || t.type == GgmlType::kIQ4_XS;
  }
  EXPECT_EQ(total + iq4, static_cast<int>(file->tensors().size()));
}

INSTANTIATE_TEST_SUITE_P(AllQuantizations, SynthFileTest,
                         ::testing::Values("F16", "Q8_0", "Q6_K", "Q5_K_M",
                                           "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0",
                                           "IQ4_NL", "IQ4_XS", "Q3_K_M",
                                           "Q3_K_S", "Q2_K"));

// ---------------------------------------------------------- TinyStories

// Trained weights (rows of 128 or 384). Bounds are the worst tensor
// measured plus ~30%; the errors are close to the Gaussian ones.
double TinyStoriesErrorBound(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 0.0;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      // Measured 0: every weight of this model is exactly representable in
      // both bf16 and f16 (it was evidently stored from bf16), so these files
      // are lossless and their byte checks exercise no rounding (that is
      // blocks_test.cc's job).
      return 0.0;
    case GgmlType::kQ8_0:
      return 0.0075;  // measured 0.0058
    case GgmlType::kQ5_0:
      return 0.06;  // measured 0.0463
    case GgmlType::kQ5_1:
      return 0.05;  // measured 0.0388
    case GgmlType::kQ4_0:
      return 0.12;  // measured 0.0921
    case GgmlType::kQ4_1:
      return 0.105;  // measured 0.0807
    default:
      return -1;
  }
}

class TinyStoriesFileTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Path() const {
    return "models/tinystories-656K/TinyStories-656K-" + GetParam() + ".gguf";
  }
};

TEST_P(TinyStoriesFileTest, DequantizesWithinTheFormatsError) {
  auto file = OpenOrFail(Path());
  ASSERT_NE(file, nullptr);
  ASSERT_FALSE(TinyStoriesWeights().empty());
  std::map<GgmlType, ErrorStats> stats;
  CheckFileAgainstWeights(*file, TinyStoriesWeights(), TinyStoriesErrorBound,
                          &stats);
  PrintStats(GetParam(), stats);
}

// SOURCES.md §6.2: the F32 file quantized by llama-quantize gives these
// files; -Q8_0-requant and the original Q8_0 file from Hugging Face share
// their tensor bytes.
TEST_P(TinyStoriesFileTest, RequantizesByteIdentically) {
  auto file = OpenOrFail(Path());
  ASSERT_NE(file, nullptr);
  ASSERT_FALSE(TinyStoriesWeights().empty());
  const std::map<GgmlType, int> identical =
      CheckRequantization(*file, TinyStoriesWeights());
  PrintIdentical(GetParam(), identical);
  int total = 0;
  for (const auto& [type, count] : identical) total += count;
  EXPECT_EQ(total, static_cast<int>(file->tensors().size()));
}

INSTANTIATE_TEST_SUITE_P(AllQuantizations, TinyStoriesFileTest,
                         ::testing::Values("Q8_0-requant", "Q8_0", "F16",
                                           "BF16", "Q5_1", "Q5_0", "Q4_1",
                                           "Q4_0"));

}  // namespace
}  // namespace layerpool
