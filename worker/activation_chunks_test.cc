#include "worker/activation_chunks.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kEmbd = 4;

ChunkLimits HiddenLimits() {
  ChunkLimits limits;
  limits.n_embd = kEmbd;
  limits.n_vocab = 100;
  limits.max_rows = 16;
  limits.max_samples = 4;
  limits.last_stage = true;
  return limits;
}

AssembledBatch SomeBatch(size_t rows) {
  AssembledBatch batch;
  batch.id = 7;
  for (size_t r = 0; r < rows; ++r) {
    batch.seq_ids.push_back(100 + r % 2);
    batch.positions.push_back(static_cast<int32_t>(r / 2));
  }
  v1::SampleSpec spec;
  spec.set_row(static_cast<uint32_t>(rows - 1));
  spec.mutable_sampling()->set_temperature(0);
  spec.add_recent_tokens(3);
  batch.samples.push_back(spec);
  return batch;
}

std::vector<float> SomeHidden(size_t rows) {
  std::vector<float> hidden(rows * kEmbd);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = 0.25f * i - 3;
  return hidden;
}

// Encoding then assembling gives back the rows, positions, samples and
// values; f16 and bf16 values here are exactly representable.
TEST(ActivationChunksTest, RoundTripsThroughSeveralChunks) {
  for (v1::ElementType type :
       {v1::ELEMENT_TYPE_F32, v1::ELEMENT_TYPE_F16, v1::ELEMENT_TYPE_BF16}) {
    const AssembledBatch batch = SomeBatch(9);
    const std::vector<float> hidden = SomeHidden(9);
    // Room for about two rows per message.
    absl::StatusOr<std::vector<v1::ActivationChunk>> chunks =
        EncodeChunks(batch, hidden, kEmbd, type, 128 + 2 * (16 + 16) + 20);
    ASSERT_TRUE(chunks.ok()) << chunks.status();
    ASSERT_GT(chunks->size(), 3u);
    ChunkAssembler assembler(HiddenLimits());
    for (size_t c = 0; c < chunks->size(); ++c) {
      absl::StatusOr<bool> done = assembler.Add((*chunks)[c]);
      ASSERT_TRUE(done.ok()) << done.status();
      EXPECT_EQ(*done, c + 1 == chunks->size());
    }
    const AssembledBatch back = assembler.Take();
    EXPECT_EQ(back.id, 7u);
    EXPECT_EQ(back.seq_ids, batch.seq_ids);
    EXPECT_EQ(back.positions, batch.positions);
    EXPECT_EQ(back.hidden, hidden);
    ASSERT_EQ(back.samples.size(), 1u);
    EXPECT_EQ(back.samples[0].row(), 8u);
    EXPECT_EQ(back.samples[0].recent_tokens_size(), 1);
    EXPECT_EQ(back.last_chunk_index, chunks->size() - 1);
  }
}

// Rounding types change values exactly as RoundTripWire says, within
// their precision; Q8_0 needs whole blocks of 32.
TEST(ActivationChunksTest, RoundingTypesMatchRoundTripWire) {
  constexpr int64_t kWide = 64;
  ChunkLimits limits = HiddenLimits();
  limits.n_embd = kWide;
  const AssembledBatch batch = SomeBatch(3);
  std::vector<float> hidden(3 * kWide);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = std::sin(0.37f * i) * (1 + i % 7);
  struct Case {
    v1::ElementType type;
    size_t row_bytes;
    float tolerance;  // relative to the row's largest magnitude
  };
  for (const Case& c : {Case{v1::ELEMENT_TYPE_F16, 128, 1e-3f}, Case{v1::ELEMENT_TYPE_BF16, 128, 8e-3f},
                        Case{v1::ELEMENT_TYPE_Q8_0, 68, 1.0f / 127}}) {
    SCOPED_TRACE(WireTypeName(c.type));
    EXPECT_EQ(WireRowBytes(c.type, kWide), c.row_bytes);
    auto chunks = EncodeChunks(batch, hidden, kWide, c.type, 1 << 20);
    ASSERT_TRUE(chunks.ok()) << chunks.status();
    ASSERT_EQ(chunks->size(), 1u);
    EXPECT_EQ((*chunks)[0].hidden().data().size(), 3 * c.row_bytes);
    ChunkAssembler assembler(limits);
    ASSERT_TRUE(*assembler.Add((*chunks)[0]));
    const AssembledBatch back = assembler.Take();
    std::vector<float> expected = hidden;
    ASSERT_TRUE(RoundTripWire(c.type, expected, kWide));
    EXPECT_EQ(back.hidden, expected);
    EXPECT_NE(back.hidden, hidden) << "these values do not survive rounding unchanged";
    for (size_t i = 0; i < hidden.size(); ++i) {
      EXPECT_NEAR(back.hidden[i], hidden[i], c.tolerance * 7) << i;
    }
  }
  EXPECT_EQ(WireRowBytes(v1::ELEMENT_TYPE_Q8_0, 48), 0u) << "not whole blocks";
  EXPECT_FALSE(EncodeChunks(batch, SomeHidden(3), kEmbd, v1::ELEMENT_TYPE_Q8_0, 1 << 20).ok());
  // A Q8_0 chunk for a 4-wide model is refused, naming the field.
  v1::ActivationChunk chunk = (*EncodeChunks(batch, SomeHidden(3), kEmbd, v1::ELEMENT_TYPE_F32,
                                             1 << 20))[0];
  chunk.mutable_hidden()->set_element_type(v1::ELEMENT_TYPE_Q8_0);
  ChunkAssembler assembler(HiddenLimits());
  absl::StatusOr<bool> refused = assembler.Add(chunk);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("hidden.element_type"));
}

TEST(ActivationChunksTest, EachChunkStaysUnderTheLimit) {
  const AssembledBatch batch = SomeBatch(64);
  const std::vector<float> hidden = SomeHidden(64);
  const size_t limit = 600;
  auto chunks = EncodeChunks(batch, hidden, kEmbd, v1::ELEMENT_TYPE_F32, limit);
  ASSERT_TRUE(chunks.ok());
  for (const v1::ActivationChunk& c : *chunks)
    EXPECT_LE(c.ByteSizeLong(), limit);
  EXPECT_EQ(EncodeChunks(batch, hidden, kEmbd, v1::ELEMENT_TYPE_F32, 100)
                .status()
                .code(),
            absl::StatusCode::kResourceExhausted);
}

v1::ActivationChunk GoodChunk() {
  const AssembledBatch batch = SomeBatch(2);
  auto chunks =
      EncodeChunks(batch, SomeHidden(2), kEmbd, v1::ELEMENT_TYPE_F32, 1 << 20);
  return (*chunks)[0];
}

absl::Status AddOne(v1::ActivationChunk chunk,
                    ChunkLimits limits = HiddenLimits()) {
  ChunkAssembler assembler(limits);
  return assembler.Add(chunk).status();
}

TEST(ActivationChunksTest, RefusesMalformedChunksNamingTheField) {
  ASSERT_TRUE(AddOne(GoodChunk()).ok());
  struct Case {
    void (*mutate)(v1::ActivationChunk&);
    const char* message;
  } cases[] = {
      {[](v1::ActivationChunk& c) { c.mutable_hidden()->set_hidden_size(3); },
       "hidden.hidden_size is 3, this model's n_embd is 4"},
      {[](v1::ActivationChunk& c) {
         c.mutable_hidden()->mutable_data()->pop_back();
       },
       "hidden.data holds 31 bytes, expected 2 rows x 16 bytes"},
      {[](v1::ActivationChunk& c) {
         c.mutable_hidden()->set_element_type(v1::ELEMENT_TYPE_UNSPECIFIED);
       },
       "hidden.element_type ELEMENT_TYPE_UNSPECIFIED"},
      {[](v1::ActivationChunk& c) { c.clear_hidden(); }, "carries none"},
      {[](v1::ActivationChunk& c) { c.add_positions(2); },
       "positions has 3 entries, seq_ids 2"},
      {[](v1::ActivationChunk& c) { c.set_positions(0, -1); },
       "positions[0] is negative"},
      {[](v1::ActivationChunk& c) { c.set_chunk_count(0); }, "chunk_count 0"},
      {[](v1::ActivationChunk& c) {
         c.set_chunk_index(1);
         c.set_chunk_count(2);
       },
       "chunk_index 1 starts a micro-batch"},
      {[](v1::ActivationChunk& c) { c.mutable_samples(0)->set_row(2); },
       "samples[0].row 2 is outside the chunk's 2 rows"},
      {[](v1::ActivationChunk& c) {
         c.mutable_samples(0)->mutable_sampling()->set_top_p(1.5f);
       },
       "samples[0].sampling.top_p must be in (0, 1], got 1.5"},
      {[](v1::ActivationChunk& c) {
         c.clear_seq_ids();
         c.clear_positions();
       },
       "seq_ids is empty"},
  };
  for (const Case& c : cases) {
    v1::ActivationChunk chunk = GoodChunk();
    c.mutate(chunk);
    absl::Status status = AddOne(chunk);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
    EXPECT_THAT(status.message(), HasSubstr("micro-batch 7 chunk"));
  }
}

TEST(ActivationChunksTest, FirstStageChecksTokenIds) {
  ChunkLimits limits = HiddenLimits();
  limits.first_stage = true;
  v1::ActivationChunk chunk = GoodChunk();
  EXPECT_THAT(AddOne(chunk, limits).message(), HasSubstr("takes token_ids"));
  chunk.mutable_token_ids()->add_ids(5);
  chunk.mutable_token_ids()->add_ids(100);
  EXPECT_THAT(
      AddOne(chunk, limits).message(),
      HasSubstr("token_ids[1] = 100 is outside the vocabulary [0, 100)"));
  chunk.mutable_token_ids()->set_ids(1, 99);
  EXPECT_TRUE(AddOne(chunk, limits).ok());
  chunk.mutable_token_ids()->add_ids(1);
  EXPECT_THAT(AddOne(chunk, limits).message(), HasSubstr("3 ids for 2 rows"));
}

TEST(ActivationChunksTest, BoundsRowsSamplesAndOrder) {
  ChunkLimits limits = HiddenLimits();
  limits.max_rows = 1;
  EXPECT_THAT(AddOne(GoodChunk(), limits).message(),
              HasSubstr("exceeds 1 rows"));
  limits = HiddenLimits();
  limits.max_samples = 0;
  EXPECT_THAT(AddOne(GoodChunk(), limits).message(),
              HasSubstr("more than 0 samples"));

  // Chunks of one micro-batch come in order, without another's between.
  ChunkAssembler split(HiddenLimits());
  v1::ActivationChunk chunk = GoodChunk();
  chunk.set_chunk_count(3);
  ASSERT_TRUE(split.Add(chunk).ok());
  chunk = GoodChunk();
  chunk.set_chunk_count(3);
  chunk.set_chunk_index(2);
  EXPECT_THAT(split.Add(chunk).status().message(),
              HasSubstr("chunk_index 2 out of order (expected 1)"));

  ChunkAssembler interleaved(HiddenLimits());
  chunk = GoodChunk();
  chunk.set_chunk_count(2);
  ASSERT_TRUE(interleaved.Add(chunk).ok());
  chunk = GoodChunk();
  chunk.set_micro_batch_id(8);
  EXPECT_THAT(interleaved.Add(chunk).status().message(),
              HasSubstr("arrived before micro-batch 7 was complete"));
}

}  // namespace
}  // namespace layerpool
