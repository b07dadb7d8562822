// The coordinator's connection to one worker: the control-plane calls with
// deadlines and errors that name the worker, and the token stream into the
// first stage.
#ifndef LAYERPOOL_COORDINATOR_WORKER_LINK_H_
#define LAYERPOOL_COORDINATOR_WORKER_LINK_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "layerpool/v1/worker.grpc.pb.h"
#include "proto/tls.h"
#include "transport/chunk_stream.h"
#include "transport/result_stream.h"

namespace layerpool {

// The activation stream from the coordinator into stage 0, over gRPC or
// (stage 0 on this host) its Unix socket. Send() is called from one
// thread; acks are read on a thread of its own, which measures the hop and
// reports a broken stream once through `on_error`.
class ActivationSender {
 public:
  ActivationSender(std::unique_ptr<ChunkSender> stream,
                   std::function<void(const absl::Status&)> on_error);
  ~ActivationSender();

  // Unavailable when the stream is broken.
  [[nodiscard]] absl::Status Send(v1::ActivationChunk chunk);
  // Ends the stream without reporting an error.
  void Close();
  // Mean one-way hop, microseconds (see StatsResponse.hop_latency).
  double mean_hop_us() const;
  // "grpc" or "unix socket".
  const char* kind() const { return stream_->kind(); }

 private:
  void ReadAcks();

  std::unique_ptr<ChunkSender> stream_;
  std::function<void(const absl::Status&)> on_error_;
  std::atomic<bool> closed_{false};
  mutable std::mutex mu_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> sent_;
  double hop_us_sum_ = 0;
  uint64_t hop_count_ = 0;
  std::thread reader_;
};

class WorkerLink {
 public:
  // Connects and says Hello (within `timeout`): Unavailable naming the
  // address when nobody answers, FailedPrecondition on a protocol mismatch.
  // Every call carries `token` (--token-file), when not empty, and this
  // process's lease id (ThisCoordinatorId in proto/peer_token.h). With
  // `wait_for_ready` a refused connection is retried until the timeout (the
  // worker may still be starting); without, it fails at once.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WorkerLink>> Connect(
      const std::string& address, const std::string& token = "",
      const std::optional<TlsFiles>& tls = std::nullopt,
      absl::Duration timeout = absl::Seconds(10), bool wait_for_ready = true);
  ~WorkerLink();

  const std::string& address() const { return address_; }
  const std::string& token() const { return token_; }
  const v1::HelloResponse& hello() const { return hello_; }
  const v1::LoadStageResponse& loaded() const { return loaded_; }
  // How this stage reaches the next (ConnectDownstreamResponse.link).
  const std::string& link_to_next() const { return link_to_next_; }
  v1::Worker::Stub& stub() { return *stub_; }
  bool healthy() const { return healthy_; }

  // No deadline: a large stage takes as long as its disk needs.
  [[nodiscard]] absl::Status LoadStage(const v1::LoadStageRequest& request);
  [[nodiscard]] absl::Status ConnectDownstream(const v1::ConnectDownstreamRequest& request);
  // OK when the worker answers within `timeout` with a READY stage;
  // Unavailable when it does not answer, FailedPrecondition when it answers
  // that its stage is not ready (e.g. its next stage went away). Updates
  // healthy().
  [[nodiscard]] absl::Status CheckHealth(absl::Duration timeout);
  [[nodiscard]] absl::StatusOr<v1::StatsResponse> Stats();
  // Queued to a thread of the link's own, so the caller never waits on a
  // slow or dead worker unless it chooses to: the future is ready once the
  // worker answered (or the call failed: a dead worker holds nothing).
  std::shared_future<void> FreeSequencesAsync(std::vector<uint64_t> ids);
  // Ends this coordinator's lease on the worker (worker.proto, "Lease"),
  // within `timeout`; a worker that does not answer lets it expire.
  void Release(absl::Duration timeout);
  // Adds the token and the lease id to a call to this worker.
  void Authorize(grpc::ClientContext* context) const;
  // The last stage's results: over the worker's Unix socket when
  // `try_unix_socket` and it is on this host, else its Results stream.
  [[nodiscard]] std::unique_ptr<ResultSource> OpenResults(bool try_unix_socket);
  // Over the worker's Unix socket when `try_unix_socket` and it is on this
  // host (its Hello names one that accepts us), else over gRPC.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<ActivationSender>> OpenActivations(
      std::function<void(const absl::Status&)> on_error, bool try_unix_socket);

 private:
  WorkerLink() = default;
  void FreeLoop();

  std::string address_;
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Worker::Stub> stub_;
  v1::HelloResponse hello_;
  v1::LoadStageResponse loaded_;
  std::string link_to_next_;
  std::atomic<bool> healthy_{true};

  std::mutex free_mu_;
  std::condition_variable free_cv_;
  struct PendingFree {
    std::vector<uint64_t> ids;
    std::promise<void> done;
  };
  std::deque<PendingFree> free_queue_;
  bool free_stop_ = false;
  std::thread free_thread_;
};

// Channel arguments both sides use: message sizes set explicitly (long
// prompts are chunked below them), keepalive, so that a peer that vanishes
// without closing its socket is noticed, and a short reconnect backoff, so
// that one that comes back is found at once.
grpc::ChannelArguments LinkChannelArguments();
inline constexpr int kMaxMessageBytes = 64 << 20;

}  // namespace layerpool

#endif  // LAYERPOOL_COORDINATOR_WORKER_LINK_H_
