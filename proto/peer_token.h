// The shared secret of a trusted LAN (`--token-file`): every call on the
// Worker API, from the coordinator and from the stage before, carries it as
// `x-layerpool-token` metadata, and a worker started with a token refuses
// calls without it (UNAUTHENTICATED) before doing anything else. Compared in
// constant time. Without a token the Worker API is open, as before: fine on
// loopback (`run --local-workers` makes a fresh token for its workers
// anyway), not on a shared network.
#ifndef LAYERPOOL_PROTO_PEER_TOKEN_H_
#define LAYERPOOL_PROTO_PEER_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace layerpool {

inline constexpr char kPeerTokenMetadata[] = "x-layerpool-token";
// The coordinator a call serves: its lease id (worker.proto, "Lease").
inline constexpr char kCoordinatorMetadata[] = "x-layerpool-coordinator";

// The first line of `path` that is neither blank nor a '#' comment, without
// surrounding whitespace. NotFound for an unreadable file; InvalidArgument
// when there is no token or it is shorter than 16 characters.
[[nodiscard]] absl::StatusOr<std::string> ReadPeerToken(const std::string& path);

// 32 hex characters from the system's random source.
std::string RandomPeerToken();

// Adds the token to an outgoing call; nothing when `token` is empty.
void AddPeerToken(grpc::ClientContext* context, const std::string& token);

// This process's lease id as a coordinator: 32 random hex characters,
// drawn on the first call.
const std::string& ThisCoordinatorId();

// Whether `id` has the form of a lease id.
bool IsCoordinatorId(std::string_view id);

// Adds a coordinator's lease id to an outgoing call; nothing when empty.
void AddCoordinatorId(grpc::ClientContext* context, const std::string& id);

// The lease id a call carries; empty when none (or not 32 hex characters).
std::string CoordinatorIdOf(const grpc::ServerContext* context);

// OK when `token` is empty or the call carries it; else UNAUTHENTICATED.
grpc::Status CheckPeerToken(const grpc::ServerContext* context, const std::string& token);

}  // namespace layerpool

#endif  // LAYERPOOL_PROTO_PEER_TOKEN_H_
