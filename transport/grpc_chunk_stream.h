// Activation streams over the Worker API's Activations RPC, and the last
// stage's results over its Results RPC: the transport that works between
// any two hosts (and with TLS and the token, when the channel and server
// have them).
#ifndef LAYERPOOL_TRANSPORT_GRPC_CHUNK_STREAM_H_
#define LAYERPOOL_TRANSPORT_GRPC_CHUNK_STREAM_H_

#include <memory>
#include <string>
#include <utility>

#include "grpcpp/grpcpp.h"
#include "layerpool/v1/worker.grpc.pb.h"
#include "transport/chunk_stream.h"
#include "transport/result_stream.h"

namespace layerpool {

class GrpcChunkSender final : public ChunkSender {
 public:
  // Opens Activations on `channel`, with `token` and the `coordinator`'s
  // lease id (when not empty) as metadata.
  GrpcChunkSender(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                  const std::string& coordinator);

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
  GrpcChunkReceiver(grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream,
                    std::string coordinator)
      : stream_(stream), coordinator_(std::move(coordinator)) {}

  bool Read(v1::ActivationChunk* chunk) override { return stream_->Read(chunk); }
  bool WriteAck(const v1::ActivationAck& ack) override { return stream_->Write(ack); }
  std::string coordinator() const override { return coordinator_; }

 private:
  grpc::ServerReaderWriter<v1::ActivationAck, v1::ActivationChunk>* stream_;
  std::string coordinator_;
};

class GrpcResultSource final : public ResultSource {
 public:
  // Subscribes to Results on `channel`, with `token` and the `coordinator`'s
  // lease id (when not empty) as metadata.
  GrpcResultSource(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                   const std::string& coordinator);

  bool Read(v1::StepResult* result) override { return reader_->Read(result); }
  absl::Status Finish() override;
  void Cancel() override { context_.TryCancel(); }
  const char* kind() const override { return "grpc"; }

 private:
  std::unique_ptr<v1::Worker::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::StepResult>> reader_;
};

class GrpcResultSink final : public ResultSink {
 public:
  GrpcResultSink(grpc::ServerContext* context, grpc::ServerWriter<v1::StepResult>* writer,
                 std::string coordinator)
      : context_(context), writer_(writer), coordinator_(std::move(coordinator)) {}

  bool Write(const v1::StepResult& result) override { return writer_->Write(result); }
  bool Cancelled() override { return context_->IsCancelled(); }
  std::string coordinator() const override { return coordinator_; }

 private:
  grpc::ServerContext* context_;
  grpc::ServerWriter<v1::StepResult>* writer_;
  std::string coordinator_;
};

}  // namespace layerpool

#endif  // LAYERPOOL_TRANSPORT_GRPC_CHUNK_STREAM_H_
