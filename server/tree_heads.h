// The signed heads of this node's audit log. A head is signed when asked
// for with `fresh` and the log has grown since the last one, and at the
// node's head interval; the latest is kept in memory.
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

namespace caselink::server {

// Thread-safe.
class TreeHeads {
 public:
  // Does not take ownership; all must outlive this.
  TreeHeads(const AuditLog* log, const PrivateKey* key, std::string code,
            std::string certificate_pem)
      : log_(log),
        key_(key),
        code_(std::move(code)),
        certificate_pem_(std::move(certificate_pem)) {}

  // The latest head; with `fresh`, one of the log as it stands now (signed
  // now if the log grew since the latest).
  [[nodiscard]] absl::StatusOr<v1::SignedTreeHead> Latest(bool fresh);

  // A head of the log at `tree_size` leaves (at most size()), so that every
  // page of one listing is proved against the same head. Recent ones are
  // kept, so paging does not sign once per page.
  [[nodiscard]] absl::StatusOr<v1::SignedTreeHead> At(uint64_t tree_size);

  // The certificate chain of the signing key, PEM.
  const std::string& certificate_pem() const { return certificate_pem_; }

 private:
  const AuditLog* const log_;
  const PrivateKey* const key_;
  const std::string code_;
  const std::string certificate_pem_;

  absl::Mutex mu_;
  std::optional<v1::SignedTreeHead> latest_ ABSL_GUARDED_BY(mu_);
  // Heads signed for listings, by tree size; a handful at most.
  std::map<uint64_t, v1::SignedTreeHead> recent_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_TREE_HEADS_H_
