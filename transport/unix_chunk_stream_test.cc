#include "transport/unix_chunk_stream.h"

#include <chrono>
#include <optional>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <utility>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace layerpool {
namespace {

constexpr char kToken[] = "0123456789abcdef-token";
constexpr uint32_t kLimit = 1 << 20;

v1::ActivationChunk Chunk(uint64_t id, size_t bytes) {
  v1::ActivationChunk chunk;
  chunk.set_micro_batch_id(id);
  chunk.mutable_hidden()->set_data(std::string(bytes, static_cast<char>('a' + id % 26)));
  return chunk;
}

// Acks every chunk with its id and size; ends with `end` after `n` chunks.
UnixChunkListener::Handler Acker(int n, absl::Status end) {
  return [n, end](ChunkReceiver& receiver, std::function<void()>) -> absl::Status {
    v1::ActivationChunk chunk;
    for (int i = 0; i < n; ++i) {
      if (!receiver.Read(&chunk)) return absl::OkStatus();
      v1::ActivationAck ack;
      ack.set_micro_batch_id(chunk.micro_batch_id());
      ack.set_compute_us(static_cast<uint32_t>(chunk.hidden().data().size()));
      if (!receiver.WriteAck(ack)) return absl::OkStatus();
    }
    return end;
  };
}

TEST(UnixChunkStream, CarriesChunksAndAcksThenTheReceiversStatus) {
  auto listener = UnixChunkListener::Start(kToken, kLimit,
                                           Acker(3, absl::DataLossError("stage 1: gone")));
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto sender = UnixChunkSender::Connect((*listener)->name(), kToken, "", absl::Seconds(5));
  ASSERT_TRUE(sender.ok()) << sender.status();
  // Large enough to need several writes through the socket buffer.
  for (uint64_t id : {7u, 8u, 9u}) {
    ASSERT_TRUE((*sender)->Write(Chunk(id, 600000)));
    v1::ActivationAck ack;
    ASSERT_TRUE((*sender)->ReadAck(&ack));
    EXPECT_EQ(ack.micro_batch_id(), id);
    EXPECT_EQ(ack.compute_us(), 600000u);
  }
  v1::ActivationAck ack;
  EXPECT_FALSE((*sender)->ReadAck(&ack));
  const absl::Status end = (*sender)->Finish();
  EXPECT_TRUE(absl::IsDataLoss(end)) << end;
  EXPECT_EQ(end.message(), "stage 1: gone");
}

// The receiver learns when each chunk was written (one host, one clock),
// and HopMicros prefers the receiver's transit to the halved round trip.
TEST(UnixChunkStream, ChunksCarryTheirWriteTime) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point before, after;
  std::optional<Clock::time_point> stamped;
  absl::Notification read;
  auto listener = UnixChunkListener::Start(
      "", kLimit, [&](ChunkReceiver& receiver, std::function<void()>) -> absl::Status {
        v1::ActivationChunk chunk;
        if (receiver.Read(&chunk)) {
          after = Clock::now();
          stamped = receiver.sent_at();
        }
        read.Notify();
        return absl::OkStatus();
      });
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto sender = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
  ASSERT_TRUE(sender.ok()) << sender.status();
  before = Clock::now();
  ASSERT_TRUE((*sender)->Write(Chunk(1, 100)));
  read.WaitForNotification();
  ASSERT_TRUE(stamped.has_value());
  EXPECT_LE(before, *stamped);
  EXPECT_LE(*stamped, after);

  v1::ActivationAck ack;
  ack.set_queue_us(100);
  ack.set_compute_us(1000);
  const Clock::time_point t0 = Clock::now();
  EXPECT_DOUBLE_EQ(HopMicros(t0, {}, t0 + std::chrono::microseconds(1500), ack), 200);
  ack.set_transit_us(37);
  EXPECT_DOUBLE_EQ(HopMicros(t0, {}, t0 + std::chrono::microseconds(1500), ack), 37);
}

TEST(UnixChunkStream, RefusesAWrongOrMissingToken) {
  auto listener = UnixChunkListener::Start(kToken, kLimit, Acker(1, absl::OkStatus()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  for (const std::string token : {"", "0123456789abcdef-other"}) {
    auto sender = UnixChunkSender::Connect((*listener)->name(), token, "", absl::Seconds(5));
    ASSERT_FALSE(sender.ok());
    EXPECT_TRUE(absl::IsUnauthenticated(sender.status())) << sender.status();
    EXPECT_NE(sender.status().message().find("--token-file"), std::string::npos);
  }
}

TEST(UnixChunkStream, TheReceiverSeesTheSendersCoordinator) {
  const std::string coordinator = "0123456789abcdef0123456789abcdef";
  for (const std::string& given : {coordinator, std::string()}) {
    std::string seen = "unset";
    auto listener = UnixChunkListener::Start(
        kToken, kLimit, [&seen](ChunkReceiver& receiver, std::function<void()>) {
          seen = receiver.coordinator();
          return absl::OkStatus();
        });
    ASSERT_TRUE(listener.ok()) << listener.status();
    auto sender = UnixChunkSender::Connect((*listener)->name(), kToken, given, absl::Seconds(5));
    ASSERT_TRUE(sender.ok()) << sender.status();
    v1::ActivationAck ack;
    EXPECT_FALSE((*sender)->ReadAck(&ack));
    EXPECT_TRUE((*sender)->Finish().ok());
    EXPECT_EQ(seen, given);
  }
}

TEST(UnixChunkStream, CarriesResultsThenTheWorkersStatus) {
  const std::string coordinator = "0123456789abcdef0123456789abcdef";
  std::string seen;
  auto listener = UnixChunkListener::Start(
      kToken, kLimit, Acker(0, absl::OkStatus()), [&seen](ResultSink& sink) -> absl::Status {
        seen = sink.coordinator();
        for (uint64_t id : {4u, 5u, 6u}) {
          v1::StepResult result;
          result.set_micro_batch_id(id);
          result.add_tokens()->set_token(static_cast<int32_t>(100 + id));
          if (!sink.Write(result)) return absl::OkStatus();
        }
        return absl::DataLossError("stage 1: gone");
      });
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto source = UnixResultSource::Connect((*listener)->name(), kToken, coordinator,
                                          absl::Seconds(5));
  ASSERT_TRUE(source.ok()) << source.status();
  for (uint64_t id : {4u, 5u, 6u}) {
    v1::StepResult result;
    ASSERT_TRUE((*source)->Read(&result));
    EXPECT_EQ(result.micro_batch_id(), id);
    ASSERT_EQ(result.tokens_size(), 1);
    EXPECT_EQ(result.tokens(0).token(), static_cast<int32_t>(100 + id));
  }
  v1::StepResult result;
  EXPECT_FALSE((*source)->Read(&result));
  const absl::Status end = (*source)->Finish();
  EXPECT_TRUE(absl::IsDataLoss(end)) << end;
  EXPECT_EQ(end.message(), "stage 1: gone");
  EXPECT_EQ(seen, coordinator);
}

TEST(UnixChunkStream, TheWorkerSeesTheCoordinatorLeaveItsResults) {
  absl::Notification left;
  auto listener = UnixChunkListener::Start(kToken, kLimit, Acker(0, absl::OkStatus()),
                                           [&left](ResultSink& sink) -> absl::Status {
                                             while (!sink.Cancelled()) {
                                               std::this_thread::sleep_for(
                                                   std::chrono::milliseconds(5));
                                             }
                                             left.Notify();
                                             return absl::CancelledError("subscriber left");
                                           });
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto source = UnixResultSource::Connect((*listener)->name(), kToken, "", absl::Seconds(5));
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_FALSE(left.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  source->reset();  // the coordinator closes its end
  EXPECT_TRUE(left.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(UnixChunkStream, AListenerWithoutResultsRefusesThem) {
  auto listener = UnixChunkListener::Start(kToken, kLimit, Acker(0, absl::OkStatus()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto source = UnixResultSource::Connect((*listener)->name(), kToken, "", absl::Seconds(5));
  ASSERT_FALSE(source.ok());
  EXPECT_TRUE(absl::IsUnimplemented(source.status())) << source.status();
}

TEST(UnixChunkStream, AnUnknownNameIsUnavailable) {
  auto sender = UnixChunkSender::Connect("layerpool-nobody-listens-here", "", "",
                                         absl::Seconds(1));
  ASSERT_FALSE(sender.ok());
  EXPECT_TRUE(absl::IsUnavailable(sender.status())) << sender.status();
}

TEST(UnixChunkStream, AFrameOverTheLimitEndsTheStreamWithInvalidArgument) {
  auto listener = UnixChunkListener::Start("", 100000, Acker(5, absl::OkStatus()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto sender = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
  ASSERT_TRUE(sender.ok()) << sender.status();
  // The receiver stops reading at the header; the write may or may not
  // complete into the socket buffer before the connection closes.
  (void)(*sender)->Write(Chunk(1, 200000));
  v1::ActivationAck ack;
  EXPECT_FALSE((*sender)->ReadAck(&ack));
  const absl::Status end = (*sender)->Finish();
  EXPECT_TRUE(absl::IsInvalidArgument(end)) << end;
  EXPECT_NE(end.message().find("over the limit"), std::string::npos) << end;
}

TEST(UnixChunkStream, TheReceiverCancelsABlockedRead) {
  absl::Notification reading;
  std::function<void()> cancel;
  absl::Mutex mu;
  auto listener = UnixChunkListener::Start(
      "", kLimit, [&](ChunkReceiver& receiver, std::function<void()> c) -> absl::Status {
        {
          absl::MutexLock lock(&mu);
          cancel = std::move(c);
        }
        reading.Notify();
        v1::ActivationChunk chunk;
        EXPECT_FALSE(receiver.Read(&chunk));
        return absl::CancelledError("replaced by a newer stream");
      });
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto sender = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
  ASSERT_TRUE(sender.ok()) << sender.status();
  reading.WaitForNotification();
  {
    absl::MutexLock lock(&mu);
    cancel();
  }
  v1::ActivationAck ack;
  EXPECT_FALSE((*sender)->ReadAck(&ack));
  (*listener)->Stop();
  absl::MutexLock lock(&mu);
  cancel();  // safe after the stream has ended
}

// A ninth stream while eight are open is refused, naming the limit; one
// that ends makes room again.
TEST(UnixChunkStream, AtMostEightStreamsAtOnce) {
  auto listener = UnixChunkListener::Start("", kLimit, Acker(1000, absl::OkStatus()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::vector<std::unique_ptr<UnixChunkSender>> open;
  for (int i = 0; i < kMaxUnixStreams; ++i) {
    auto sender = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
    ASSERT_TRUE(sender.ok()) << i << ": " << sender.status();
    open.push_back(*std::move(sender));
  }
  auto refused = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("8 Unix streams"), std::string::npos);

  open.pop_back();  // closes: its handler ends
  absl::StatusOr<std::unique_ptr<UnixChunkSender>> again;
  for (int i = 0; i < 200; ++i) {
    again = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
    if (again.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(UnixChunkStream, StopEndsOpenStreamsWithoutWaitingForTheSender) {
  auto listener = UnixChunkListener::Start("", kLimit, Acker(100, absl::OkStatus()));
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto sender = UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(5));
  ASSERT_TRUE(sender.ok()) << sender.status();
  (*listener)->Stop();  // the handler is blocked in Read
  v1::ActivationAck ack;
  EXPECT_FALSE((*sender)->ReadAck(&ack));
  EXPECT_FALSE(UnixChunkSender::Connect((*listener)->name(), "", "", absl::Seconds(1)).ok());
}

}  // namespace
}  // namespace layerpool
