// The signing keys this node knows: its own and those of other nodes,
// learned from certificates that chain to a trusted CA and name the node.
// Learned keys are kept in the store, so that what a key signed stays
// verifiable after its owner rotates to a new one.
#ifndef CASELINK_SERVER_KEY_RING_H_
#define CASELINK_SERVER_KEY_RING_H_

#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/crypto.h"
#include "storage/store.h"

namespace caselink::server {

struct KnownSigner {
  std::string code;
  PublicKey key;
  Certificate certificate;
};

// Thread-safe.
class KeyRing {
 public:
  // Does not take ownership; both must outlive the ring.
  KeyRing(const TrustStore* trust, storage::Store* store)
      : trust_(trust), store_(store) {}

  // Loads every key learned before.
  [[nodiscard]] absl::Status Load();

  // Checks `certificate_pem` (a signing certificate that must chain to a
  // trusted CA and carry urn:caselink:node:`code`) and remembers its key,
  // durably. Learning a key already known is cheap and changes nothing.
  // Errors say what is wrong with the certificate.
  [[nodiscard]] absl::Status Learn(std::string_view code,
                                   std::string_view certificate_pem);

  // The signer of `key_id`, or NotFound.
  [[nodiscard]] absl::StatusOr<KnownSigner> Find(std::string_view key_id) const;

 private:
  const TrustStore* const trust_;
  storage::Store* const store_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, KnownSigner> signers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_KEY_RING_H_
