#include "coordinator/scheduler.h"

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace layerpool {
namespace {

SchedulerOptions Clamp(SchedulerOptions o) {
  o.n_stages = std::max(o.n_stages, 1);
  if (o.max_inflight <= 0) o.max_inflight = o.n_stages;
  o.max_sequences = std::max(o.max_sequences, 1);
  o.max_batch_tokens = std::max<int64_t>(o.max_batch_tokens, 1);
  o.max_queue = std::max(o.max_queue, 0);
  // Rows carry int32 positions; the highest one sent is n_ctx - 2.
  o.n_ctx =
      std::clamp<int64_t>(o.n_ctx, 0, std::numeric_limits<int32_t>::max());
  return o;
}

}  // namespace

Scheduler::Scheduler(SchedulerOptions options)
    : inflight_follows_stages_(options.max_inflight <= 0),
      options_(Clamp(std::move(options))) {}

void Scheduler::SetMicroBatchesByLive(std::vector<int> by_live) {
  by_live_ = std::move(by_live);
}

void Scheduler::SetStages(int n_stages) {
  options_.n_stages = std::max(n_stages, 1);
  by_live_.clear();  // measured on the old stages
  if (inflight_follows_stages_) options_.max_inflight = options_.n_stages;
}

absl::Status Scheduler::Submit(uint64_t seq_id, std::vector<int32_t> prompt,
                               int64_t n_predict) {
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("sequence %d: empty prompt", seq_id));
  }
  if (n_prompt >= options_.n_ctx) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sequence %d: prompt of %d tokens leaves no room to generate in a "
        "context of %d",
        seq_id, n_prompt, options_.n_ctx));
  }
  // Written as a difference: n_predict comes from a client and may be huge.
  if (n_predict > options_.n_ctx - n_prompt) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "sequence %d: prompt of %d tokens + n_predict %d exceeds the context "
        "of %d",
        seq_id, n_prompt, n_predict, options_.n_ctx));
  }
  const bool queued_already =
      std::any_of(queue_.begin(), queue_.end(),
                  [&](const Pending& p) { return p.seq_id == seq_id; });
  if (queued_already || active_.count(seq_id) > 0) {
    return absl::AlreadyExistsError(
        absl::StrFormat("sequence %d is already in use", seq_id));
  }
  // Admission is eager, so a non-empty queue means every slot is taken.
  const bool room = queue_.empty() && active() < options_.max_sequences;
  if (!room && queued() >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "sequence %d refused: %d requests already wait for one of %d slots",
        seq_id, queued(), options_.max_sequences));
  }
  queue_.push_back({seq_id, std::move(prompt), n_predict});
  Admit();
  return absl::OkStatus();
}

void Scheduler::Admit() {
  while (!queue_.empty() && active() < options_.max_sequences) {
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    Sequence& s = active_[p.seq_id];
    s.n_prompt = static_cast<int64_t>(p.prompt.size());
    s.tokens = std::move(p.prompt);
    s.n_predict = p.n_predict;
    s.admitted = next_admitted_++;
  }
}

void Scheduler::Cancel(uint64_t seq_id) {
  auto q = std::find_if(queue_.begin(), queue_.end(),
                        [&](const Pending& p) { return p.seq_id == seq_id; });
  if (q != queue_.end()) {
    // Never admitted: nothing to free on the workers.
    queue_.erase(q);
    output_.finished.push_back(
        {seq_id, FinishReason::kCancelled, absl::OkStatus()});
    return;
  }
  auto it = active_.find(seq_id);
  if (it == active_.end() || it->second.finished) return;
  Finish(seq_id, FinishReason::kCancelled, absl::OkStatus());
  Admit();
}

absl::Status Scheduler::OnResult(uint64_t id,
                                 const std::vector<TokenEvent>& sampled) {
  auto it = inflight_.find(id);
  if (it == inflight_.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "micro-batch ", id, " is not in flight"));
  }
  const std::vector<BatchSample>& samples = it->second.samples;
  if (sampled.size() != samples.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("micro-batch %d: %d sampled tokens for %d samples", id,
                        sampled.size(), samples.size()));
  }
  // Match every sampled token to one sample before touching any state.
  std::vector<int32_t> token_of(samples.size());
  std::vector<bool> matched(samples.size(), false);
  for (const TokenEvent& ev : sampled) {
    size_t k = 0;
    while (k < samples.size() &&
           (matched[k] || samples[k].seq_id != ev.seq_id)) {
      ++k;
    }
    if (k == samples.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "micro-batch %d: sampled token for sequence %d, which it does not "
          "sample (or samples once)",
          id, ev.seq_id));
    }
    matched[k] = true;
    token_of[k] = ev.token;
  }

  const MicroBatch batch = std::move(it->second);
  inflight_.erase(it);
  // Rows of one sequence are adjacent (NextBatches writes them so).
  for (size_t r = 0; r < batch.rows.size(); ++r) {
    const uint64_t seq_id = batch.rows[r].seq_id;
    if (r > 0 && batch.rows[r - 1].seq_id == seq_id) continue;
    auto s = active_.find(seq_id);
    if (s == active_.end()) continue;  // only after a bug; never crash
    --s->second.in_flight;
    if (s->second.finished && s->second.in_flight == 0) {
      // Cancelled while in flight: its result is dropped.
      output_.to_free.push_back(seq_id);
      active_.erase(s);
    }
  }
  for (size_t k = 0; k < batch.samples.size(); ++k) {
    auto s = active_.find(batch.samples[k].seq_id);
    if (s == active_.end()) continue;
    s->second.sampling = false;
    if (!s->second.finished) Accept(batch.samples[k].seq_id, token_of[k]);
  }
  Admit();
  return absl::OkStatus();
}

void Scheduler::Accept(uint64_t seq_id, int32_t token) {
  Sequence& s = active_.at(seq_id);
  const std::vector<int32_t>& stops = options_.stop_tokens;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    Finish(seq_id, FinishReason::kStopToken, absl::OkStatus());
    return;
  }
  output_.tokens.push_back({seq_id, token});
  s.tokens.push_back(token);
  ++s.generated;
  if (s.n_predict > 0 && s.generated >= s.n_predict) {
    Finish(seq_id, FinishReason::kLength, absl::OkStatus());
  } else if (static_cast<int64_t>(s.tokens.size()) >= options_.n_ctx) {
    Finish(seq_id, FinishReason::kContextFull, absl::OkStatus());
  }
}

void Scheduler::Finish(uint64_t seq_id, FinishReason reason,
                       absl::Status status) {
  auto it = active_.find(seq_id);
  output_.finished.push_back({seq_id, reason, std::move(status)});
  it->second.finished = true;
  if (it->second.in_flight == 0) {
    output_.to_free.push_back(seq_id);
    active_.erase(it);
  }
}

void Scheduler::Fail(const absl::Status& status) {
  const absl::Status failed = status.ok() ? absl::UnknownError("pipeline failed") : status;
  for (const Pending& p : queue_) {
    output_.finished.push_back({p.seq_id, FinishReason::kFailed, failed});
  }
  queue_.clear();
  // Nothing is in flight any more, so every active sequence can be freed
  // (on whichever workers survive).
  inflight_.clear();
  for (auto& [seq_id, s] : active_) {
    if (!s.finished) {
      output_.finished.push_back({seq_id, FinishReason::kFailed, failed});
    }
    output_.to_free.push_back(seq_id);
  }
  active_.clear();
}

void Scheduler::Rewind() {
  inflight_.clear();
  for (auto it = active_.begin(); it != active_.end();) {
    Sequence& s = it->second;
    if (s.finished) {
      output_.to_free.push_back(it->first);
      it = active_.erase(it);
      continue;
    }
    s.n_sent = 0;
    s.in_flight = 0;
    s.sampling = false;
    s.sampled_on_chain = false;
    ++it;
  }
  Admit();
}

int64_t Scheduler::RowsToSend(const Sequence& s, int64_t budget) const {
  int64_t n = std::min(static_cast<int64_t>(s.tokens.size()) - s.n_sent, budget);
  const int64_t prompt_left = s.n_prompt - s.n_sent;
  if (prompt_left >= 2 && n < prompt_left) {
    // Prompt rows travel in twos or more (batched order): never leave one
    // behind, and wait for a micro-batch with room for two. Only with
    // max_batch_tokens < 3 can that fail; then a row goes as it must.
    if (prompt_left - n == 1) --n;
    if (n < 2) return budget < options_.max_batch_tokens ? 0 : std::min(prompt_left, budget);
  }
  return n;
}

std::vector<MicroBatch> Scheduler::NextBatches() {
  std::vector<MicroBatch> out;
  Admit();

  int64_t live = 0;
  std::deque<std::pair<uint64_t, Sequence*>> ready;
  for (auto& [seq_id, s] : active_) {
    if (s.finished) continue;
    ++live;
    if (!s.sampling) ready.emplace_back(seq_id, &s);
  }
  std::sort(ready.begin(), ready.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->last_served, a.second->admitted) <
           std::tie(b.second->last_served, b.second->admitted);
  });
  // Micro-batches to spread the live sequences over, and how many may be in
  // flight: with fewer than stages, decoding sequences wait to go together,
  // but a prompt's chunks still fill the pipe.
  int64_t spread = options_.max_inflight, max_inflight = options_.max_inflight;
  if (inflight_follows_stages_ && !by_live_.empty()) {
    spread = std::max(
        1, by_live_[std::min<size_t>(static_cast<size_t>(live), by_live_.size() - 1)]);
    const bool prompt_ready =
        std::any_of(ready.begin(), ready.end(), [](const auto& r) {
          return static_cast<int64_t>(r.second->tokens.size()) - r.second->n_sent > 1;
        });
    max_inflight = prompt_ready ? std::max<int64_t>(spread, options_.n_stages) : spread;
  }
  const int64_t cap = std::max<int64_t>(1, (live + spread - 1) / spread);

  // Every ready sequence fits a row budget of at least one, so each
  // micro-batch takes a prefix of what is left of `ready`. A prompt with
  // rows left after its chunk goes to the back, for a later micro-batch.
  while (inflight() < max_inflight && !ready.empty()) {
    MicroBatch b;
    b.id = next_batch_id_++;
    int64_t budget = options_.max_batch_tokens;
    std::vector<std::pair<uint64_t, Sequence*>> again;
    for (int64_t taken = 0; taken < cap && budget > 0 && !ready.empty();) {
      const auto [seq_id, sequence] = ready.front();
      ready.pop_front();
      Sequence& s = *sequence;
      // A prompt (after a Rewind, with the tokens generated before) goes in
      // chunks; in decode one row is left to send.
      const int64_t n_rows = RowsToSend(s, budget);
      if (n_rows == 0) {
        again.emplace_back(seq_id, &s);
        continue;
      }
      ++taken;
      for (int64_t i = 0; i < n_rows; ++i) {
        const int64_t pos = s.n_sent + i;
        const bool generated = pos >= s.n_prompt || s.n_prompt == 1;
        b.rows.push_back({seq_id, static_cast<int32_t>(pos), s.tokens[pos],
                          n_rows > 1 && generated});
      }
      s.n_sent += n_rows;
      budget -= n_rows;
      // The row of the last known token gives the next one.
      if (s.n_sent == static_cast<int64_t>(s.tokens.size())) {
        b.samples.push_back({static_cast<int32_t>(b.rows.size() - 1), seq_id,
                             !s.sampled_on_chain});
        s.sampling = true;
        s.sampled_on_chain = true;
      } else {
        again.emplace_back(seq_id, &s);
      }
      ++s.in_flight;
      s.last_served = b.id;
    }
    ready.insert(ready.end(), again.begin(), again.end());
    out.push_back(b);
    inflight_.emplace(b.id, std::move(b));
  }
  return out;
}

SchedulerOutput Scheduler::TakeOutput() { return std::exchange(output_, {}); }

bool Scheduler::idle() const {
  return queue_.empty() && active_.empty() && inflight_.empty();
}

}  // namespace layerpool
