// The layerpool wire protocol's version, the handshake check every connection
// starts with, and the one place where grpc::Status and absl::Status meet.
//
// Every connection between two layerpool processes begins with
// Worker.Hello, whose request and response carry a ProtocolVersion. Both ends
// call CheckPeerVersion on what the other sent: a different major version is
// refused, a different minor version is accepted (fields the older side does
// not know are ignored by protobuf).
//
// When to bump: kProtocolMinor for backward-compatible additions (a new
// field, message, RPC or enum value); kProtocolMajor, resetting the minor to
// 0, when a field changes meaning, type or units, or an RPC's contract
// changes. Removed fields are `reserved` in the .proto, never reused.
//
// All functions here are pure and thread-safe.
#ifndef LAYERPOOL_PROTO_VERSION_H_
#define LAYERPOOL_PROTO_VERSION_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"
#include "layerpool/v1/common.pb.h"

namespace layerpool {

inline constexpr int kProtocolMajor = 1;
inline constexpr int kProtocolMinor = 1;  // 1: coordinator leases, Release

// This build, as Hello and DescribeCluster report it.
inline constexpr char kBuildName[] = "layerpool 0.1.0";

// The version this build speaks, for HelloRequest/HelloResponse.
[[nodiscard]] v1::ProtocolVersion CurrentProtocolVersion();

// Checks the version a peer announced against this build's.
//
// Returns OK when the majors match (minors may differ). Otherwise returns
// FailedPrecondition whose message names both sides, e.g.
//   "worker 10.0.0.2:7070 speaks layerpool protocol 2.1; this coordinator
//    speaks 1.0 (major versions must match)"
// `peer_name` describes the peer ("worker 10.0.0.2:7070"), `self_name` this
// process ("this coordinator"). A peer that sent no version (0.0, e.g. an
// empty HelloRequest) is refused with a message saying so.
[[nodiscard]] absl::Status CheckPeerVersion(
    const v1::ProtocolVersion& peer, absl::string_view peer_name,
    absl::string_view self_name = "this process");

// Converts between gRPC and Abseil statuses, keeping the code and the
// message. The two code sets are the same canonical codes (0 = OK through
// 16 = UNAUTHENTICATED); a code outside them becomes UNKNOWN. gRPC's binary
// error details and Abseil's payloads are not carried over.
[[nodiscard]] absl::Status FromGrpc(const grpc::Status& status);
[[nodiscard]] grpc::Status ToGrpc(const absl::Status& status);

}  // namespace layerpool

#endif  // LAYERPOOL_PROTO_VERSION_H_
