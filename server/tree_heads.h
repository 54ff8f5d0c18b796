// The signed heads of this node's audit log. A head is signed when asked
// for with `fresh` and the log has grown (or the node's signing key changed)
// since the last one, and at the node's head interval; the latest is kept in
// memory. Heads are signed with the node's current signing key.
#ifndef CASELINK_SERVER_TREE_HEADS_H_
#define CASELINK_SERVER_TREE_HEADS_H_

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "caselink/v1/audit.pb.h"
#include "core/crypto.h"
#include "server/audit_log.h"
#include "server/node_identity.h"

namespace caselink::server {

// Thread-safe.
class TreeHeads {
 public:
  // Does not take ownership; both must outlive this.
  TreeHeads(const AuditLog* log, const CurrentIdentity* identity)
      : log_(log), identity_(identity) {}

  // The latest head; with `fresh`, one of the log as it stands now (signed
  // now if the log grew since the latest).
  [[nodiscard]] absl::StatusOr<v1::SignedTreeHead> Latest(bool fresh);

  // A head of the log at `tree_size` leaves (at most size()), so that every
  // page of one listing is proved against the same head. Recent ones are
  // kept, so paging does not sign once per page.
  [[nodiscard]] absl::StatusOr<v1::SignedTreeHead> At(uint64_t tree_size);

  // The certificate, PEM, of the key that signed `head`: one of this node's
  // keys since it started, or else its current one.
  std::string CertificateOf(const v1::SignedTreeHead& head);

 private:
  // Signs a head of the log at `tree_size` leaves with the current key.
  absl::StatusOr<v1::SignedTreeHead> Sign(uint64_t tree_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AuditLog* const log_;
  const CurrentIdentity* const identity_;

  absl::Mutex mu_;
  // The certificate of each key that signed a head, by key id.
  std::map<std::string, std::string> certificates_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::SignedTreeHead> latest_ ABSL_GUARDED_BY(mu_);
  // Heads signed for listings, by tree size; a handful at most.
  std::map<uint64_t, v1::SignedTreeHead> recent_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_TREE_HEADS_H_
