// Witnessing of peers' audit logs. At each round this node fetches every
// connected peer's signed tree head, checks its signature with the keys it
// knows for that peer and, against the last head it holds for the peer, a
// consistency proof that the new head extends it. A head that does not
// extend the last one is an alarm: an error log line, a counter and an
// event in this node's own audit log; it is kept beside the earlier head
// as evidence, and the earlier head stays the one later heads must extend.
#ifndef CASELINK_SERVER_WITNESS_H_
#define CASELINK_SERVER_WITNESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "caselink/v1/audit.pb.h"
#include "core/log.h"
#include "server/committer.h"
#include "server/counters.h"
#include "server/key_ring.h"
#include "server/link_set.h"
#include "storage/store.h"

namespace caselink::server {

struct WitnessDeps {
  std::string self;
  const LinkSet* links = nullptr;
  // Learns a peer's signing certificate that came with its head if the
  // key is new, as after the peer rolled to a new key.
  KeyRing* keys = nullptr;
  Committer* committer = nullptr;
  const storage::Store* store = nullptr;
  Logger* log = nullptr;
  Counters* counters = nullptr;
};

// Thread-safe; rounds are meant to run on one thread.
class Witness {
 public:
  explicit Witness(WitnessDeps deps) : deps_(std::move(deps)) {}

  // Checks every connected peer once. Errors reaching a peer are logged at
  // debug and tried again next round.
  void CheckAll();

  // The heads held, one per peer, and every inconsistent one kept as
  // evidence.
  [[nodiscard]] absl::StatusOr<std::vector<v1::WitnessedHead>> Held() const;

 private:
  // Fetches and checks `link`'s head; returns what to record, if anything.
  absl::StatusOr<std::optional<v1::WitnessedHead>> Check(PeerLink& link);

  const WitnessDeps deps_;
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_WITNESS_H_
