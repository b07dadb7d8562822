// The data plane's seam: the two ends of an activation stream, whatever
// carries it. A stage's link to the next stage writes ActivationChunks and
// reads ActivationAcks through a ChunkSender; the next stage reads chunks
// and writes acks through a ChunkReceiver. The flow control, framing and
// hop timing above them (worker/downstream_link.h, worker/service.h) do not
// know the transport.
//
// Transports today:
//   grpc_chunk_stream.h  the Worker API's Activations stream: works between
//                        any two hosts, with TLS and the token
//   unix_chunk_stream.h  a Unix socket between two workers on one host: one
//                        kernel wake-up per message instead of gRPC's
//                        poller and handler threads
// A GPU-to-GPU transport (NCCL) is the next implementation of these two
// classes.
#ifndef LAYERPOOL_TRANSPORT_CHUNK_STREAM_H_
#define LAYERPOOL_TRANSPORT_CHUNK_STREAM_H_

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "layerpool/v1/worker.pb.h"

namespace layerpool {

// The sending end. Write from one thread, ReadAck from one (other) thread;
// Cancel from any.
class ChunkSender {
 public:
  virtual ~ChunkSender() = default;
  // False once the stream has ended; the reason comes from Finish.
  [[nodiscard]] virtual bool Write(const v1::ActivationChunk& chunk) = 0;
  // Blocks for the next ack; false at the end of the stream.
  [[nodiscard]] virtual bool ReadAck(v1::ActivationAck* ack) = 0;
  // Once ReadAck has returned false: how the receiver ended the stream (OK
  // when it simply closed). Not concurrently with Write.
  [[nodiscard]] virtual absl::Status Finish() = 0;
  // Ends the stream from this side: a blocked Write or ReadAck returns.
  virtual void Cancel() = 0;
  // "grpc" or "unix socket", for logs and DescribeCluster.
  virtual const char* kind() const = 0;
};

// The receiving end, used from one thread.
class ChunkReceiver {
 public:
  virtual ~ChunkReceiver() = default;
  // Blocks for the next chunk; false at the end of the stream.
  [[nodiscard]] virtual bool Read(v1::ActivationChunk* chunk) = 0;
  // False when the sender has gone.
  [[nodiscard]] virtual bool WriteAck(const v1::ActivationAck& ack) = 0;
  // When the sender wrote the chunk Read returned last, on a clock both
  // ends share (steady_clock, one host); none where they do not.
  virtual std::optional<std::chrono::steady_clock::time_point> sent_at() const {
    return std::nullopt;
  }
  // The lease id of the coordinator the stream serves, as the sender gave
  // it (worker.proto, "Lease"); empty when it gave none.
  virtual std::string coordinator() const = 0;
};

// The one-way time a link adds to a micro-batch, measured at the sender
// with its clock alone (StatsResponse.hop_latency): the round trip from
// `sent` to the ack's arrival `now`, less the receiver's queue and compute
// time, halved. A micro-batch sent while the receiver still worked on
// earlier ones waited in the receiver's buffers for that work, not for the
// link, so its round trip starts at the previous ack's arrival instead.
// Where the ack carries the receiver's own measure (transit_us: the ends
// share a clock), that is the hop.
inline double HopMicros(std::chrono::steady_clock::time_point sent,
                        std::chrono::steady_clock::time_point previous_ack,
                        std::chrono::steady_clock::time_point now, const v1::ActivationAck& ack) {
  if (ack.has_transit_us()) return static_cast<double>(ack.transit_us());
  const double round_trip =
      std::chrono::duration<double, std::micro>(now - std::max(sent, previous_ack)).count();
  return std::max(0.0, round_trip - static_cast<double>(ack.queue_us()) -
                           static_cast<double>(ack.compute_us())) /
         2;
}

}  // namespace layerpool

#endif  // LAYERPOOL_TRANSPORT_CHUNK_STREAM_H_
