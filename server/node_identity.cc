#include "server/node_identity.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {

absl::Status CheckOwnCertificate(const Certificate& cert,
                                 const std::string& path, std::string_view what,
                                 const std::string& code,
                                 const TrustStore& trust) {
  auto identity = IdentityFromUris(cert.uri_sans());
  if (!identity.ok() || identity->role != Role::kNode ||
      identity->code != code) {
    return absl::InvalidArgumentError(
        Cat(what, " ", path, ": does not name node ", code,
            " (expected URI urn:caselink:node:", code, ")"));
  }
  absl::Status chain = trust.VerifyChain(cert);
  if (!chain.ok()) {
    return absl::InvalidArgumentError(
        Cat(what, " ", path, ": ", chain.message()));
  }
  return absl::OkStatus();
}

namespace {

absl::Status LoadSealing(const NodeConfig& config, const TrustStore& trust,
                         NodeIdentity* node) {
  CASELINK_ASSIGN_OR_RETURN(SealingPrivateKey key,
                            SealingPrivateKey::LoadPemFile(config.sealing_key));
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            Certificate::LoadPemFile(config.sealing_cert));
  std::string pem = cert.ToPem();
  CASELINK_ASSIGN_OR_RETURN(SealingPublicKey cert_key,
                            SealingPublicKey::FromCertificatePem(pem));
  if (cert_key.KeyId() != key.public_key().KeyId()) {
    return absl::InvalidArgumentError(Cat("sealing key ", config.sealing_key,
                                          ": does not match certificate ",
                                          config.sealing_cert));
  }
  CASELINK_RETURN_IF_ERROR(CheckOwnCertificate(
      cert, config.sealing_cert, "sealing certificate", config.code, trust));
  node->sealing_key = std::move(key);
  node->sealing_cert_pem = std::move(pem);
  return absl::OkStatus();
}

}  // namespace

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
  CASELINK_RETURN_IF_ERROR(CheckOwnCertificate(
      cert, config.signing_cert, "signing certificate", config.code, trust));
  NodeIdentity node{config.code,  config.name, std::move(key), cert,
                    cert.ToPem(), {},          std::nullopt,   ""};
  for (const std::string& path : config.previous_signing_certs) {
    CASELINK_ASSIGN_OR_RETURN(Certificate previous,
                              Certificate::LoadPemFile(path));
    // An old certificate may have expired; it must still be this node's
    // and have been issued by a trusted CA.
    auto identity = IdentityFromUris(previous.uri_sans());
    if (!identity.ok() || identity->code != config.code) {
      return absl::InvalidArgumentError(Cat("previous signing certificate ",
                                            path, ": does not name node ",
                                            config.code));
    }
    absl::Status chain = trust.VerifyChain(previous, previous.not_before());
    if (!chain.ok()) {
      return absl::InvalidArgumentError(
          Cat("previous signing certificate ", path, ": ", chain.message()));
    }
    node.previous_signing_pems.push_back(previous.ToPem());
  }
  if (!config.sealing_key.empty()) {
    CASELINK_RETURN_IF_ERROR(LoadSealing(config, trust, &node));
  }
  return node;
}

}  // namespace caselink::server
