// Mutual-TLS material for gRPC servers and channels.
#ifndef CASELINK_CORE_TLS_H_
#define CASELINK_CORE_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace caselink {

// PEM text of one TLS identity and the CAs it trusts.
struct TlsMaterial {
  std::string cert_chain_pem;
  std::string key_pem;
  std::string roots_pem;
};

// Reads the three files. Each failure names the file and what is wrong
// with it: missing, unreadable, not PEM, a key readable by other users, a
// key that does not match the certificate, an empty CA bundle.
[[nodiscard]] absl::StatusOr<TlsMaterial> LoadTlsMaterial(
    const std::string& cert_path, const std::string& key_path,
    const std::string& ca_bundle_path);

// Server credentials that demand and verify a client certificate issued by
// one of the trusted CAs.
std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(
    const TlsMaterial& material);

// A channel to the node `peer_code12` at `address`, presenting this
// material's certificate and accepting only a server certificate, from a
// trusted CA, that names that node.
std::shared_ptr<grpc::Channel> MutualTlsChannel(const std::string& address,
                                                const std::string& peer_code12,
                                                const TlsMaterial& material);

}  // namespace caselink

#endif  // CASELINK_CORE_TLS_H_
