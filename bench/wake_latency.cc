// The floor under a pipeline hop on this machine: how long a message takes
// from one process to another over a Unix socket when the receiver has sat
// idle in recv() for a while, as a stage does while the one before it
// computes. Sends --count messages of --bytes bytes (a hidden-state row is
// 8 KiB at f32 for a 2048-wide model) with --idle-us of busy work before
// each, and prints the one-way latency (the send stamp rides in the
// message; both ends share the monotonic clock) against the same with no
// idle time.
//
//   build/bench/wake_latency [--bytes 8192] [--idle-us 15000] [--count 200]
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"

ABSL_FLAG(int64_t, bytes, 8192, "message size, bytes");
ABSL_FLAG(int64_t, idle_us, 15000, "busy work before each message, microseconds");
ABSL_FLAG(int64_t, count, 200, "messages per measurement (the first tenth not counted)");

namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

bool ReadAll(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t got = read(fd, data, n);
    if (got <= 0) return false;
    data += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

// Median one-way latency in microseconds of `count` messages of `bytes`,
// each after `idle_us` of the sender's busy work; -1 on a socket error.
double Measure(int64_t bytes, int64_t idle_us, int64_t count) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return -1;
  std::vector<char> buffer(static_cast<size_t>(std::max<int64_t>(bytes, 8)));
  const pid_t child = fork();
  if (child == 0) {  // the receiver: read, stamp, answer one byte
    close(fds[0]);
    std::vector<double> one_way;
    for (int64_t i = 0; i < count; ++i) {
      if (!ReadAll(fds[1], buffer.data(), buffer.size())) _exit(1);
      int64_t sent = 0;
      std::memcpy(&sent, buffer.data(), sizeof(sent));
      one_way.push_back(static_cast<double>(NowNs() - sent) / 1000);
      if (write(fds[1], "k", 1) != 1) _exit(1);
    }
    one_way.erase(one_way.begin(), one_way.begin() + count / 10);
    std::sort(one_way.begin(), one_way.end());
    const double median = one_way[one_way.size() / 2];
    _exit(write(fds[1], &median, sizeof(median)) == sizeof(median) ? 0 : 1);
  }
  close(fds[1]);
  for (int64_t i = 0; i < count; ++i) {
    const Clock::time_point until = Clock::now() + std::chrono::microseconds(idle_us);
    while (Clock::now() < until) {
    }
    const int64_t now = NowNs();
    std::memcpy(buffer.data(), &now, sizeof(now));
    char ack;
    if (write(fds[0], buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size()) ||
        read(fds[0], &ack, 1) != 1) {
      return -1;
    }
  }
  double median = -1;
  if (!ReadAll(fds[0], reinterpret_cast<char*>(&median), sizeof(median))) median = -1;
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return median;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "one-way latency of a Unix-socket message to a process that sat idle (the floor "
      "under a pipeline hop)");
  absl::ParseCommandLine(argc, argv);
  const int64_t bytes = absl::GetFlag(FLAGS_bytes);
  const int64_t idle_us = absl::GetFlag(FLAGS_idle_us);
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (bytes < 8 || idle_us < 0 || count < 10) {
    std::fprintf(stderr, "need --bytes >= 8, --idle-us >= 0, --count >= 10\n");
    return 1;
  }
  const double busy = Measure(bytes, 0, count);
  const double idle = Measure(bytes, idle_us, count);
  if (busy < 0 || idle < 0) {
    std::fprintf(stderr, "wake_latency: a socket failed\n");
    return 1;
  }
  std::printf("%lld-byte messages over a Unix socket, median one way:\n", static_cast<long long>(bytes));
  std::printf("  back to back:                 %7.1f us\n", busy);
  std::printf("  after %6lld us idle:         %7.1f us (%.1fx)\n", static_cast<long long>(idle_us),
              idle, idle / busy);
  return 0;
}
