// Test support for the scheduler's tests (scheduler_test.cc, and
// scheduler_failure_test.cc for cancellation, failure and replay): an
// in-process fake of the pipeline that checks every micro-batch the
// scheduler sends, a deterministic fake model with the reference tokens it
// implies, and the Harness joining them to a Scheduler.
#ifndef LAYERPOOL_COORDINATOR_FAKE_PIPELINE_H_
#define LAYERPOOL_COORDINATOR_FAKE_PIPELINE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "coordinator/scheduler.h"
#include "gtest/gtest.h"

namespace layerpool::scheduler_fake {

inline constexpr int32_t kEos = 2;

// A stage's rounding, in the fake model: a row evaluated in one-token order
// enters the history as token + kOneTokenOrder, so the order of every row
// is part of every later token.
inline constexpr int32_t kOneTokenOrder = 1 << 24;

// The fake model: the next token is a hash of every (position, token,
// order) the sequence has been through, in [10, 110), so never kEos. A
// wrong, missing or repeated row, or one evaluated in the other order,
// changes every later token.
inline int32_t HashNext(const std::vector<int32_t>& history) {
  uint64_t h = 1469598103934665603ull;
  for (size_t pos = 0; pos < history.size(); ++pos) {
    h = (h ^ pos) * 1099511628211ull;
    h = (h ^ static_cast<uint32_t>(history[pos])) * 1099511628211ull;
  }
  return static_cast<int32_t>(10 + (h >> 7) % 100);
}

using NextFn = std::function<int32_t(const std::vector<int32_t>&)>;

// What the scheduler should produce for one sequence, computed without it:
// prompt rows in batched order (a one-token prompt in one-token order),
// generated rows in one-token order.
inline std::vector<int32_t> Reference(std::vector<int32_t> history, int64_t n_predict,
                               int64_t n_ctx, const NextFn& next = HashNext) {
  if (history.size() == 1) history[0] += kOneTokenOrder;
  std::vector<int32_t> out;
  while (true) {
    const int32_t t = next(history);
    if (t == kEos) return out;
    out.push_back(t);
    history.push_back(t + kOneTokenOrder);
    if (n_predict > 0 && static_cast<int64_t>(out.size()) == n_predict) {
      return out;
    }
    if (static_cast<int64_t>(history.size()) == n_ctx) return out;
  }
}

// An in-process pipeline: micro-batches go in, come back in order (or in
// the order a test picks), each sample answered by `next` over the
// sequence's rows so far. It checks what a real pipeline would need.
class FakePipeline {
 public:
  explicit FakePipeline(int64_t max_batch_tokens, NextFn next = HashNext)
      : max_batch_tokens_(max_batch_tokens), next_(std::move(next)) {}

  void Send(const MicroBatch& b) {
    EXPECT_GT(b.id, last_id_) << "micro-batch ids increase";
    last_id_ = b.id;
    EXPECT_FALSE(b.rows.empty());
    EXPECT_LE(static_cast<int64_t>(b.rows.size()), max_batch_tokens_);
    std::set<uint64_t> in_batch;
    std::map<uint64_t, int> rows_of;
    for (const BatchRow& row : b.rows) ++rows_of[row.seq_id];
    for (size_t r = 0; r < b.rows.size(); ++r) {
      const BatchRow& row = b.rows[r];
      const bool continues = r > 0 && b.rows[r - 1].seq_id == row.seq_id;
      if (!continues) {
        EXPECT_TRUE(in_batch.insert(row.seq_id).second)
            << "rows of sequence " << row.seq_id << " are not adjacent";
        // Prefill chunks may follow each other down the pipe; nothing may
        // follow a row whose sample has not come back.
        EXPECT_EQ(sampling_.count(row.seq_id), 0u)
            << "sequence " << row.seq_id << " sent on before its sample came back";
        auto fed = pending_token_.find(row.seq_id);
        if (fed != pending_token_.end()) {
          // A decode row: one row, carrying the token sampled last time.
          EXPECT_EQ(row.token, fed->second) << "sequence " << row.seq_id;
          EXPECT_TRUE(r + 1 == b.rows.size() ||
                      b.rows[r + 1].seq_id != row.seq_id);
          pending_token_.erase(fed);
        }
      }
      std::vector<int32_t>& kv = kv_[row.seq_id];
      EXPECT_EQ(row.position, static_cast<int32_t>(kv.size()))
          << "sequence " << row.seq_id << " positions must be contiguous";
      kv.push_back(row.token);
      // As a stage does (worker/stage.h, StageBatch::one_token_rows).
      const bool one_token = rows_of[row.seq_id] == 1 || row.one_token;
      seen_[row.seq_id].push_back(row.token + (one_token ? kOneTokenOrder : 0));
      max_position_ = std::max(max_position_, row.position);
    }
    busy_.insert(in_batch.begin(), in_batch.end());
    std::vector<TokenEvent> answer;
    std::set<uint64_t> sampled;
    for (const BatchSample& s : b.samples) {
      EXPECT_GE(s.row, 0);
      EXPECT_LT(s.row, static_cast<int32_t>(b.rows.size()));
      if (s.row < 0 || s.row >= static_cast<int32_t>(b.rows.size())) continue;
      EXPECT_EQ(b.rows[s.row].seq_id, s.seq_id);
      EXPECT_TRUE(sampled.insert(s.seq_id).second);
      EXPECT_TRUE(static_cast<size_t>(s.row) + 1 == b.rows.size() ||
                  b.rows[s.row + 1].seq_id != s.seq_id)
          << "the sample is on the sequence's last row";
      EXPECT_EQ(s.first, first_sampled_.insert(s.seq_id).second);
      const int32_t t = next_(seen_[s.seq_id]);
      pending_token_[s.seq_id] = t;
      sampling_.insert(s.seq_id);
      answer.push_back({s.seq_id, t});
    }
    // The last stage answers in any order.
    std::reverse(answer.begin(), answer.end());
    inflight_.push_back({b.id, {in_batch, std::move(answer)}});
    ++batches_;
  }

  bool empty() const { return inflight_.empty(); }
  size_t size() const { return inflight_.size(); }

  // Takes the answer to the `index`-th oldest micro-batch in flight.
  std::pair<uint64_t, std::vector<TokenEvent>> Pop(size_t index = 0) {
    auto it = inflight_.begin() + static_cast<ptrdiff_t>(index);
    std::pair<uint64_t, std::vector<TokenEvent>> out = {
        it->first, std::move(it->second.second)};
    for (uint64_t seq : it->second.first) busy_.erase(busy_.find(seq));
    for (const TokenEvent& t : out.second) sampling_.erase(t.seq_id);
    inflight_.erase(it);
    return out;
  }

  void Free(uint64_t seq_id) {
    EXPECT_EQ(busy_.count(seq_id), 0u) << "freed while in flight";
    retired_[seq_id] = std::move(kv_[seq_id]);
    kv_.erase(seq_id);
    seen_.erase(seq_id);
    pending_token_.erase(seq_id);
    first_sampled_.erase(seq_id);
  }

  // A new chain of stages after a failure: nothing in flight comes back,
  // no stage holds any sequence.
  void Reset() {
    inflight_.clear();
    busy_.clear();
    sampling_.clear();
    first_sampled_.clear();
    pending_token_.clear();
    kv_.clear();
    seen_.clear();
  }

  // The rows a freed sequence went through.
  const std::vector<int32_t>& retired(uint64_t seq_id) {
    return retired_[seq_id];
  }
  int batches() const { return batches_; }
  int32_t max_position() const { return max_position_; }

 private:
  int64_t max_batch_tokens_;
  NextFn next_;
  uint64_t last_id_ = 0;
  int batches_ = 0;
  int32_t max_position_ = -1;
  std::map<uint64_t, std::vector<int32_t>> kv_, retired_;
  // kv_ as the model saw it: each row's token and evaluation order.
  std::map<uint64_t, std::vector<int32_t>> seen_;
  std::map<uint64_t, int32_t> pending_token_;
  std::multiset<uint64_t> busy_;  // once per micro-batch in flight
  std::set<uint64_t> sampling_, first_sampled_;
  std::deque<std::pair<uint64_t,
                       std::pair<std::set<uint64_t>, std::vector<TokenEvent>>>>
      inflight_;
};

struct SeqLog {
  std::vector<int32_t> tokens;
  std::vector<FinishReason> finishes;
  absl::Status status;
  int freed = 0;
};

// Scheduler + fake pipeline + everything the scheduler said, per sequence.
class Harness {
 public:
  explicit Harness(SchedulerOptions o, NextFn next = HashNext)
      : sched(o),
        pipe(std::max<int64_t>(o.max_batch_tokens, 1), std::move(next)) {}

  std::vector<MicroBatch> Pump() {
    std::vector<MicroBatch> batches = sched.NextBatches();
    for (const MicroBatch& b : batches) pipe.Send(b);
    Drain();
    return batches;
  }

  void Drain() {
    SchedulerOutput out = sched.TakeOutput();
    for (const TokenEvent& t : out.tokens)
      log[t.seq_id].tokens.push_back(t.token);
    for (const FinishEvent& f : out.finished) {
      log[f.seq_id].finishes.push_back(f.reason);
      log[f.seq_id].status = f.status;
    }
    for (uint64_t id : out.to_free) {
      pipe.Free(id);
      ++log[id].freed;
    }
  }

  // Hands back one micro-batch's tokens; false when none is in flight.
  bool ReturnOne(size_t index = 0) {
    if (pipe.empty()) return false;
    auto [id, tokens] = pipe.Pop(index);
    EXPECT_TRUE(sched.OnResult(id, tokens).ok());
    Drain();
    return true;
  }

  void RunToIdle() {
    for (int step = 0; step < 100000; ++step) {
      Pump();
      if (!ReturnOne()) break;
    }
    EXPECT_TRUE(sched.idle());
  }

  Scheduler sched;
  FakePipeline pipe;
  std::map<uint64_t, SeqLog> log;
};

inline SchedulerOptions Opts(int n_stages = 1, int64_t n_ctx = 64,
                      int max_sequences = 4, int64_t max_batch_tokens = 16) {
  SchedulerOptions o;
  o.n_stages = n_stages;
  o.n_ctx = n_ctx;
  o.max_sequences = max_sequences;
  o.max_batch_tokens = max_batch_tokens;
  o.stop_tokens = {kEos};
  return o;
}

inline std::vector<int32_t> Prompt(int n, int32_t salt) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(1000 + salt * 37 + i * 3);
  return p;
}

inline std::vector<int32_t> Concat(std::vector<int32_t> a,
                            const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace layerpool::scheduler_fake

#endif  // LAYERPOOL_COORDINATOR_FAKE_PIPELINE_H_
