#include "server/tree_heads.h"

#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "core/tree_head.h"

namespace caselink::server {

absl::StatusOr<v1::SignedTreeHead> TreeHeads::Latest(bool fresh) {
  absl::MutexLock lock(&mu_);
  const uint64_t size = log_->size();
  if (latest_.has_value() && (!fresh || latest_->tree_size() == size)) {
    return *latest_;
  }
  CASELINK_ASSIGN_OR_RETURN(std::string root, log_->Root(size));
  CASELINK_ASSIGN_OR_RETURN(
      v1::SignedTreeHead head,
      SignTreeHead(*key_, code_, size, root, absl::Now()));
  latest_ = head;
  return head;
}

absl::StatusOr<v1::SignedTreeHead> TreeHeads::At(uint64_t tree_size) {
  constexpr size_t kRecent = 16;
  absl::MutexLock lock(&mu_);
  if (latest_.has_value() && latest_->tree_size() == tree_size) return *latest_;
  auto it = recent_.find(tree_size);
  if (it != recent_.end()) return it->second;
  CASELINK_ASSIGN_OR_RETURN(std::string root, log_->Root(tree_size));
  CASELINK_ASSIGN_OR_RETURN(
      v1::SignedTreeHead head,
      SignTreeHead(*key_, code_, tree_size, root, absl::Now()));
  if (recent_.size() >= kRecent) recent_.erase(recent_.begin());
  recent_.emplace(tree_size, head);
  return head;
}

}  // namespace caselink::server
