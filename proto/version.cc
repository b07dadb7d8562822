#include "proto/version.h"

#include <string>

#include "absl/strings/str_format.h"

namespace layerpool {

v1::ProtocolVersion CurrentProtocolVersion() {
  v1::ProtocolVersion version;
  version.set_major(kProtocolMajor);
  version.set_minor(kProtocolMinor);
  return version;
}

absl::Status CheckPeerVersion(const v1::ProtocolVersion& peer,
                              absl::string_view peer_name,
                              absl::string_view self_name) {
  if (peer.major() == static_cast<uint32_t>(kProtocolMajor)) {
    return absl::OkStatus();
  }
  if (peer.major() == 0 && peer.minor() == 0) {
    // Proto3 cannot tell "0.0" from "not sent"; no release ever spoke 0.0.
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s sent no layerpool protocol version; %s speaks %d.%d (is it a "
        "layerpool peer?)",
        peer_name, self_name, kProtocolMajor, kProtocolMinor));
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s speaks layerpool protocol %u.%u; %s speaks %d.%d (major versions "
      "must match)",
      peer_name, peer.major(), peer.minor(), self_name, kProtocolMajor,
      kProtocolMinor));
}

namespace {

// Both enums number the canonical codes 0..16 identically (grpc's
// status_code_enum.h and absl's status.h both follow google.rpc.Code), so a
// range check is all the mapping needs.
constexpr int kMaxCanonicalCode = 16;
static_assert(static_cast<int>(grpc::StatusCode::CANCELLED) ==
              static_cast<int>(absl::StatusCode::kCancelled));
static_assert(static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION) ==
              static_cast<int>(absl::StatusCode::kFailedPrecondition));
static_assert(static_cast<int>(grpc::StatusCode::UNAUTHENTICATED) ==
              static_cast<int>(absl::StatusCode::kUnauthenticated));
static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
              kMaxCanonicalCode);

bool IsCanonical(int code) { return code >= 0 && code <= kMaxCanonicalCode; }

}  // namespace

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  return absl::Status(IsCanonical(code) ? static_cast<absl::StatusCode>(code)
                                        : absl::StatusCode::kUnknown,
                      status.error_message());
}

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  return grpc::Status(IsCanonical(code) ? static_cast<grpc::StatusCode>(code)
                                        : grpc::StatusCode::UNKNOWN,
                      std::string(status.message()));
}

}  // namespace layerpool
