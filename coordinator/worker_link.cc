#include "coordinator/worker_link.h"

#include "absl/strings/str_cat.h"
#include "proto/peer_token.h"
#include "base/status_macros.h"
#include "proto/version.h"
#include "transport/grpc_chunk_stream.h"
#include "transport/unix_chunk_stream.h"

namespace layerpool {
namespace {

void SetDeadline(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(timeout));
}

}  // namespace

grpc::ChannelArguments LinkChannelArguments() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A worker restarted on its address is found again within a tenth of a
  // second, not after gRPC's default backoff of a second and more.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

// ---------------------------------------------------------------- sender

ActivationSender::ActivationSender(std::unique_ptr<ChunkSender> stream,
                                   std::function<void(const absl::Status&)> on_error)
    : stream_(std::move(stream)), on_error_(std::move(on_error)) {
  reader_ = std::thread([this] { ReadAcks(); });
}

ActivationSender::~ActivationSender() { Close(); }

absl::Status ActivationSender::Send(v1::ActivationChunk chunk) {
  {
    std::lock_guard lock(mu_);
    sent_[chunk.micro_batch_id()] = std::chrono::steady_clock::now();
  }
  if (!stream_->Write(chunk)) {
    return absl::UnavailableError("the stream is closed");
  }
  return absl::OkStatus();
}

void ActivationSender::ReadAcks() {
  v1::ActivationAck ack;
  std::chrono::steady_clock::time_point previous_ack;
  while (stream_->ReadAck(&ack)) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    auto it = sent_.find(ack.micro_batch_id());
    if (it == sent_.end()) continue;
    hop_us_sum_ += HopMicros(it->second, previous_ack, now, ack);
    previous_ack = now;
    sent_.erase(it);
    ++hop_count_;
  }
  const absl::Status status = stream_->Finish();
  if (!closed_) {
    on_error_(status.ok() ? absl::UnavailableError("the stage ended the stream")
                          : status);
  }
}

void ActivationSender::Close() {
  if (closed_.exchange(true)) return;
  stream_->Cancel();
  if (reader_.joinable()) reader_.join();
}

double ActivationSender::mean_hop_us() const {
  std::lock_guard lock(mu_);
  return hop_count_ > 0 ? hop_us_sum_ / static_cast<double>(hop_count_) : 0;
}

// ---------------------------------------------------------------- link

absl::StatusOr<std::unique_ptr<WorkerLink>> WorkerLink::Connect(
    const std::string& address, const std::string& token, const std::optional<TlsFiles>& tls,
    absl::Duration timeout, bool wait_for_ready) {
  std::unique_ptr<WorkerLink> link(new WorkerLink());
  link->address_ = address;
  link->token_ = token;
  link->channel_ = grpc::CreateCustomChannel(
      address, WorkerChannelCredentials(tls), LinkChannelArguments());
  link->stub_ = v1::Worker::NewStub(link->channel_);

  grpc::ClientContext context;
  link->Authorize(&context);
  SetDeadline(context, timeout);
  context.set_wait_for_ready(wait_for_ready);
  v1::HelloRequest hello;
  *hello.mutable_protocol_version() = CurrentProtocolVersion();
  hello.set_build(kBuildName);
  grpc::Status st = link->stub_->Hello(&context, hello, &link->hello_);
  if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    // Nothing listening and a refused TLS handshake look alike from here.
    return absl::UnavailableError(absl::StrCat(
        "worker ", address, ": no connection within ", absl::FormatDuration(timeout),
        ": is it running, and do both sides agree on --tls-dir (same CA, the worker's "
        "certificate naming this address)?"));
  }
  if (!st.ok()) {
    return absl::Status(FromGrpc(st).code(),
                        absl::StrCat("worker ", address, ": ", st.error_message()));
  }
  if (absl::Status v = CheckPeerVersion(link->hello_.protocol_version(),
                                        absl::StrCat("worker ", address),
                                        "this coordinator");
      !v.ok()) {
    return v;
  }
  link->free_thread_ = std::thread([l = link.get()] { l->FreeLoop(); });
  return link;
}

WorkerLink::~WorkerLink() {
  {
    std::lock_guard lock(free_mu_);
    free_stop_ = true;
    free_cv_.notify_all();
  }
  if (free_thread_.joinable()) free_thread_.join();
}

void WorkerLink::Authorize(grpc::ClientContext* context) const {
  AddPeerToken(context, token_);
  AddCoordinatorId(context, ThisCoordinatorId());
}

void WorkerLink::Release(absl::Duration timeout) {
  grpc::ClientContext context;
  Authorize(&context);
  SetDeadline(context, timeout);
  v1::ReleaseResponse response;
  (void)stub_->Release(&context, v1::ReleaseRequest(), &response);
}

absl::Status WorkerLink::LoadStage(const v1::LoadStageRequest& request) {
  grpc::ClientContext context;
  Authorize(&context);
  return FromGrpc(stub_->LoadStage(&context, request, &loaded_));
}

absl::Status WorkerLink::ConnectDownstream(const v1::ConnectDownstreamRequest& request) {
  grpc::ClientContext context;
  Authorize(&context);
  SetDeadline(context, absl::Seconds(30));
  v1::ConnectDownstreamResponse response;
  LP_RETURN_IF_ERROR(FromGrpc(stub_->ConnectDownstream(&context, request, &response)));
  link_to_next_ = response.link();
  return absl::OkStatus();
}

absl::Status WorkerLink::CheckHealth(absl::Duration timeout) {
  grpc::ClientContext context;
  Authorize(&context);
  SetDeadline(context, timeout);
  v1::HealthResponse response;
  absl::Status st = FromGrpc(stub_->Health(&context, v1::HealthRequest(), &response));
  if (st.ok() && response.state() != v1::STAGE_STATE_READY) {
    st = absl::FailedPreconditionError(absl::StrCat(
        "stage state ", v1::StageState_Name(response.state()),
        response.message().empty() ? "" : ": ", response.message()));
  } else if (!st.ok()) {
    st = absl::UnavailableError(
        st.code() == absl::StatusCode::kDeadlineExceeded
            ? absl::StrCat("no answer to a health check within ", absl::FormatDuration(timeout))
            : std::string(st.message()));
  }
  healthy_ = st.ok();
  return st;
}

absl::StatusOr<v1::StatsResponse> WorkerLink::Stats() {
  grpc::ClientContext context;
  Authorize(&context);
  SetDeadline(context, absl::Seconds(5));
  v1::StatsResponse response;
  absl::Status st = FromGrpc(stub_->Stats(&context, v1::StatsRequest(), &response));
  if (!st.ok()) return st;
  return response;
}

std::shared_future<void> WorkerLink::FreeSequencesAsync(std::vector<uint64_t> ids) {
  std::lock_guard lock(free_mu_);
  free_queue_.push_back({std::move(ids), std::promise<void>()});
  std::shared_future<void> done = free_queue_.back().done.get_future().share();
  free_cv_.notify_all();
  return done;
}

void WorkerLink::FreeLoop() {
  std::unique_lock lock(free_mu_);
  while (true) {
    free_cv_.wait(lock, [&] { return free_stop_ || !free_queue_.empty(); });
    if (free_stop_) return;
    v1::FreeSequenceRequest request;
    std::vector<std::promise<void>> done;
    while (!free_queue_.empty()) {
      for (uint64_t id : free_queue_.front().ids) request.add_seq_ids(id);
      done.push_back(std::move(free_queue_.front().done));
      free_queue_.pop_front();
    }
    lock.unlock();
    grpc::ClientContext context;
    Authorize(&context);
    SetDeadline(context, absl::Seconds(5));
    v1::FreeSequenceResponse response;
    (void)stub_->FreeSequence(&context, request, &response);
    for (std::promise<void>& p : done) p.set_value();
    lock.lock();
  }
}

std::unique_ptr<ResultSource> WorkerLink::OpenResults(bool try_unix_socket) {
  if (try_unix_socket && !hello_.unix_socket().empty()) {
    absl::StatusOr<std::unique_ptr<UnixResultSource>> local = UnixResultSource::Connect(
        hello_.unix_socket(), token_, ThisCoordinatorId(), absl::Seconds(5));
    if (local.ok()) return *std::move(local);
  }
  return std::make_unique<GrpcResultSource>(channel_, token_, ThisCoordinatorId());
}

absl::StatusOr<std::unique_ptr<ActivationSender>> WorkerLink::OpenActivations(
    std::function<void(const absl::Status&)> on_error, bool try_unix_socket) {
  std::unique_ptr<ChunkSender> stream;
  if (try_unix_socket && !hello_.unix_socket().empty()) {
    // Not there (another host) or refused: gRPC, which always works.
    absl::StatusOr<std::unique_ptr<UnixChunkSender>> local =
        UnixChunkSender::Connect(hello_.unix_socket(), token_, ThisCoordinatorId(),
                                absl::Seconds(5));
    if (local.ok()) stream = *std::move(local);
  }
  if (stream == nullptr) stream = std::make_unique<GrpcChunkSender>(channel_, token_, ThisCoordinatorId());
  return std::make_unique<ActivationSender>(std::move(stream), std::move(on_error));
}

}  // namespace layerpool
