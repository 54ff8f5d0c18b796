// Chooses the next hop toward a node: the peer whose part of the division
// tree holds the destination, the deepest one if several do; otherwise the
// peer above this node (its parent, the closest ancestor among its peers).
#ifndef CASELINK_SERVER_ROUTER_H_
#define CASELINK_SERVER_ROUTER_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace caselink::server {

// Thread-safe.
class Router {
 public:
  // Codes are 12-digit forms.
  Router(std::string self, std::vector<std::string> peers);

  // Replaces the set of peers.
  void SetPeers(std::vector<std::string> peers);

  // The peer to hand a message for `destination` to. NotFound if none
  // leads there (a node with no parent link, for a code outside its
  // subtree and its partners'). `destination` must not be this node.
  [[nodiscard]] absl::StatusOr<std::string> NextHop(
      const std::string& destination) const;

 private:
  const std::string self_;
  mutable absl::Mutex mu_;
  std::vector<std::string> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_ROUTER_H_
