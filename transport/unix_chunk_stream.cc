#include "transport/unix_chunk_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <random>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/message_lite.h"
#include "base/secret_file.h"
#include "base/status_macros.h"

namespace layerpool {
namespace {

enum FrameType : uint32_t {
  kHello = 1,
  kStatus = 2,
  kChunk = 3,
  kAck = 4,
  kResult = 5,
  kResultsHello = 6,
};

// A StepResult carries at most a micro-batch's tokens, logprobs and pooled
// embeddings.
constexpr uint32_t kMaxResultBytes = 64u << 20;

struct FrameHeader {
  uint32_t length;
  uint32_t type;
};

// Room for a status message or a token, whatever the data limit.
constexpr uint32_t kMinPayloadLimit = 64 * 1024;

std::string Errno(const char* what) { return absl::StrCat(what, ": ", std::strerror(errno)); }

socklen_t AbstractAddress(const std::string& name, sockaddr_un* address) {
  std::memset(address, 0, sizeof(*address));
  address->sun_family = AF_UNIX;
  const size_t n = std::min(name.size(), sizeof(address->sun_path) - 1);
  std::memcpy(address->sun_path + 1, name.data(), n);  // sun_path[0] = 0: abstract
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

bool WriteFrame(int fd, uint32_t type, const std::string& payload) {
  FrameHeader header{static_cast<uint32_t>(payload.size()), type};
  iovec parts[2] = {{&header, sizeof(header)},
                    {const_cast<char*>(payload.data()), payload.size()}};
  size_t skip = 0;  // bytes already sent
  const size_t total = sizeof(header) + payload.size();
  while (skip < total) {
    iovec pending[2];
    int n = 0;
    size_t offset = skip;
    for (const iovec& part : parts) {
      if (offset >= part.iov_len) {
        offset -= part.iov_len;
        continue;
      }
      pending[n++] = {static_cast<char*>(part.iov_base) + offset, part.iov_len - offset};
      offset = 0;
    }
    msghdr message{};
    message.msg_iov = pending;
    message.msg_iovlen = static_cast<size_t>(n);
    const ssize_t sent = sendmsg(fd, &message, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    skip += static_cast<size_t>(sent);
  }
  return true;
}

bool ReadAll(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t got = recv(fd, data, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    data += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

// The next frame's type, with its payload in *payload; Unavailable when the
// peer closed, InvalidArgument for a payload over `limit`.
absl::StatusOr<uint32_t> ReadFrame(int fd, uint32_t limit, std::string* payload) {
  FrameHeader header;
  if (!ReadAll(fd, reinterpret_cast<char*>(&header), sizeof(header))) {
    return absl::UnavailableError("the connection closed");
  }
  if (header.length > std::max(limit, kMinPayloadLimit)) {
    return absl::InvalidArgumentError(absl::StrCat("a frame of ", header.length,
                                                   " bytes is over the limit of ", limit));
  }
  payload->resize(header.length);
  if (!ReadAll(fd, payload->data(), header.length)) {
    return absl::UnavailableError("the connection closed within a frame");
  }
  return header.type;
}

std::string EncodeStatus(const absl::Status& status) {
  const uint32_t code = static_cast<uint32_t>(status.code());
  std::string out(reinterpret_cast<const char*>(&code), sizeof(code));
  out.append(status.message().data(), status.message().size());
  return out;
}

absl::Status DecodeStatus(const std::string& payload) {
  uint32_t code = static_cast<uint32_t>(absl::StatusCode::kUnknown);
  if (payload.size() >= sizeof(code)) std::memcpy(&code, payload.data(), sizeof(code));
  if (code > static_cast<uint32_t>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<uint32_t>(absl::StatusCode::kUnknown);
  }
  const size_t skip = std::min(payload.size(), sizeof(code));
  return absl::Status(static_cast<absl::StatusCode>(code),
                      absl::string_view(payload.data() + skip, payload.size() - skip));
}

std::string RandomName() {
  std::random_device random;
  std::string name = "layerpool-";
  for (int i = 0; i < 4; ++i) absl::StrAppend(&name, absl::Hex(random(), absl::kZeroPad8));
  return name;
}

void SetReceiveTimeout(int fd, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

// What the connecting end reads: a frame of `type` parsed into *message
// (true), or the stream's end in *end (false): the other end's closing
// status, a closed connection, or a malformed or unexpected frame.
bool ReadReply(int fd, uint32_t limit, uint32_t type, const char* what, std::string* buffer,
               google::protobuf::MessageLite* message, absl::Status* end) {
  absl::StatusOr<uint32_t> got = ReadFrame(fd, limit, buffer);
  if (!got.ok()) {
    *end = got.status();
  } else if (*got == type) {
    if (message->ParseFromString(*buffer)) return true;
    *end = absl::InvalidArgumentError(absl::StrCat("a malformed ", what, " on the Unix socket"));
  } else if (*got == kStatus) {
    *end = DecodeStatus(*buffer);
  } else {
    *end = absl::InvalidArgumentError(absl::StrCat("frame type ", *got, " on the Unix socket"));
  }
  return false;
}

// Connects `fd` (non-blocking, as socket() made it) to the listener `name`
// and says `hello_type` with the token and lease id; the listener's verdict.
absl::Status Greet(int fd, const std::string& name, uint32_t hello_type,
                   const std::string& token, const std::string& coordinator,
                   absl::Duration timeout) {
  sockaddr_un address;
  const socklen_t length = AbstractAddress(name, &address);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    // No listener of that name in this network namespace: another host.
    return absl::UnavailableError(
        absl::StrCat("no Unix socket @", name, " here (", std::strerror(errno), ")"));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const std::string hello = coordinator.empty() ? token : absl::StrCat(token, "\n", coordinator);
  if (!WriteFrame(fd, hello_type, hello)) {
    // A listener refusing us (at its stream limit) may have written its
    // verdict and closed before our hello arrived: read it if it is there.
    const absl::Status unsent = absl::UnavailableError(Errno("saying hello on the Unix socket"));
    std::string payload;
    absl::StatusOr<uint32_t> type = ReadFrame(fd, kMinPayloadLimit, &payload);
    if (type.ok() && *type == kStatus) {
      absl::Status verdict = DecodeStatus(payload);
      if (!verdict.ok()) return verdict;
    }
    return unsent;
  }
  pollfd ready{fd, POLLIN, 0};
  if (poll(&ready, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) {
    return absl::UnavailableError(
        absl::StrCat("no answer on Unix socket @", name, " within ", absl::FormatDuration(timeout)));
  }
  std::string payload;
  absl::StatusOr<uint32_t> type = ReadFrame(fd, kMinPayloadLimit, &payload);
  if (!type.ok()) return absl::UnavailableError(type.status().message());
  if (*type != kStatus) return absl::UnavailableError("the Unix socket answered hello with no status");
  return DecodeStatus(payload);
}

}  // namespace

// ---------------------------------------------------------------- sender

absl::StatusOr<std::unique_ptr<UnixChunkSender>> UnixChunkSender::Connect(
    const std::string& name, const std::string& token, const std::string& coordinator,
    absl::Duration timeout) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  std::unique_ptr<UnixChunkSender> sender(new UnixChunkSender(fd));
  LP_RETURN_IF_ERROR(Greet(fd, name, kHello, token, coordinator, timeout));
  return sender;
}

UnixChunkSender::~UnixChunkSender() { close(fd_); }

bool UnixChunkSender::Write(const v1::ActivationChunk& chunk) {
  write_buffer_.assign(sizeof(int64_t), '\0');
  chunk.AppendToString(&write_buffer_);
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  std::memcpy(write_buffer_.data(), &now, sizeof(now));
  return WriteFrame(fd_, kChunk, write_buffer_);
}

bool UnixChunkSender::ReadAck(v1::ActivationAck* ack) {
  absl::Status end;
  if (ReadReply(fd_, kMinPayloadLimit, kAck, "ack", &read_buffer_, ack, &end)) return true;
  absl::MutexLock lock(&mu_);
  final_status_ = end;
  return false;
}

absl::Status UnixChunkSender::Finish() {
  absl::MutexLock lock(&mu_);
  return final_status_;
}

void UnixChunkSender::Cancel() { shutdown(fd_, SHUT_RDWR); }

absl::StatusOr<std::unique_ptr<UnixResultSource>> UnixResultSource::Connect(
    const std::string& name, const std::string& token, const std::string& coordinator,
    absl::Duration timeout) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  std::unique_ptr<UnixResultSource> source(new UnixResultSource(fd));
  LP_RETURN_IF_ERROR(Greet(fd, name, kResultsHello, token, coordinator, timeout));
  return source;
}

UnixResultSource::~UnixResultSource() { close(fd_); }

bool UnixResultSource::Read(v1::StepResult* result) {
  return ReadReply(fd_, kMaxResultBytes, kResult, "StepResult", &buffer_, result,
                   &final_status_);
}

absl::Status UnixResultSource::Finish() { return final_status_; }

void UnixResultSource::Cancel() { shutdown(fd_, SHUT_RDWR); }

// ---------------------------------------------------------------- receiver

struct UnixChunkListener::Connection final : ChunkReceiver, ResultSink {
  explicit Connection(int fd, uint32_t max_payload) : fd(fd), max_payload(max_payload) {}
  ~Connection() override { close(fd); }

  bool Read(v1::ActivationChunk* chunk) override {
    absl::StatusOr<uint32_t> type = ReadFrame(fd, max_payload, &buffer);
    if (!type.ok()) {
      // The sender closing is the stream's normal end.
      if (!absl::IsUnavailable(type.status())) error = type.status();
      return false;
    }
    if (*type != kChunk) {
      error = absl::InvalidArgumentError(absl::StrCat("frame type ", *type, " is not a chunk"));
      return false;
    }
    int64_t sent_ns = 0;
    if (buffer.size() < sizeof(sent_ns) ||
        !chunk->ParseFromArray(buffer.data() + sizeof(sent_ns),
                               static_cast<int>(buffer.size() - sizeof(sent_ns)))) {
      error = absl::InvalidArgumentError("a malformed ActivationChunk");
      return false;
    }
    std::memcpy(&sent_ns, buffer.data(), sizeof(sent_ns));
    sent = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(sent_ns));
    return true;
  }

  std::optional<std::chrono::steady_clock::time_point> sent_at() const override { return sent; }
  std::string coordinator() const override { return coordinator_id; }

  bool Write(const v1::StepResult& result) override {
    result.SerializeToString(&buffer);
    return WriteFrame(fd, kResult, buffer);
  }

  // The coordinator sends nothing after its hello: anything readable is
  // its end of the stream (or garbage, which ends it too).
  bool Cancelled() override {
    if (cancelled.load()) return true;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) == 1 && p.revents != 0;
  }

  bool WriteAck(const v1::ActivationAck& ack) override {
    ack.SerializeToString(&buffer);
    return WriteFrame(fd, kAck, buffer);
  }

  void Cancel() {  // fd stays open until destruction
    cancelled.store(true);
    shutdown(fd, SHUT_RDWR);
  }

  const int fd;
  const uint32_t max_payload;
  std::string buffer;
  std::chrono::steady_clock::time_point sent;  // of the chunk read last
  std::string coordinator_id;  // from the hello, before the handler runs
  absl::Status error;  // why Read ended, when not the sender's close
  std::atomic<bool> done{false};
  std::atomic<bool> cancelled{false};
};

absl::StatusOr<std::unique_ptr<UnixChunkListener>> UnixChunkListener::Start(
    std::string token, uint32_t max_payload, Handler handler, ResultsHandler results_handler) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(Errno("socket"));
  std::string name = RandomName();
  sockaddr_un address;
  const socklen_t length = AbstractAddress(name, &address);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0 ||
      listen(fd, kMaxUnixStreams) != 0) {
    const std::string why = Errno("binding a Unix socket");
    close(fd);
    return absl::InternalError(why);
  }
  std::unique_ptr<UnixChunkListener> listener(new UnixChunkListener(
      fd, std::move(name), std::move(token), max_payload, std::move(handler),
      std::move(results_handler)));
  listener->accept_thread_ = std::thread([l = listener.get()] { l->AcceptLoop(); });
  return listener;
}

UnixChunkListener::UnixChunkListener(int fd, std::string name, std::string token,
                                     uint32_t max_payload, Handler handler,
                                     ResultsHandler results_handler)
    : fd_(fd),
      name_(std::move(name)),
      token_(std::move(token)),
      max_payload_(max_payload),
      handler_(std::move(handler)),
      results_handler_(std::move(results_handler)) {}

UnixChunkListener::~UnixChunkListener() {
  Stop();
  close(fd_);
}

void UnixChunkListener::Stop() {
  if (stopping_.exchange(true)) return;
  shutdown(fd_, SHUT_RDWR);  // accept returns
  if (accept_thread_.joinable()) accept_thread_.join();
  std::vector<Running> running;
  {
    absl::MutexLock lock(&mu_);
    running = std::move(running_);
  }
  for (Running& r : running) r.connection->Cancel();
  for (Running& r : running) r.thread.join();
}

void UnixChunkListener::AcceptLoop() {
  while (!stopping_.load()) {
    const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down
    }
    auto connection = std::make_shared<Connection>(fd, max_payload_);
    ucred peer{};
    socklen_t size = sizeof(peer);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 ||
        (peer.uid != geteuid() && peer.uid != 0)) {
      WriteFrame(fd, kStatus,
                 EncodeStatus(absl::PermissionDeniedError(
                     "this Unix socket serves its worker's own user only")));
      continue;  // closed with `connection`
    }
    absl::MutexLock lock(&mu_);
    // Reap the streams that have ended; refuse one over the limit.
    for (auto it = running_.begin(); it != running_.end();) {
      if (it->connection->done.load()) {
        it->thread.join();
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
    if (running_.size() >= static_cast<size_t>(kMaxUnixStreams)) {
      WriteFrame(fd, kStatus,
                 EncodeStatus(absl::ResourceExhaustedError(
                     absl::StrCat("this worker has ", kMaxUnixStreams, " Unix streams open"))));
      continue;
    }
    running_.push_back({connection, std::thread([this, connection] { Serve(connection); })});
  }
}

void UnixChunkListener::Serve(const std::shared_ptr<Connection>& connection) {
  const int fd = connection->fd;
  std::string payload;
  SetReceiveTimeout(fd, absl::Seconds(5));
  absl::StatusOr<uint32_t> type = ReadFrame(fd, kMinPayloadLimit, &payload);
  SetReceiveTimeout(fd, absl::ZeroDuration());
  absl::Status accepted;
  if (!type.ok()) {
    accepted = type.status();
  } else if (*type != kHello && *type != kResultsHello) {
    accepted = absl::InvalidArgumentError("the first frame must be hello");
  } else if (*type == kResultsHello && !results_handler_) {
    accepted = absl::UnimplementedError("this Unix socket carries no results");
  } else {
    // "token" or "token\ncoordinator".
    const size_t newline = payload.find('\n');
    const std::string_view token = std::string_view(payload).substr(0, newline);
    if (newline != std::string::npos) connection->coordinator_id = payload.substr(newline + 1);
    if (!token_.empty() && !SecretEquals(token, token_)) {
      accepted = absl::UnauthenticatedError(
          "wrong or missing token on the Unix socket: give both workers the same --token-file");
    }
  }
  WriteFrame(fd, kStatus, EncodeStatus(accepted));
  if (accepted.ok() && *type == kResultsHello) {
    WriteFrame(fd, kStatus, EncodeStatus(results_handler_(*connection)));
  } else if (accepted.ok()) {
    std::weak_ptr<Connection> weak = connection;
    absl::Status end = handler_(*connection, [weak] {
      if (std::shared_ptr<Connection> c = weak.lock()) c->Cancel();
    });
    if (end.ok()) end = connection->error;
    WriteFrame(fd, kStatus, EncodeStatus(end));
  }
  shutdown(fd, SHUT_RDWR);
  connection->done.store(true);
}

}  // namespace layerpool
