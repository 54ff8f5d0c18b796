#include "server/node_identity.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "core/identity.h"
#include "core/status_macros.h"
#include "core/strings.h"

namespace caselink::server {

absl::StatusOr<std::string> NodeIdentity::OpenSealed(
    const v1::SealedPayload& sealed, std::string_view associated_data) const {
  if (!HasSealingKey()) {
    return absl::FailedPreconditionError("this node has no sealing key");
  }
  const SealingPrivateKey* key = sealing_key.get();
  for (const auto& previous : previous_sealing_keys) {
    if (previous->KeyId() == sealed.recipient_key_id()) key = previous.get();
  }
  // With no key of that id, the current one (or the latest before it)
  // reports which key the payload was sealed to.
  if (key == nullptr) key = previous_sealing_keys.front().get();
  return Open(*key, sealed, associated_data);
}

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

absl::StatusOr<TlsMaterial> LoadTls(const NodeConfig& config,
                                    const TrustStore& trust) {
  CASELINK_ASSIGN_OR_RETURN(
      TlsMaterial tls,
      LoadTlsMaterial(config.tls_cert, config.tls_key, config.ca_bundle));
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            Certificate::FromPem(tls.cert_chain_pem));
  CASELINK_RETURN_IF_ERROR(CheckOwnCertificate(
      cert, config.tls_cert, "certificate", config.code, trust));
  return tls;
}

// The signing certificate, checked to be of `key`.
absl::StatusOr<Certificate> LoadSigningCertificate(const NodeConfig& config,
                                                   const PrivateKey& key,
                                                   const TrustStore& trust) {
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            Certificate::LoadPemFile(config.signing_cert));
  CASELINK_ASSIGN_OR_RETURN(PublicKey cert_key, cert.public_key());
  if (key.PublicKeyDer() != cert_key.SpkiDer()) {
    return absl::InvalidArgumentError(Cat("signing key ", config.signing_key,
                                          ": does not match certificate ",
                                          config.signing_cert));
  }
  CASELINK_RETURN_IF_ERROR(CheckOwnCertificate(
      cert, config.signing_cert, "signing certificate", config.code, trust));
  return cert;
}

absl::Status LoadPreviousSigning(const NodeConfig& config,
                                 const TrustStore& trust, NodeIdentity* node) {
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
    node->previous_signing_pems.push_back(previous.ToPem());
  }
  return absl::OkStatus();
}

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
  node->sealing_key = std::make_shared<const SealingPrivateKey>(std::move(key));
  node->sealing_cert_pem = std::move(pem);
  return absl::OkStatus();
}

// True if `node` already opens payloads sealed to `key_id`.
bool HoldsSealingKey(const NodeIdentity& node, std::string_view key_id) {
  if (node.sealing_key != nullptr && node.sealing_key->KeyId() == key_id) {
    return true;
  }
  return std::any_of(node.previous_sealing_keys.begin(),
                     node.previous_sealing_keys.end(),
                     [&](const auto& key) { return key->KeyId() == key_id; });
}

// Key ids of every sealing key `node` holds, current first.
std::vector<std::string> SealingKeyIds(const NodeIdentity& node) {
  std::vector<std::string> ids;
  if (node.sealing_key != nullptr) ids.push_back(node.sealing_key->KeyId());
  for (const auto& key : node.previous_sealing_keys) {
    ids.push_back(key->KeyId());
  }
  return ids;
}

}  // namespace

absl::StatusOr<NodeIdentity> LoadNodeIdentity(const NodeConfig& config,
                                              const TrustStore& trust) {
  CASELINK_ASSIGN_OR_RETURN(TlsMaterial tls, LoadTls(config, trust));
  CASELINK_ASSIGN_OR_RETURN(PrivateKey key,
                            PrivateKey::LoadPemFile(config.signing_key));
  CASELINK_ASSIGN_OR_RETURN(Certificate cert,
                            LoadSigningCertificate(config, key, trust));
  NodeIdentity node{.code = config.code,
                    .name = config.name,
                    .tls = std::move(tls),
                    .signing_key = std::move(key),
                    .signing_cert = cert,
                    .signing_cert_pem = cert.ToPem(),
                    .previous_signing_pems = {},
                    .sealing_key = nullptr,
                    .sealing_cert_pem = "",
                    .previous_sealing_keys = {}};
  CASELINK_RETURN_IF_ERROR(LoadPreviousSigning(config, trust, &node));
  if (!config.sealing_key.empty()) {
    CASELINK_RETURN_IF_ERROR(LoadSealing(config, trust, &node));
  }
  for (const std::string& path : config.previous_sealing_keys) {
    CASELINK_ASSIGN_OR_RETURN(SealingPrivateKey previous,
                              SealingPrivateKey::LoadPemFile(path));
    if (HoldsSealingKey(node, previous.KeyId())) continue;
    node.previous_sealing_keys.push_back(
        std::make_shared<const SealingPrivateKey>(std::move(previous)));
  }
  return node;
}

absl::StatusOr<NodeIdentity> LoadReplacementIdentity(
    const NodeConfig& config, const TrustStore& trust,
    const NodeIdentity& current) {
  if (config.code != current.code) {
    return absl::InvalidArgumentError(
        Cat("config ", config.path, ": names node ", config.code,
            " but this node runs as ", current.code));
  }
  CASELINK_ASSIGN_OR_RETURN(NodeIdentity next, LoadNodeIdentity(config, trust));
  const HashAlgorithm running = HashAlgorithmOf(current.signing_key.scheme());
  const HashAlgorithm wanted = HashAlgorithmOf(next.signing_key.scheme());
  if (wanted != running) {
    return absl::InvalidArgumentError(Cat("signing key ", config.signing_key,
                                          ": hashes with ",
                                          HashAlgorithmName(wanted),
                                          " but this node's audit log and "
                                          "receipts hash with ",
                                          HashAlgorithmName(running)));
  }
  next.name = current.name;
  next.tls.roots_pem = current.tls.roots_pem;

  // What the node signed and what was sealed to it stay usable.
  std::vector<std::string> signing = {current.signing_cert_pem};
  signing.insert(signing.end(), current.previous_signing_pems.begin(),
                 current.previous_signing_pems.end());
  for (const std::string& pem : signing) {
    auto& kept = next.previous_signing_pems;
    if (pem != next.signing_cert_pem &&
        std::find(kept.begin(), kept.end(), pem) == kept.end()) {
      kept.push_back(pem);
    }
  }
  std::vector<std::shared_ptr<const SealingPrivateKey>> sealing;
  if (current.sealing_key != nullptr) sealing.push_back(current.sealing_key);
  sealing.insert(sealing.end(), current.previous_sealing_keys.begin(),
                 current.previous_sealing_keys.end());
  for (const auto& key : sealing) {
    if (!HoldsSealingKey(next, key->KeyId())) {
      next.previous_sealing_keys.push_back(key);
    }
  }
  return next;
}

bool SameKeys(const NodeIdentity& a, const NodeIdentity& b) {
  return a.tls.cert_chain_pem == b.tls.cert_chain_pem &&
         a.tls.key_pem == b.tls.key_pem &&
         a.signing_cert_pem == b.signing_cert_pem &&
         a.previous_signing_pems == b.previous_signing_pems &&
         a.sealing_cert_pem == b.sealing_cert_pem &&
         SealingKeyIds(a) == SealingKeyIds(b);
}

std::string IdentityFilesDigest(const NodeConfig& config) {
  std::vector<std::string> paths = {config.path,        config.tls_cert,
                                    config.tls_key,     config.signing_cert,
                                    config.signing_key, config.sealing_cert,
                                    config.sealing_key};
  paths.insert(paths.end(), config.previous_signing_certs.begin(),
               config.previous_signing_certs.end());
  paths.insert(paths.end(), config.previous_sealing_keys.begin(),
               config.previous_sealing_keys.end());
  std::string all;
  for (const std::string& path : paths) {
    all.append(path).push_back('\0');
    if (path.empty()) continue;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      all.append("absent").push_back('\0');
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();
    // Only a digest is kept: some of these files hold private keys.
    auto digest = Digest(HashAlgorithm::kSha256, text.str());
    all.append(digest.ok() ? *digest : "unreadable").push_back('\0');
  }
  auto digest = Digest(HashAlgorithm::kSha256, all);
  return digest.ok() ? *digest : all;
}

CurrentIdentity::CurrentIdentity(NodeIdentity first)
    : code_(first.code),
      name_(first.name),
      current_(std::make_shared<const NodeIdentity>(std::move(first))) {}

std::shared_ptr<const NodeIdentity> CurrentIdentity::Get() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

uint64_t CurrentIdentity::generation() const {
  absl::MutexLock lock(&mu_);
  return current_->generation;
}

void CurrentIdentity::Replace(NodeIdentity next) {
  absl::MutexLock lock(&mu_);
  next.generation = current_->generation + 1;
  current_ = std::make_shared<const NodeIdentity>(std::move(next));
}

}  // namespace caselink::server
