// The checks every envelope from a peer must pass before it is stored:
// size, parse, the link it came over, clock skew, hop limit, and the
// signature of a known sender. Each refusal has its own gRPC status code
// and a reason, is logged once with the message id and peer, and counted.
//
//   envelope over the size limit          RESOURCE_EXHAUSTED
//   bytes that do not parse, bad fields   INVALID_ARGUMENT
//   claims a hop other than the TLS peer  PERMISSION_DENIED
//   no certificate known for the signer   FAILED_PRECONDITION
//   signature does not verify             UNAUTHENTICATED
//   creation time outside clock skew      OUT_OF_RANGE
//   hop limit spent, or a routing loop    ABORTED
#ifndef CASELINK_SERVER_INTAKE_H_
#define CASELINK_SERVER_INTAKE_H_

#include <string>

#include "absl/status/status.h"
#include "caselink/v1/envelope.pb.h"
#include "core/envelope.h"
#include "core/log.h"
#include "server/committer.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/key_ring.h"
#include "server/revocations.h"

namespace caselink::server {

// Thread-safe.
class Intake {
 public:
  // Does not take ownership; all must outlive the intake.
  // Each refusal is logged in the audit log through `committer`, if given.
  Intake(std::string self, const DeliveryConfig& delivery, const KeyRing* keys,
         const Revocations* revocations, Counters* counters, Logger* log,
         Committer* committer = nullptr)
      : self_(std::move(self)),
        delivery_(delivery),
        keys_(keys),
        revocations_(revocations),
        counters_(counters),
        log_(log),
        committer_(committer) {}

  // Checks `envelope`, handed over on a link authenticated as `tls_peer`.
  // On success `body` holds the parsed body.
  [[nodiscard]] absl::Status Check(const v1::Envelope& envelope,
                                   const std::string& tls_peer, v1::Body* body);

 private:
  absl::Status CheckUnlogged(const v1::Envelope& envelope,
                             const std::string& tls_peer, v1::Body* body);

  const std::string self_;
  const DeliveryConfig delivery_;
  const KeyRing* const keys_;
  const Revocations* const revocations_;
  Counters* const counters_;
  Logger* const log_;
  Committer* const committer_;
  SignatureChecker checker_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_INTAKE_H_
