#include "worker/downstream_link.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "proto/peer_token.h"
#include "proto/version.h"
#include "transport/grpc_chunk_stream.h"
#include "transport/unix_chunk_stream.h"
#include "worker/activation_chunks.h"

namespace layerpool {
namespace {

// A peer announcing no limit (an older build) gets gRPC's default receive
// limit; one announcing more than this is capped, so the channel's own
// send limit stays a plain int.
constexpr size_t kDefaultPeerMessageBytes = 4u << 20;
constexpr size_t kMaxPeerMessageBytes = 1u << 30;
constexpr uint32_t kMaxPeerInflight = 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<DownstreamLink>> DownstreamLink::Connect(
    Options options) {
  std::unique_ptr<DownstreamLink> link(new DownstreamLink(std::move(options)));
  const Options& o = link->options_;
  auto fail = [&](absl::StatusCode code, absl::string_view why) {
    return absl::Status(
        code, absl::StrCat("stage ", o.stage_index, ": next stage ",
                           o.stage_index + 1, " at ", o.address, ": ", why));
  };
  grpc::ChannelArguments args;
  // Explicit limits: gRPC's default 4 MiB receive cap would bite prefill.
  // Only acks and Hello come back on this channel.
  args.SetMaxSendMessageSize(static_cast<int>(kMaxPeerMessageBytes));
  args.SetMaxReceiveMessageSize(static_cast<int>(kMaxMessageBytes));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(o.address, WorkerChannelCredentials(o.tls), args);
  std::unique_ptr<v1::Worker::Stub> stub = v1::Worker::NewStub(channel);

  v1::HelloRequest hello;
  *hello.mutable_protocol_version() = CurrentProtocolVersion();
  hello.set_build(kBuildName);
  hello.add_capabilities("f16-activations");
  v1::HelloResponse peer;
  grpc::ClientContext hello_context;
  hello_context.set_deadline(absl::ToChronoTime(absl::Now() + o.hello_timeout));
  AddPeerToken(&hello_context, o.token);
  AddCoordinatorId(&hello_context, o.coordinator);
  const grpc::Status hello_status =
      stub->Hello(&hello_context, hello, &peer);
  if (!hello_status.ok()) {
    return fail(absl::StatusCode::kUnavailable,
                absl::StrCat("Hello failed: ", hello_status.error_message()));
  }
  if (absl::Status s = CheckPeerVersion(
          peer.protocol_version(),
          absl::StrCat("next stage ", o.stage_index + 1, " at ", o.address),
          absl::StrCat("stage ", o.stage_index));
      !s.ok()) {
    return s;
  }
  // Builds before bf16 and q8_0 existed take f32 and f16 only.
  const std::string capability = absl::StrCat(WireTypeName(o.activation_type), "-activations");
  if (o.activation_type != v1::ELEMENT_TYPE_F32 &&
      std::find(peer.capabilities().begin(), peer.capabilities().end(), capability) ==
          peer.capabilities().end()) {
    return fail(absl::StatusCode::kFailedPrecondition,
                absl::StrCat("it does not take ", WireTypeName(o.activation_type),
                             " activations"));
  }
  link->max_message_bytes_ =
      peer.max_message_bytes() == 0
          ? kDefaultPeerMessageBytes
          : std::min<size_t>(peer.max_message_bytes(), kMaxPeerMessageBytes);
  link->max_inflight_chunks_ =
      std::clamp<uint32_t>(peer.max_inflight_chunks(), 1, kMaxPeerInflight);

  std::string why_not_unix;
  if (!o.try_unix_socket) {
    link->description_ = "grpc";
  } else if (peer.unix_socket().empty()) {
    why_not_unix = "the next worker offers no Unix socket";
  } else {
    absl::StatusOr<std::unique_ptr<UnixChunkSender>> unix_sender =
        UnixChunkSender::Connect(peer.unix_socket(), o.token, o.coordinator, o.hello_timeout);
    if (unix_sender.ok()) {
      link->sender_ = *std::move(unix_sender);
      link->description_ = "unix socket";
    } else {
      why_not_unix = std::string(unix_sender.status().message());
    }
  }
  if (link->sender_ == nullptr) {
    link->sender_ = std::make_unique<GrpcChunkSender>(channel, o.token, o.coordinator);
    if (!why_not_unix.empty()) link->description_ = absl::StrCat("grpc (", why_not_unix, ")");
  }
  link->ack_thread_ = std::thread([l = link.get()] { l->ReadAcks(); });
  return link;
}

DownstreamLink::~DownstreamLink() {
  Close();
  if (ack_thread_.joinable()) ack_thread_.join();
}

absl::Status DownstreamLink::Broken(const absl::Status& cause) const {
  const std::string why = cause.ok() ? std::string("it ended the stream")
                          : cause.message().empty()
                              ? absl::StatusCodeToString(cause.code())
                              : std::string(cause.message());
  return absl::UnavailableError(absl::StrCat(
      "stage ", options_.stage_index, ": next stage ", options_.stage_index + 1,
      " at ", options_.address, ": ", why));
}

absl::Status DownstreamLink::FinishLocked() {
  if (!finished_) {
    finished_ = true;
    final_status_ = sender_->Finish();
  }
  return Broken(final_status_);
}

absl::Status DownstreamLink::Send(
    const std::vector<v1::ActivationChunk>& chunks) {
  absl::MutexLock send_lock(&send_mu_);
  if (finished_) return Broken(final_status_);
  if (chunks.empty()) return absl::OkStatus();
  if (!WaitForRoom(chunks.back().micro_batch_id(),
                   static_cast<uint32_t>(chunks.size()))) {
    return FinishLocked();
  }
  for (const v1::ActivationChunk& chunk : chunks) {
    if (!sender_->Write(chunk)) {
      // Finish may only follow the last Read; the ack thread sees the
      // stream's end as this Write did.
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&acks_done_));
      break;
    }
  }
  // Checked after the loop so Finish runs without mu_ held.
  bool done;
  {
    absl::MutexLock lock(&mu_);
    done = acks_done_;
  }
  return done ? FinishLocked() : absl::OkStatus();
}

bool DownstreamLink::WaitForRoom(uint64_t micro_batch_id, uint32_t n) {
  // A micro-batch of more chunks than the window waits for an empty pipe
  // rather than forever.
  auto room = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return acks_done_ || inflight_chunks_ == 0 ||
           inflight_chunks_ + n <= max_inflight_chunks_;
  };
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&room));
  if (acks_done_) return false;
  inflight_chunks_ += n;
  // A repeated id (a coordinator counting afresh) shares the entry, so its
  // chunks still leave the window with the first ack.
  InFlight& entry =
      inflight_
          .try_emplace(micro_batch_id,
                       InFlight{std::chrono::steady_clock::now(), 0})
          .first->second;
  entry.chunks += n;
  return true;
}

void DownstreamLink::Close() {
  closing_.store(true);
  if (sender_ != nullptr) sender_->Cancel();
}

void DownstreamLink::ReadAcks() {
  v1::ActivationAck ack;
  std::chrono::steady_clock::time_point previous_ack;
  while (sender_->ReadAck(&ack)) {
    const auto now = std::chrono::steady_clock::now();
    absl::MutexLock lock(&mu_);
    auto it = inflight_.find(ack.micro_batch_id());
    if (it == inflight_.end()) continue;  // not ours to account
    hop_.Add(HopMicros(it->second.sent, previous_ack, now, ack));
    previous_ack = now;
    inflight_chunks_ -= std::min(inflight_chunks_, it->second.chunks);
    inflight_.erase(it);
  }
  {
    absl::MutexLock lock(&mu_);
    acks_done_ = true;
  }
  absl::Status status;
  {
    absl::MutexLock send_lock(&send_mu_);
    status = FinishLocked();
  }
  if (!closing_.load() && options_.on_broken) options_.on_broken(status);
}

}  // namespace layerpool
