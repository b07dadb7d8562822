// The other half of the data plane's seam (chunk_stream.h is the first):
// the last stage's StepResults, the tokens it sampled, on their way to the
// coordinator. The worker writes them through a ResultSink; the coordinator
// reads them through a ResultSource.
//
// Transports today, as for activations: the Worker API's Results stream
// (grpc_chunk_stream.h), between any two hosts; the last stage's Unix socket
// (unix_chunk_stream.h), when the coordinator is on its host: one kernel
// wake-up of the coordinator's reader per result instead of gRPC's threads.
#ifndef LAYERPOOL_TRANSPORT_RESULT_STREAM_H_
#define LAYERPOOL_TRANSPORT_RESULT_STREAM_H_

#include <string>

#include "absl/status/status.h"
#include "layerpool/v1/worker.pb.h"

namespace layerpool {

// The worker's end, used from one thread.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // False when the subscriber has gone.
  [[nodiscard]] virtual bool Write(const v1::StepResult& result) = 0;
  // Whether the subscriber has gone or the stream was cancelled; polled
  // while there is nothing to write.
  virtual bool Cancelled() = 0;
  // The lease id of the coordinator that subscribed (worker.proto, "Lease");
  // empty when it gave none.
  virtual std::string coordinator() const = 0;
};

// The coordinator's end. Read from one thread; Cancel from any.
class ResultSource {
 public:
  virtual ~ResultSource() = default;
  // Blocks for the next result; false at the end of the stream.
  [[nodiscard]] virtual bool Read(v1::StepResult* result) = 0;
  // Once Read has returned false: how the worker ended the stream.
  [[nodiscard]] virtual absl::Status Finish() = 0;
  // Ends the stream from this side: a blocked Read returns false.
  virtual void Cancel() = 0;
  // "grpc" or "unix socket", for logs.
  virtual const char* kind() const = 0;
};

}  // namespace layerpool

#endif  // LAYERPOOL_TRANSPORT_RESULT_STREAM_H_
