// The peer links of a node, which can grow while it runs: those its config
// names and those its directory gives it.
#ifndef CASELINK_SERVER_LINK_SET_H_
#define CASELINK_SERVER_LINK_SET_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/peer_link.h"
#include "server/router.h"

namespace caselink::server {

// Thread-safe. Links are never removed while the node runs, so pointers
// returned stay valid until StopAll() and destruction.
class LinkSet {
 public:
  // Does not take ownership of `router`, which it keeps told of the peers.
  LinkSet(const DeliveryConfig* delivery, PeerLinkDeps deps, Router* router,
          Logger* log)
      : delivery_(delivery), deps_(deps), router_(router), log_(log) {}

  // Adds and starts a link to `peer` unless one exists. Returns whether it
  // was added.
  [[nodiscard]] absl::StatusOr<bool> Add(const PeerConfig& peer);

  bool Contains(const std::string& code) const;
  // nullptr if there is no link to `code`.
  PeerLink* Find(const std::string& code) const;
  std::vector<PeerLink*> All() const;

  // Has every link reconnect with this node's new identity.
  void RenewAll();

  // Stops every link's threads; the links stay until destruction.
  void StopAll();

 private:
  const DeliveryConfig* const delivery_;
  const PeerLinkDeps deps_;
  Router* const router_;
  Logger* const log_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<PeerLink>> links_ ABSL_GUARDED_BY(mu_);
};

}  // namespace caselink::server

#endif  // CASELINK_SERVER_LINK_SET_H_
