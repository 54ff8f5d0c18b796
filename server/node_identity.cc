#include "server/node_identity.h"

#include "absl/status/status.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {

absl::StatusOr<NodeIdentity> LoadNodeIdentity(const NodeConfig& config) {
  CASELINK_ASSIGN_OR_RETURN(PrivateKey key,
                            PrivateKey::LoadPemFile(config.signing_key));
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            Certificate::LoadPemFile(config.signing_cert));
  CASELINK_ASSIGN_OR_RETURN(PublicKey cert_key, cert.public_key());
  if (key.PublicKeyDer() != cert_key.SpkiDer()) {
    return absl::InvalidArgumentError(Cat("signing key ", config.signing_key,
                                          ": does not match certificate ",
                                          config.signing_cert));
  }
  CASELINK_ASSIGN_OR_RETURN(TrustStore trust,
                            TrustStore::LoadPemFile(config.ca_bundle));
  absl::Status chain = trust.VerifyChain(cert);
  if (!chain.ok()) {
    return absl::InvalidArgumentError(Cat(
        "signing certificate ", config.signing_cert, ": ", chain.message()));
  }
  auto identity = IdentityFromUris(cert.uri_sans());
  if (!identity.ok() || identity->role != Role::kNode ||
      identity->code != config.code) {
    return absl::InvalidArgumentError(Cat(
        "signing certificate ", config.signing_cert, ": does not name node ",
        config.code, " (expected URI urn:caselink:node:", config.code, ")"));
  }
  NodeIdentity node{config.code, config.name, std::move(key), cert,
                    cert.ToPem()};
  return node;
}

}  // namespace caselink::server
