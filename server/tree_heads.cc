#include "server/tree_heads.h"

#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "core/tree_head.h"

namespace caselink::server {

absl::StatusOr<v1::SignedTreeHead> TreeHeads::Sign(uint64_t tree_size) {
  std::shared_ptr<const NodeIdentity> self = identity_->Get();
  CASELINK_ASSIGN_OR_RETURN(std::string root, log_->Root(tree_size));
  CASELINK_ASSIGN_OR_RETURN(v1::SignedTreeHead head,
                            SignTreeHead(self->signing_key, self->code,
                                         tree_size, root, absl::Now()));
  certificates_.try_emplace(head.key_id(), self->signing_cert_pem);
  return head;
}

absl::StatusOr<v1::SignedTreeHead> TreeHeads::Latest(bool fresh) {
  const std::string key_id = identity_->Get()->signing_key.KeyId();
  absl::MutexLock lock(&mu_);
  const uint64_t size = log_->size();
  if (latest_.has_value() && (!fresh || (latest_->tree_size() == size &&
                                         latest_->key_id() == key_id))) {
    return *latest_;
  }
  CASELINK_ASSIGN_OR_RETURN(v1::SignedTreeHead head, Sign(size));
  latest_ = head;
  return head;
}

absl::StatusOr<v1::SignedTreeHead> TreeHeads::At(uint64_t tree_size) {
  constexpr size_t kRecent = 16;
  absl::MutexLock lock(&mu_);
  if (latest_.has_value() && latest_->tree_size() == tree_size) return *latest_;
  auto it = recent_.find(tree_size);
  if (it != recent_.end()) return it->second;
  CASELINK_ASSIGN_OR_RETURN(v1::SignedTreeHead head, Sign(tree_size));
  if (recent_.size() >= kRecent) recent_.erase(recent_.begin());
  recent_.emplace(tree_size, head);
  return head;
}

std::string TreeHeads::CertificateOf(const v1::SignedTreeHead& head) {
  {
    absl::MutexLock lock(&mu_);
    auto it = certificates_.find(head.key_id());
    if (it != certificates_.end()) return it->second;
  }
  return identity_->Get()->signing_cert_pem;
}

}  // namespace caselink::server
