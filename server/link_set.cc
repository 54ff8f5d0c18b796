#include "server/link_set.h"

#include "core/status_macros.h"

namespace caselink::server {

absl::StatusOr<bool> LinkSet::Add(const PeerConfig& peer) {
  std::vector<std::string> codes;
  PeerLink* added = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (links_.count(peer.code) > 0) return false;
    auto link = std::make_unique<PeerLink>(peer, *delivery_, deps_);
    added = link.get();
    links_.emplace(peer.code, std::move(link));
    for (const auto& [code, unused] : links_) codes.push_back(code);
  }
  router_->SetPeers(std::move(codes));
  CASELINK_RETURN_IF_ERROR(added->Start());
  return true;
}

bool LinkSet::Contains(const std::string& code) const {
  absl::MutexLock lock(&mu_);
  return links_.count(code) > 0;
}

PeerLink* LinkSet::Find(const std::string& code) const {
  absl::MutexLock lock(&mu_);
  auto it = links_.find(code);
  return it == links_.end() ? nullptr : it->second.get();
}

std::vector<PeerLink*> LinkSet::All() const {
  std::vector<PeerLink*> all;
  absl::MutexLock lock(&mu_);
  for (const auto& [code, link] : links_) all.push_back(link.get());
  return all;
}

void LinkSet::RenewAll() {
  for (PeerLink* link : All()) link->Renew();
}

void LinkSet::StopAll() {
  for (PeerLink* link : All()) link->Stop();
}

}  // namespace caselink::server
