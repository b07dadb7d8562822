// Activation streams over a Unix stream socket, between two workers on one
// host (or from the coordinator into stage 0): a message costs one kernel
// wake-up of the thread that computes with it, where gRPC's sync API wakes a
// poller thread and then a handler thread. The last stage's results go to a
// coordinator on its host the same way (UnixResultSource).
//
// The receiving worker listens on an abstract socket (Linux: no file, gone
// with the process, scoped to the network namespace) named
// "layerpool-<128 random bits in hex>" and announces the name in
// HelloResponse.unix_socket. A sender on the same host connects to it; one
// on another host, or in another network namespace, finds no such socket
// and keeps to gRPC.
//
// Who may connect: a process of the worker's own user (or root), checked
// with SO_PEERCRED, that sends the worker's token first when it has one. At
// most kMaxUnixStreams streams are open at once; more are refused.
//
// Frames are an 8-byte header, the payload's length and its type (host
// order: both ends are on one host), then the payload:
//   hello   sender -> receiver, first frame: the token (may be empty),
//           then a newline and the coordinator's lease id when it has one
//   status  receiver -> sender: a code (4 bytes) and a message. Once after
//           hello (OK: accepted, or why not) and once last, saying how the
//           stream ended
//   chunk   the sender's steady_clock at the write (8 bytes, nanoseconds
//           since its epoch: one host, one clock), then a serialized
//           ActivationChunk
//   ack     a serialized ActivationAck
// A results stream is the same with the roles turned: the coordinator
// connects and sends
//   results-hello   like hello; the worker answers with a status, then
//   result          worker -> coordinator: a serialized StepResult
// and the worker's closing status. The coordinator sends nothing after its
// hello; closing its end is how it leaves.
// A payload over the limit, an unknown type or a malformed message ends
// the stream with InvalidArgument, which the sender gets as its status.
#ifndef LAYERPOOL_TRANSPORT_UNIX_CHUNK_STREAM_H_
#define LAYERPOOL_TRANSPORT_UNIX_CHUNK_STREAM_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "transport/chunk_stream.h"
#include "transport/result_stream.h"

namespace layerpool {

inline constexpr int kMaxUnixStreams = 8;

class UnixChunkSender final : public ChunkSender {
 public:
  // Connects to the listener `name` and says hello. Unavailable when there
  // is no such socket here (the receiver is on another host), or when the
  // receiver does not accept within `timeout`, with its reason.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UnixChunkSender>> Connect(
      const std::string& name, const std::string& token, const std::string& coordinator,
      absl::Duration timeout);
  ~UnixChunkSender() override;

  bool Write(const v1::ActivationChunk& chunk) override;
  bool ReadAck(v1::ActivationAck* ack) override;
  absl::Status Finish() override;
  void Cancel() override;
  const char* kind() const override { return "unix socket"; }

 private:
  explicit UnixChunkSender(int fd) : fd_(fd) {}

  const int fd_;
  std::string write_buffer_;  // Write's thread only
  std::string read_buffer_;   // ReadAck's thread only
  absl::Mutex mu_;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
};

// The coordinator's end of a results stream from a last stage on its host.
class UnixResultSource final : public ResultSource {
 public:
  // As UnixChunkSender::Connect, for the results of the worker listening
  // on `name`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UnixResultSource>> Connect(
      const std::string& name, const std::string& token, const std::string& coordinator,
      absl::Duration timeout);
  ~UnixResultSource() override;

  bool Read(v1::StepResult* result) override;
  absl::Status Finish() override;
  void Cancel() override;
  const char* kind() const override { return "unix socket"; }

 private:
  explicit UnixResultSource(int fd) : fd_(fd) {}

  const int fd_;
  std::string buffer_;
  absl::Status final_status_;  // Read's thread, then Finish
};

class UnixChunkListener {
 public:
  // Serves one accepted stream, on a thread of its own; what it returns
  // goes to the sender as the stream's end. `cancel` ends the stream from
  // the receiving side (a blocked Read returns false); it stays safe to
  // call after the handler has returned.
  using Handler =
      std::function<absl::Status(ChunkReceiver& receiver, std::function<void()> cancel)>;
  // Serves one results subscription the same way; Stop() makes the sink's
  // Cancelled() true.
  using ResultsHandler = std::function<absl::Status(ResultSink& sink)>;

  // Listens on a fresh abstract name. Internal when the socket cannot be
  // made. Payloads over `max_payload` bytes are refused. Without a
  // `results_handler`, results streams are refused (Unimplemented).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UnixChunkListener>> Start(
      std::string token, uint32_t max_payload, Handler handler,
      ResultsHandler results_handler = nullptr);
  // Stop()s.
  ~UnixChunkListener();

  // Stops accepting, ends every open stream and waits for their handlers.
  void Stop();

  // The name senders connect to (HelloResponse.unix_socket).
  const std::string& name() const { return name_; }

 private:
  struct Connection;
  UnixChunkListener(int fd, std::string name, std::string token, uint32_t max_payload,
                    Handler handler, ResultsHandler results_handler);
  void AcceptLoop();
  void Serve(const std::shared_ptr<Connection>& connection);

  const int fd_;
  const std::string name_;
  const std::string token_;
  const uint32_t max_payload_;
  const Handler handler_;
  const ResultsHandler results_handler_;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  struct Running {
    std::shared_ptr<Connection> connection;
    std::thread thread;
  };
  std::vector<Running> running_ ABSL_GUARDED_BY(mu_);
};

}  // namespace layerpool

#endif  // LAYERPOOL_TRANSPORT_UNIX_CHUNK_STREAM_H_
