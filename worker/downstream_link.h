// A stage's link to the next stage: the activation stream it sends hidden
// states on (transport/chunk_stream.h), and the thread that reads the next
// stage's acks.
//
// Connect says Hello over gRPC (with a deadline) and refuses a peer of
// another protocol major, or one that cannot take f16 activations when they
// are asked for. The stream then goes over the next worker's Unix socket
// when try_unix_socket is set and the worker is on this host (its Hello
// names a socket that accepts us), else over its Activations RPC. The acks are the flow control: Send blocks while the next
// stage holds as many unacked chunks as its Hello allowed. From each ack the
// link measures the hop: (send -> ack time - the receiver's queue and
// compute time) / 2, with no clocks to agree.
//
// When the next stage ends the stream (an error, or it went away), the link
// is broken for good: every later Send returns Unavailable
//   "stage K: next stage K+1 at ADDR: <the next stage's message>"
// and on_broken is called once with that status from the link's thread, so
// the worker can report it before another micro-batch comes.
//
// Thread safety: Send from one thread at a time; TakeHopLatency from any.
// The destructor cancels the stream and joins the ack thread; it must not
// run on that thread (so on_broken must not drop the last reference).
#ifndef LAYERPOOL_WORKER_DOWNSTREAM_LINK_H_
#define LAYERPOOL_WORKER_DOWNSTREAM_LINK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "layerpool/v1/worker.grpc.pb.h"
#include "proto/tls.h"
#include "transport/chunk_stream.h"
#include "worker/latency_window.h"

namespace layerpool {

class DownstreamLink {
 public:
  struct Options {
    std::string address;       // "host:port" of the next stage
    uint32_t stage_index = 0;  // this stage, for messages
    v1::ElementType activation_type = v1::ELEMENT_TYPE_F32;
    absl::Duration hello_timeout = absl::Seconds(5);
    std::function<void(const absl::Status&)> on_broken;
    std::string token;  // the shared secret the next stage expects, if any
    std::string coordinator;  // the lease id of the coordinator this chain serves
    std::optional<TlsFiles> tls;  // mutual TLS to the next stage, if set
    bool try_unix_socket = false;  // TRANSPORT_AUTO
  };

  // Unavailable when the next stage does not answer Hello in time,
  // FailedPrecondition for a protocol major mismatch or missing f16
  // support.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DownstreamLink>> Connect(
      Options options);

  ~DownstreamLink();
  DownstreamLink(const DownstreamLink&) = delete;
  DownstreamLink& operator=(const DownstreamLink&) = delete;

  // Sends the chunks of one micro-batch (EncodeChunks' output).
  [[nodiscard]] absl::Status Send(
      const std::vector<v1::ActivationChunk>& chunks);

  // Ends the stream from this side (shutdown): a blocked Send returns, and
  // on_broken is not called. Thread-safe.
  void Close();

  // The next stage's limit on one message, for EncodeChunks.
  size_t max_message_bytes() const { return max_message_bytes_; }
  v1::ElementType activation_type() const { return options_.activation_type; }
  const std::string& address() const { return options_.address; }
  // ConnectDownstreamResponse.link: "unix socket", "grpc", or
  // "grpc (why not a Unix socket)".
  const std::string& description() const { return description_; }

  v1::LatencySummary TakeHopLatency() { return hop_.TakeSummary(); }

 private:
  explicit DownstreamLink(Options options) : options_(std::move(options)) {}
  void ReadAcks();
  // Waits until the window has room for n chunks and records them; false
  // once the stream has ended.
  bool WaitForRoom(uint64_t micro_batch_id, uint32_t n);
  absl::Status FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  absl::Status Broken(const absl::Status& cause) const;

  struct InFlight {
    std::chrono::steady_clock::time_point sent;
    uint32_t chunks = 0;
  };

  const Options options_;
  size_t max_message_bytes_ = 0;
  uint32_t max_inflight_chunks_ = 1;
  std::unique_ptr<ChunkSender> sender_;
  std::string description_;
  std::thread ack_thread_;
  std::atomic<bool> closing_{false};
  LatencyWindow hop_;

  // Serialises Write and Finish, which gRPC forbids running concurrently.
  absl::Mutex send_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool finished_ ABSL_GUARDED_BY(send_mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(send_mu_);

  absl::Mutex mu_;
  bool acks_done_ ABSL_GUARDED_BY(mu_) = false;  // Read returned false
  uint32_t inflight_chunks_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, InFlight> inflight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace layerpool

#endif  // LAYERPOOL_WORKER_DOWNSTREAM_LINK_H_
