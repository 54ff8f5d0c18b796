// What a node is and signs with: its code, its name and its signing key
// with the certificates for it.
#ifndef CASELINK_SERVER_NODE_IDENTITY_H_
#define CASELINK_SERVER_NODE_IDENTITY_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/crypto.h"
#include "core/seal.h"
#include "server/config.h"

namespace caselink::server {

struct NodeIdentity {
  std::string code;
  std::string name;
  PrivateKey signing_key;
  Certificate signing_cert;
  // PEM of the signing certificate, as sent to peers.
  std::string signing_cert_pem;
  // PEM of the signing certificates used before, most recent first.
  std::vector<std::string> previous_signing_pems;
  // The key sealed payloads for this node open with, if it has one.
  std::optional<SealingPrivateKey> sealing_key;
  std::string sealing_cert_pem;
};

// Loads the signing key and certificate the config names, and the sealing
// ones if it names them, and checks that each pair belongs together, that
// the certificates chain to a trusted CA and that they name this node.
// Errors name the file at fault.
// Checks that one of this node's own certificates names node `code` and
// chains to a trusted CA; errors name `what` and `path`.
[[nodiscard]] absl::Status CheckOwnCertificate(const Certificate& cert,
                                               const std::string& path,
                                               std::string_view what,
                                               const std::string& code,
                                               const TrustStore& trust);

[[nodiscard]] absl::StatusOr<NodeIdentity> LoadNodeIdentity(
    const NodeConfig& config);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_NODE_IDENTITY_H_
