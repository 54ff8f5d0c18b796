// What a node is and proves itself with: its code and name, its TLS
// identity, its signing key with the certificates for it, and its sealing
// keys. A running node may roll to new keys and certificates; CurrentIdentity
// holds the identity in force and hands out snapshots of it.
#ifndef CASELINK_SERVER_NODE_IDENTITY_H_
#define CASELINK_SERVER_NODE_IDENTITY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/crypto.h"
#include "core/seal.h"
#include "core/tls.h"
#include "server/config.h"

namespace caselink::server {

struct NodeIdentity {
  std::string code;
  std::string name;
  // The link identity (certificate chain and key) and the CAs whose
  // certificates callers and peers must present.
  TlsMaterial tls;
  PrivateKey signing_key;
  Certificate signing_cert;
  // PEM of the signing certificate, as sent to peers.
  std::string signing_cert_pem;
  // PEM of the signing certificates used before, most recent first.
  std::vector<std::string> previous_signing_pems;
  // The key sealed payloads for this node open with; null if it has none.
  std::shared_ptr<const SealingPrivateKey> sealing_key;
  std::string sealing_cert_pem;
  // Sealing keys used before, so that payloads sealed to them still open.
  std::vector<std::shared_ptr<const SealingPrivateKey>> previous_sealing_keys;
  // 0 for the identity the node started with; one more for each that
  // replaced it while the node ran.
  uint64_t generation = 0;

  bool HasSealingKey() const {
    return sealing_key != nullptr || !previous_sealing_keys.empty();
  }

  // Opens `sealed` with the current sealing key or the previous one it
  // names by its recipient key id; errors as Open's, FailedPrecondition if
  // this node has no sealing key.
  [[nodiscard]] absl::StatusOr<std::string> OpenSealed(
      const v1::SealedPayload& sealed, std::string_view associated_data) const;
};

// Checks that one of this node's own certificates names node `code` and
// chains to a trusted CA; errors name `what` and `path`.
[[nodiscard]] absl::Status CheckOwnCertificate(const Certificate& cert,
                                               const std::string& path,
                                               std::string_view what,
                                               const std::string& code,
                                               const TrustStore& trust);

// Loads the TLS and signing keys and certificates the config names, the
// sealing ones if it names them, and the previous signing certificates and
// sealing keys; checks that each pair belongs together, that the
// certificates chain to a CA of `trust` and that they name this node.
// Errors name the file at fault.
[[nodiscard]] absl::StatusOr<NodeIdentity> LoadNodeIdentity(
    const NodeConfig& config, const TrustStore& trust);

// Loads, as LoadNodeIdentity does, the identity `config` names for a node
// that runs with `current`, to replace it while the node runs. Two more
// rules hold then: `config` must be of the same node, and its signing key
// must hash with the algorithm of the current one, which the audit log and
// receipts are built on. Nothing `current`
// held is dropped: its signing certificates and sealing keys that `config`
// no longer names stay on as previous ones until the node restarts. The
// CAs stay those of `current`.
[[nodiscard]] absl::StatusOr<NodeIdentity> LoadReplacementIdentity(
    const NodeConfig& config, const TrustStore& trust,
    const NodeIdentity& current);

// True if `a` and `b` hold the same keys and certificates.
bool SameKeys(const NodeIdentity& a, const NodeIdentity& b);

// A digest of the contents of the config file and of every file its
// identity entries name (a missing file counts as empty and absent); it
// changes whenever one of them does.
std::string IdentityFilesDigest(const NodeConfig& config);

// The identity a running node signs, seals and links with. Thread-safe.
// A snapshot from Get() stays whole and unchanged while it is held, so work
// begun with one identity (a group being signed, a payload being opened)
// ends with that identity even if a reload replaces it meanwhile.
class CurrentIdentity {
 public:
  explicit CurrentIdentity(NodeIdentity first);

  // The node's code and name never change while it runs.
  const std::string& code() const { return code_; }
  const std::string& name() const { return name_; }

  std::shared_ptr<const NodeIdentity> Get() const;
  uint64_t generation() const;

  // Makes `next` current, with the generation after the one it replaces.
  void Replace(NodeIdentity next);

 private:
  const std::string code_;
  const std::string name_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const NodeIdentity> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_NODE_IDENTITY_H_
