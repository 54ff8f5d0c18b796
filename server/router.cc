#include "server/router.h"

#include "absl/status/status.h"
#include "core/division_code.h"
#include "core/strings.h"

namespace caselink::server {
namespace {

// True if `code` lies in the part of the tree that `region` heads.
bool Covers(const std::string& region, const std::string& code) {
  return std::string_view(code).starts_with(SignificantPrefix(region));
}

// The peer with the longest significant prefix covering `code`, or empty.
std::string DeepestCovering(const std::vector<std::string>& peers,
                            const std::string& code) {
  std::string best;
  size_t best_length = 0;
  for (const std::string& peer : peers) {
    size_t length = SignificantPrefix(peer).size();
    if (Covers(peer, code) && length > best_length) {
      best = peer;
      best_length = length;
    }
  }
  return best;
}

}  // namespace

Router::Router(std::string self, std::vector<std::string> peers)
    : self_(std::move(self)), peers_(std::move(peers)) {}

void Router::SetPeers(std::vector<std::string> peers) {
  absl::MutexLock lock(&mu_);
  peers_ = std::move(peers);
}

absl::StatusOr<std::string> Router::NextHop(
    const std::string& destination) const {
  absl::MutexLock lock(&mu_);
  std::string down = DeepestCovering(peers_, destination);
  if (!down.empty()) return down;
  std::string up = DeepestCovering(peers_, self_);
  if (!up.empty()) return up;
  return absl::NotFoundError(Cat("no route to ", destination, ": no peer of ",
                                 self_, " covers it and ", self_,
                                 " has no parent link"));
}

}  // namespace caselink::server
