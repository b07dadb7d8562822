#include "transport/grpc_chunk_stream.h"

#include "proto/peer_token.h"
#include "proto/version.h"

namespace layerpool {

GrpcChunkSender::GrpcChunkSender(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::string& token, const std::string& coordinator)
    : stub_(v1::Worker::NewStub(channel)) {
  AddPeerToken(&context_, token);
  AddCoordinatorId(&context_, coordinator);
  stream_ = stub_->Activations(&context_);
}

bool GrpcChunkSender::Write(const v1::ActivationChunk& chunk) { return stream_->Write(chunk); }

bool GrpcChunkSender::ReadAck(v1::ActivationAck* ack) { return stream_->Read(ack); }

absl::Status GrpcChunkSender::Finish() { return FromGrpc(stream_->Finish()); }

void GrpcChunkSender::Cancel() { context_.TryCancel(); }

GrpcResultSource::GrpcResultSource(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& token, const std::string& coordinator)
    : stub_(v1::Worker::NewStub(channel)) {
  AddPeerToken(&context_, token);
  AddCoordinatorId(&context_, coordinator);
  reader_ = stub_->Results(&context_, v1::ResultsRequest());
}

absl::Status GrpcResultSource::Finish() { return FromGrpc(reader_->Finish()); }

}  // namespace layerpool
