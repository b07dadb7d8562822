#include "proto/tls.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace layerpool {

absl::StatusOr<TlsFiles> ReadTlsDir(const std::string& dir) {
  TlsFiles files;
  for (auto [name, out] : {std::pair{"ca.pem", &files.ca}, std::pair{"cert.pem", &files.cert},
                           std::pair{"key.pem", &files.key}}) {
    const std::string path = absl::StrCat(dir, "/", name);
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    std::ostringstream text;
    text << in.rdbuf();
    *out = text.str();
    if (out->find("-----BEGIN ") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM block"));
    }
  }
  return files;
}

std::shared_ptr<grpc::ServerCredentials> WorkerServerCredentials(
    const std::optional<TlsFiles>& tls) {
  if (!tls) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = tls->ca;
  options.pem_key_cert_pairs.push_back({tls->key, tls->cert});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> WorkerChannelCredentials(
    const std::optional<TlsFiles>& tls) {
  if (!tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls->ca;
  options.pem_private_key = tls->key;
  options.pem_cert_chain = tls->cert;
  return grpc::SslCredentials(options);
}

}  // namespace layerpool
