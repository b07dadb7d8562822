// The coordinator's scheduler: which token rows go through the pipeline
// next, as a pure step function.
//
// The scheduler owns admission and the order of work; it knows nothing of
// gRPC, threads or clocks. The coordinator feeds it events (a request
// arrives, a micro-batch comes back from the last stage, a client cancels,
// the pipeline fails), asks it for the micro-batches to send now, and drains
// what it produced (tokens, finished sequences, sequences to free on the
// workers). Tests drive it with an in-process fake pipeline.
//
// Policy:
// - Admission: a request is checked (prompt not empty, fits the context)
//   and queued; at most max_queue wait, beyond that ResourceExhausted. A
//   queued request is admitted, in arrival order, when fewer than
//   max_sequences are active: every stage has then KV room for its context.
//   Admission is eager (in Submit, and whenever a slot frees), so a request
//   waits in the queue only while every slot is taken. A sequence that
//   finished while in flight keeps its slot until that micro-batch returns.
// - Micro-batches: a sequence waits while a row of it is being sampled
//   (its next row needs that token), but the chunks of a long prompt
//   follow each other down the pipe without waiting: stages run
//   micro-batches in the order sent, so chunk k has reached every stage's
//   KV cache before chunk k + 1 does, and while stage 1 works on chunk k,
//   stage 0 works on chunk k + 1 (time to first token falls with more
//   stages). A sequence appears at most once per micro-batch. To keep
//   every stage busy, the ready sequences are spread over up to max_inflight micro-batches (by
//   default one per stage): each micro-batch takes at most
//   ceil(live / max_inflight) sequences, where live counts the active
//   sequences not yet finished (ready or in flight), so with as many active
//   sequences as stages each stage works on a different one. Where the
//   stages' measured step costs say fewer or more micro-batches pay
//   (SetMicroBatchesByLive), live sequences are spread over that many
//   instead. Prefill rows
//   count against max_batch_tokens per micro-batch; a long prompt goes in
//   chunks, and only the chunk holding its last token asks for a sample.
//   A sequence in prefill takes min(prompt rows left, rows left in the
//   micro-batch), one in decode takes one row, one being replayed (below)
//   is in prefill until it has sent every token it had.
// - Numbers that do not depend on the schedule: with an f16 KV cache a
//   stage rounds attention differently for a row that is its sequence's
//   only one in the micro-batch (llama.cpp's one-token order) and for the
//   rows of a longer run (its batched order). Every row is given one fixed
//   order by its place in the sequence: prompt rows batched (a prompt of
//   one token: one-token), generated rows one-token. So a prompt of two or
//   more rows is never sent one row at a time (a chunk never ends one row
//   short of its end, and a micro-batch with one row of room left waits),
//   and generated rows replayed in a run are flagged one_token. A
//   sequence's tokens are then the same alone, among others, chunked in
//   any way, and replayed (when max_batch_tokens >= 2).
// - Fairness: ready sequences are taken least recently served first (the
//   micro-batch they were last in; new ones first, ties in admission order),
//   so under a tight row budget none starves.
// - Replay: when the stages lose their state (one was replaced after a
//   failure), Rewind forgets what was in flight and sends every active
//   sequence again from position 0, its prompt and the tokens already
//   generated as one prefill, then samples on: no token is emitted twice or
//   lost.
// - Continuous batching: sequences join and leave between micro-batches.
// - A sequence ends at a stop token (EOS/EOT: the token is not emitted),
//   after n_predict tokens (kLength), when prompt + generated reaches n_ctx
//   (kContextFull; kLength wins when both hold), or when cancelled. Its last
//   generated token is emitted but never sent as a row. It is freed on the
//   workers (SchedulerOutput::to_free, exactly once per admitted sequence)
//   once no micro-batch of it is in flight.
//
// Options out of range are clamped: n_stages, max_sequences and
// max_batch_tokens to at least 1, max_inflight <= 0 to n_stages, max_queue
// to at least 0, n_ctx to the int32 positions of BatchRow. With n_ctx < 2
// no prompt fits and every Submit is refused.
//
// Not thread-safe: one thread owns it.
#ifndef LAYERPOOL_COORDINATOR_SCHEDULER_H_
#define LAYERPOOL_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "absl/status/status.h"

namespace layerpool {

struct SchedulerOptions {
  int n_stages = 1;
  // Micro-batches in flight at once; 0 means n_stages.
  int max_inflight = 0;
  // Context per sequence, tokens (prompt + generated).
  int64_t n_ctx = 0;
  // Sequences active at once: the KV cache slots each stage allocated.
  int max_sequences = 1;
  // Token rows per micro-batch (prefill chunk size).
  int64_t max_batch_tokens = 512;
  // Requests waiting for admission before new ones are refused.
  int max_queue = 64;
  // Tokens that end a sequence (EOS, EOT); never emitted.
  std::vector<int32_t> stop_tokens;
};

// One token row of a micro-batch.
struct BatchRow {
  uint64_t seq_id = 0;
  int32_t position = 0;
  int32_t token = 0;
  // Evaluate in one-token order although other rows of its sequence are in
  // the micro-batch (ActivationChunk.one_token_rows): a generated token
  // being replayed.
  bool one_token = false;
};

// A row whose logits the last stage samples.
struct BatchSample {
  int32_t row = 0;  // index into MicroBatch::rows
  uint64_t seq_id = 0;
  // The sequence's first sample on this chain of stages (since admission or
  // the last Rewind): the coordinator attaches its tokens so far (prompt and
  // any generated before a Rewind) as SampleSpec.recent_tokens.
  bool first = false;
};

struct MicroBatch {
  uint64_t id = 0;  // increasing from 1
  std::vector<BatchRow> rows;
  std::vector<BatchSample> samples;
};

// A generated token, in order per sequence.
struct TokenEvent {
  uint64_t seq_id = 0;
  int32_t token = 0;
};

enum class FinishReason {
  kLength,
  kStopToken,
  kContextFull,
  kCancelled,
  kFailed
};

struct FinishEvent {
  uint64_t seq_id = 0;
  FinishReason reason = FinishReason::kLength;
  absl::Status status;  // kFailed: why
};

// What the scheduler produced since the last TakeOutput.
struct SchedulerOutput {
  std::vector<TokenEvent> tokens;
  std::vector<FinishEvent> finished;
  // Sequences the workers may drop (FreeSequence).
  std::vector<uint64_t> to_free;
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions options);

  // Queues a request. InvalidArgument when the prompt is empty, holds as
  // many tokens as the context or more, or prompt + n_predict (> 0) exceeds
  // n_ctx; AlreadyExists for a seq_id in use; ResourceExhausted when
  // max_queue requests are waiting; Unavailable after Fail. n_predict <= 0
  // generates until a stop token or a full context.
  [[nodiscard]] absl::Status Submit(uint64_t seq_id,
                                    std::vector<int32_t> prompt,
                                    int64_t n_predict);

  // Ends a sequence (client gone, stop string matched); a no-op for unknown
  // or finished ids. Its pending result, if any, is dropped on arrival.
  void Cancel(uint64_t seq_id);

  // The last stage's tokens for micro-batch `id`: (seq_id, token) per
  // sample, in any order. InvalidArgument for an id not in flight or tokens
  // that do not match its samples (the pipeline is then broken: the caller
  // fails it).
  [[nodiscard]] absl::Status OnResult(uint64_t id,
                                      const std::vector<TokenEvent>& sampled);

  // Ends every sequence, queued or active, with kFailed and `status` (an OK
  // status becomes Unknown), forgets the micro-batches in flight (a late
  // OnResult for one is InvalidArgument) and lists every active sequence in
  // to_free. The scheduler stays usable: requests submitted later run as on
  // a new one.
  void Fail(const absl::Status& status);

  // The pipeline lost its state (its stages were reloaded or replaced):
  // forgets the micro-batches in flight and rewinds every active sequence
  // to position 0, so that NextBatches sends its prompt and the tokens it
  // has generated again (in chunks of max_batch_tokens) before sampling the
  // next one, marked `first`. Sequences that had finished while in flight
  // are freed (to_free); the new stages hold nothing of the others, so they
  // are not. Queued requests stay queued.
  void Rewind();

  // The chain now has `n_stages` stages (the split was planned again over
  // the workers left); max_inflight follows unless the options fixed it,
  // and SetMicroBatchesByLive's table is dropped (it was the old stages').
  // Call after Rewind, with nothing in flight.
  void SetStages(int n_stages);

  // How many micro-batches to spread n live sequences over, by n
  // (coordinator/micro_batches.h, from the stages' measured step costs; the
  // last entry serves larger n). Empty, or options.max_inflight given: one
  // per stage. With fewer micro-batches than stages, a decoding sequence
  // waits for the others to come back so that they go together; prompt
  // chunks still fill every stage.
  void SetMicroBatchesByLive(std::vector<int> by_live);

  // The micro-batches to send now, in order; empty when nothing is ready or
  // max_inflight are in flight.
  std::vector<MicroBatch> NextBatches();

  SchedulerOutput TakeOutput();

  int active() const { return static_cast<int>(active_.size()); }
  int queued() const { return static_cast<int>(queue_.size()); }
  int inflight() const { return static_cast<int>(inflight_.size()); }
  // True when nothing is queued, active or in flight.
  bool idle() const;

 private:
  struct Sequence {
    std::vector<int32_t> tokens;  // prompt, then generated
    int64_t n_prompt = 0;
    int64_t n_predict = 0;  // <= 0: no limit
    int64_t n_sent = 0;     // rows sent (computed or in flight)
    int64_t generated = 0;
    uint64_t admitted = 0;     // admission order
    uint64_t last_served = 0;  // id of the last micro-batch it was in
    int in_flight = 0;         // micro-batches in flight holding rows of it
    bool sampling = false;     // one of them samples it
    bool sampled_on_chain = false;  // sampled since admission or Rewind
    bool finished = false;  // finished while in flight: free on return
  };
  struct Pending {
    uint64_t seq_id;
    std::vector<int32_t> prompt;
    int64_t n_predict;
  };

  void Admit();
  // Rows of `s` to send in a micro-batch with `budget` rows of room: 0 when
  // they must wait for a micro-batch with more room (see the policy).
  int64_t RowsToSend(const Sequence& s, int64_t budget) const;
  // Takes the sampled `token` of active sequence `seq_id`.
  void Accept(uint64_t seq_id, int32_t token);
  // Reports the end of active sequence `seq_id` and frees it unless in
  // flight.
  void Finish(uint64_t seq_id, FinishReason reason, absl::Status status);

  const bool inflight_follows_stages_;  // options.max_inflight was 0
  std::vector<int> by_live_;  // SetMicroBatchesByLive
  SchedulerOptions options_;  // clamped
  uint64_t next_batch_id_ = 1;
  uint64_t next_admitted_ = 0;
  std::deque<Pending> queue_;
  std::map<uint64_t, Sequence> active_;
  std::map<uint64_t, MicroBatch> inflight_;
  SchedulerOutput output_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_SCHEDULER_H_
