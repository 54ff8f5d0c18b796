// The checks every envelope from a peer must pass before it is stored:
// size, parse, the link it came over, clock skew, hop limit, and the
// signature of a known sender. Each refusal has its own gRPC status code
// and a reason, is logged once with the message id and peer, and counted.
//
//   envelope over the size limit          RESOURCE_EXHAUSTED
//   bytes that do not parse, bad fields   INVALID_ARGUMENT
//   claims a hop other than the TLS peer  PERMISSION_DENIED
//   no certificate known for the signer   FAILED_PRECONDITION
//     (after asking the peer for it: it checked the signature itself;
//     UNAVAILABLE, to be handed over again, if the peer could not be asked)
//   signature does not verify             UNAUTHENTICATED
//   creation time outside clock skew      OUT_OF_RANGE
//   hop limit spent, or a routing loop    ABORTED
#ifndef CASELINK_SERVER_INTAKE_H_
#define CASELINK_SERVER_INTAKE_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "caselink/v1/envelope.pb.h"
#include "core/envelope.h"
#include "core/log.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/key_ring.h"
#include "server/revocations.h"

namespace caselink::server {

// Asks `peer` for the certificate of signing key `key_id` and teaches the
// key ring that key as node `signer`'s; an error says why it could not.
using SignerFetch = std::function<absl::Status(const std::string& peer,
                                               const std::string& signer,
                                               const std::string& key_id)>;

// Thread-safe.
class Intake {
 public:
  // Does not take ownership; all must outlive the intake.
  // Each refusal is logged in the audit log through `committer`, if given.
  // With `fetch`, a signing key the ring does not know is asked of the peer
  // that handed the envelope over (which blocks that envelope's stream for
  // one call); a peer that said it does not know a key is not asked for it
  // again for 30 seconds.
  Intake(std::string self, const DeliveryConfig& delivery, const KeyRing* keys,
         const Revocations* revocations, Counters* counters, Logger* log,
         Committer* committer = nullptr, SignerFetch fetch = nullptr)
      : self_(std::move(self)),
        delivery_(delivery),
        keys_(keys),
        revocations_(revocations),
        counters_(counters),
        log_(log),
        committer_(committer),
        fetch_(std::move(fetch)) {}

  // Checks `envelope`, handed over on a link authenticated as `tls_peer`.
  // On success `body` holds the parsed body.
  [[nodiscard]] absl::Status Check(const v1::Envelope& envelope,
                                   const std::string& tls_peer, v1::Body* body);

 private:
  absl::Status CheckUnlogged(const v1::Envelope& envelope,
                             const std::string& tls_peer, v1::Body* body);
  // Asks `tls_peer` for the certificate of `key_id`, unless it said
  // lately that it does not know it.
  absl::Status FetchSigner(const std::string& tls_peer,
                           const std::string& signer,
                           const std::string& key_id);

  const std::string self_;
  const DeliveryConfig delivery_;
  const KeyRing* const keys_;
  const Revocations* const revocations_;
  Counters* const counters_;
  Logger* const log_;
  Committer* const committer_;
  const SignerFetch fetch_;
  SignatureChecker checker_;

  absl::Mutex mu_;
  // "<peer>/<key id>" for keys a peer did not know, and when it may be asked
  // again.
  absl::flat_hash_map<std::string, absl::Time> unfound_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_INTAKE_H_
