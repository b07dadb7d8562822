#include "worker/activation_chunks.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "proto/convert.h"
#include "transport/hidden_wire.h"

namespace layerpool {

absl::StatusOr<bool> ChunkAssembler::Add(v1::ActivationChunk& chunk) {
  const std::string where = absl::StrCat("micro-batch ", chunk.micro_batch_id(),
                                         " chunk ", chunk.chunk_index());
  auto invalid = [&](auto&&... what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what...));
  };
  if (!in_progress_) {
    if (chunk.chunk_count() < 1 ||
        chunk.chunk_count() > kMaxChunksPerMicroBatch) {
      return invalid("chunk_count ", chunk.chunk_count(), " is not in [1, ",
                     kMaxChunksPerMicroBatch, "]");
    }
    if (chunk.chunk_index() != 0) {
      return invalid("chunk_index ", chunk.chunk_index(),
                     " starts a micro-batch (expected 0)");
    }
    batch_ = AssembledBatch();
    batch_.id = chunk.micro_batch_id();
    chunk_count_ = chunk.chunk_count();
    next_chunk_ = 0;
  } else {
    if (chunk.micro_batch_id() != batch_.id) {
      return invalid("micro_batch_id arrived before micro-batch ", batch_.id,
                     " was complete (", next_chunk_, " of ", chunk_count_,
                     " chunks)");
    }
    if (chunk.chunk_count() != chunk_count_) {
      return invalid("chunk_count ", chunk.chunk_count(),
                     " differs from the micro-batch's first chunk (",
                     chunk_count_, ")");
    }
    if (chunk.chunk_index() != next_chunk_) {
      return invalid("chunk_index ", chunk.chunk_index(), " out of order (",
                     "expected ", next_chunk_, ")");
    }
  }
  in_progress_ = true;

  const size_t rows = static_cast<size_t>(chunk.seq_ids_size());
  if (rows == 0) return invalid("seq_ids is empty (a chunk holds >= 1 row)");
  if (static_cast<size_t>(chunk.positions_size()) != rows) {
    return invalid("positions has ", chunk.positions_size(),
                   " entries, seq_ids ", rows);
  }
  if (batch_.rows() + rows > static_cast<size_t>(limits_.max_rows)) {
    return invalid("the micro-batch exceeds ", limits_.max_rows, " rows");
  }
  for (size_t i = 0; i < rows; ++i) {
    if (chunk.positions(static_cast<int>(i)) < 0) {
      return invalid("positions[", i, "] is negative (",
                     chunk.positions(static_cast<int>(i)), ")");
    }
  }
  if (absl::Status s = AddPayload(chunk, rows); !s.ok()) {
    return invalid(s.message());
  }
  if (batch_.samples.size() + static_cast<size_t>(chunk.samples_size()) >
      static_cast<size_t>(limits_.max_samples)) {
    return invalid("the micro-batch has more than ", limits_.max_samples,
                   " samples (at most one per live sequence)");
  }
  const size_t row_base = batch_.rows();
  for (int i = 0; i < chunk.samples_size(); ++i) {
    v1::SampleSpec& spec = *chunk.mutable_samples(i);
    if (spec.row() >= rows) {
      return invalid("samples[", i, "].row ", spec.row(),
                     " is outside the chunk's ", rows, " rows");
    }
    if (limits_.last_stage) {
      absl::StatusOr<SamplingParams> params =
          SamplingFromProto(spec.sampling());
      if (!params.ok()) {
        return invalid("samples[", i, "].", params.status().message());
      }
    }
    spec.set_row(static_cast<uint32_t>(row_base + spec.row()));
    batch_.samples.push_back(std::move(spec));
  }
  if (batch_.embed_seq_ids.size() + static_cast<size_t>(chunk.embed_seq_ids_size()) >
      static_cast<size_t>(limits_.max_samples)) {
    return invalid("the micro-batch lists more than ", limits_.max_samples,
                   " embedding sequences (at most one per live sequence)");
  }
  batch_.embed_seq_ids.insert(batch_.embed_seq_ids.end(), chunk.embed_seq_ids().begin(),
                              chunk.embed_seq_ids().end());
  for (int i = 0; i < chunk.one_token_rows_size(); ++i) {
    const uint32_t row = chunk.one_token_rows(i);
    if (row >= rows) {
      return invalid("one_token_rows[", i, "] ", row, " is outside the chunk's ", rows, " rows");
    }
    batch_.one_token_rows.push_back(static_cast<int64_t>(row_base + row));
  }
  batch_.seq_ids.insert(batch_.seq_ids.end(), chunk.seq_ids().begin(),
                        chunk.seq_ids().end());
  batch_.positions.insert(batch_.positions.end(), chunk.positions().begin(),
                          chunk.positions().end());

  ++next_chunk_;
  if (next_chunk_ < chunk_count_) return false;
  batch_.last_chunk_index = chunk.chunk_index();
  batch_.arrived = std::chrono::steady_clock::now();
  in_progress_ = false;
  return true;
}

absl::Status ChunkAssembler::AddPayload(v1::ActivationChunk& chunk,
                                        size_t rows) {
  if (limits_.first_stage) {
    if (!chunk.has_token_ids()) {
      return absl::InvalidArgumentError(
          "the first stage takes token_ids, the chunk carries none");
    }
    const auto& ids = chunk.token_ids().ids();
    if (static_cast<size_t>(ids.size()) != rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token_ids has ", ids.size(), " ids for ", rows, " rows"));
    }
    for (int i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= limits_.n_vocab) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token_ids[", i, "] = ", ids[i], " is outside the vocabulary [0, ",
            limits_.n_vocab, ")"));
      }
    }
    batch_.tokens.insert(batch_.tokens.end(), ids.begin(), ids.end());
    return absl::OkStatus();
  }
  if (!chunk.has_hidden()) {
    return absl::InvalidArgumentError(
        "this stage takes hidden states, the chunk carries none");
  }
  const v1::HiddenStates& hidden = chunk.hidden();
  const size_t row_bytes = WireRowBytes(hidden.element_type(), limits_.n_embd);
  if (row_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hidden.element_type ", v1::ElementType_Name(hidden.element_type()),
        " is not F32, F16, BF16 or Q8_0 (Q8_0: for an n_embd that is a multiple of 32)"));
  }
  if (hidden.hidden_size() != static_cast<uint64_t>(limits_.n_embd)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hidden.hidden_size is ", hidden.hidden_size(),
                     ", this model's n_embd is ", limits_.n_embd));
  }
  const size_t values = rows * static_cast<size_t>(limits_.n_embd);
  if (hidden.data().size() != rows * row_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hidden.data holds ", hidden.data().size(), " bytes, expected ", rows,
        " rows x ", row_bytes, " bytes"));
  }
  const size_t base = batch_.hidden.size();
  batch_.hidden.resize(base + values);
  float* out = batch_.hidden.data() + base;
  const char* data = hidden.data().data();
  if (!DecodeWireRows(hidden.element_type(), data, rows, limits_.n_embd, out)) {
    return absl::InternalError("decoding hidden.data");
  }
  return absl::OkStatus();
}

AssembledBatch ChunkAssembler::Take() { return std::move(batch_); }

absl::StatusOr<std::vector<v1::ActivationChunk>> EncodeChunks(
    const AssembledBatch& batch, std::span<const float> hidden, int64_t n_embd,
    v1::ElementType type, size_t max_message_bytes) {
  const size_t row_bytes = WireRowBytes(type, n_embd);
  const size_t rows = batch.rows();
  if (row_bytes == 0 || hidden.size() != rows * static_cast<size_t>(n_embd)) {
    return absl::InternalError("EncodeChunks: bad arguments");
  }
  // Upper bounds of the serialized size: a chunk's fixed fields and
  // framing, each row's seq_id and position varints, each sample's framing.
  constexpr size_t kChunkOverhead = 128;
  constexpr size_t kRowOverhead = 16;
  constexpr size_t kSampleOverhead = 8;
  std::vector<size_t> sample_bytes(rows, 0);  // and a row's one_token_rows entry
  for (int64_t row : batch.one_token_rows) {
    if (row >= 0 && static_cast<size_t>(row) < rows) sample_bytes[row] += 8;
  }
  for (const v1::SampleSpec& spec : batch.samples) {
    if (spec.row() >= rows) return absl::InternalError("EncodeChunks: bad row");
    sample_bytes[spec.row()] += spec.ByteSizeLong() + kSampleOverhead;
  }

  // Row ranges [begin, end) of each chunk, greedily filled.
  std::vector<std::pair<size_t, size_t>> ranges;
  // The first chunk also carries the embedding sequences' ids.
  size_t begin = 0, used = kChunkOverhead + batch.embed_seq_ids.size() * kRowOverhead;
  for (size_t r = 0; r < rows; ++r) {
    const size_t cost = row_bytes + kRowOverhead + sample_bytes[r];
    if (kChunkOverhead + cost > max_message_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("row ", r, " of micro-batch ", batch.id, " needs ", cost,
                       " bytes, more than the next stage's message limit of ",
                       max_message_bytes));
    }
    if (used + cost > max_message_bytes) {
      ranges.emplace_back(begin, r);
      begin = r;
      used = kChunkOverhead;
    }
    used += cost;
  }
  ranges.emplace_back(begin, rows);

  std::vector<v1::ActivationChunk> chunks(ranges.size());
  for (size_t c = 0; c < ranges.size(); ++c) {
    const auto [lo, hi] = ranges[c];
    v1::ActivationChunk& chunk = chunks[c];
    chunk.set_micro_batch_id(batch.id);
    chunk.set_chunk_index(static_cast<uint32_t>(c));
    chunk.set_chunk_count(static_cast<uint32_t>(ranges.size()));
    chunk.mutable_seq_ids()->Add(batch.seq_ids.begin() + lo,
                                 batch.seq_ids.begin() + hi);
    chunk.mutable_positions()->Add(batch.positions.begin() + lo,
                                   batch.positions.begin() + hi);
    v1::HiddenStates* out = chunk.mutable_hidden();
    out->set_element_type(type);
    out->set_hidden_size(static_cast<uint32_t>(n_embd));
    const float* src = hidden.data() + lo * static_cast<size_t>(n_embd);
    std::string* data = out->mutable_data();
    data->resize((hi - lo) * row_bytes);
    if (!EncodeWireRows(type, src, hi - lo, n_embd, data->data())) {
      return absl::InternalError("EncodeChunks: encoding the rows");
    }
  }
  chunks[0].mutable_embed_seq_ids()->Add(batch.embed_seq_ids.begin(), batch.embed_seq_ids.end());
  for (int64_t row : batch.one_token_rows) {
    if (row < 0 || static_cast<size_t>(row) >= rows) {
      return absl::InternalError("EncodeChunks: bad one_token_rows");
    }
    size_t c = 0;
    while (static_cast<size_t>(row) >= ranges[c].second) ++c;
    chunks[c].add_one_token_rows(static_cast<uint32_t>(row - ranges[c].first));
  }
  // Each sample goes to the chunk holding its row, in the batch's order.
  for (const v1::SampleSpec& spec : batch.samples) {
    size_t c = 0;
    while (spec.row() >= ranges[c].second) ++c;
    v1::SampleSpec* copy = chunks[c].add_samples();
    *copy = spec;
    copy->set_row(static_cast<uint32_t>(spec.row() - ranges[c].first));
  }
  return chunks;
}

}  // namespace layerpool
