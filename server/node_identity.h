// What a node is and signs with: its code, its name and its signing key
// with the certificates for it.
#ifndef CASELINK_SERVER_NODE_IDENTITY_H_
#define CASELINK_SERVER_NODE_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/crypto.h"
#include "server/config.h"

namespace caselink::server {

struct NodeIdentity {
  std::string code;
  std::string name;
  PrivateKey signing_key;
  Certificate signing_cert;
  // PEM of the signing certificate, as sent to peers.
  std::string signing_cert_pem;
};

// Loads the signing key and certificate the config names and checks that
// they belong together, that the certificate chains to a trusted CA and
// that it names this node. Errors name the file at fault.
[[nodiscard]] absl::StatusOr<NodeIdentity> LoadNodeIdentity(
    const NodeConfig& config);

}  // namespace caselink::server

#endif  // CASELINK_SERVER_NODE_IDENTITY_H_
