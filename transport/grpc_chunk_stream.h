// Activation streams over the Worker API's Activations RPC: the transport
// that works between any two hosts (and with TLS and the token, when the
// channel and server have them).
#ifndef LAYERPOOL_TRANSPORT_GRPC_CHUNK_STREAM_H_
#define LAYERPOOL_TRANSPORT_GRPC_CHUNK_STREAM_H_

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "layerpool/v1/worker.grpc.pb.h"
#include "transport/chunk_stream.h"

namespace layerpool {

class GrpcChunkSender final : public ChunkSender {
 public:
  // Opens Activations on `channel`, with `token` (if any) as metadata.
  explicit GrpcChunkSender(const std::shared_ptr<grpc::Channel>& channel,
                           const std::string& token);

  bool Write(const v1::ActivationChunk& chunk) override;
  bool ReadAck(v1::ActivationAck* ack) override;
  absl::Status Finish() override;
  void Cancel() override;
  const char* kind() const override { return "grpc"; }

 private:
  std::unique_ptr<v1::Worker::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ActivationChunk, v1::ActivationAck>> stream_;
};

class GrpcChunkReceiver final : public ChunkReceiver {
 public:
  explicit GrpcChunkReceiver(
      grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream)
      : stream_(stream) {}

  bool Read(v1::ActivationChunk* chunk) override { return stream_->Read(chunk); }
  bool WriteAck(const v1::ActivationAck& ack) override { return stream_->Write(ack); }

 private:
  grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_TRANSPORT_GRPC_CHUNK_STREAM_H_
