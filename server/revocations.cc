#include "server/revocations.h"

#include <sys/stat.h>

#include "core/strings.h"

namespace caselink::server {

absl::Status Revocations::Reload() {
  if (path_.empty()) return absl::OkStatus();
  struct stat info {};
  if (stat(path_.c_str(), &info) != 0) {
    return absl::InvalidArgumentError(
        Cat("CRL bundle ", path_, ": cannot be read"));
  }
  std::string stamp =
      Cat(info.st_mtim.tv_sec, ".", info.st_mtim.tv_nsec, "/", info.st_size);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == stamp_) return absl::OkStatus();
  }
  auto list = RevocationList::LoadPemFile(path_, cas_);
  if (!list.ok()) return list.status();
  size_t revoked = list->size();
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    first = stamp_.empty();
    list_ = std::move(*list);
    stamp_ = std::move(stamp);
    verdicts_.clear();
  }
  // The first load is part of start-up, which reports itself.
  if (!first) {
    log_->Info("revocations_reloaded",
               {{"file", path_}, {"revoked", Cat(revoked)}});
  }
  return absl::OkStatus();
}

bool Revocations::IsRevoked(const Certificate& certificate) const {
  absl::MutexLock lock(&mu_);
  return list_.IsRevoked(certificate);
}

bool Revocations::IsRevokedPem(const std::string& pem) const {
  absl::MutexLock lock(&mu_);
  auto it = verdicts_.find(pem);
  if (it != verdicts_.end()) return it->second;
  auto cert = Certificate::FromPem(pem);
  bool revoked = cert.ok() && list_.IsRevoked(*cert);
  if (verdicts_.size() > 4096) verdicts_.clear();
  verdicts_.emplace(pem, revoked);
  return revoked;
}

}  // namespace caselink::server
